/**
 * @meshless/http/fastify — Fastify 5: serve through meshless's `createServer` (`serverFactory`),
 * `request.peer`, per-route rules in route config (`{ config: { allow } }`) and an `onRequest`
 * hook factory. Loads nothing from Fastify at run time (types only).
 */
import type { FastifyInstance, FastifyPluginCallback, FastifyReply, FastifyRequest, HookHandlerDoneFunction, RouteOptions } from 'fastify';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { DenyRules, Peer, Rules } from '@meshless/core';
import { MeshlessError, codes } from '@meshless/core';
import { peerOf } from './peer-of.js';
import { routePolicy, type RoutePolicy, type RoutePolicyOptions } from './route-policy.js';
import { createServer, type MeshlessServer } from './server.js';
import type { ServerOptions } from './server-options.js';

export { peerOf } from './peer-of.js';
export { healthHandler, type HealthBody } from './health.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified peer of the connection (set by the `meshless` plugin; undefined without one). */
    readonly peer: Peer | undefined;
  }
  interface FastifyContextConfig {
    /** Per-route allow-list (needs the `meshless` plugin registered before the route). */
    allow?: Rules;
    /** Per-route deny rules, with `allow`. */
    deny?: DenyRules;
  }
}

/**
 * Fastify's `serverFactory` for `fastify({ serverFactory: serverFactory({ source, allow }) })`:
 * the app is served by meshless's mutual-TLS `createServer` (rotation, the server-wide allow-list
 * checked at the handshake, before Fastify sees a request). Any `createServer` option applies.
 */
export function serverFactory(options: ServerOptions): (handler: (req: IncomingMessage, res: ServerResponse) => void) => MeshlessServer {
  return (handler) => createServer(options, handler);
}

/** Options of the {@link meshless} plugin, applied to every route's `config: { allow }`. */
export interface MeshlessFastifyOptions {
  /** pino-compatible logger for refusals (default: meshless's shared logger). */
  logger?: RoutePolicyOptions['logger'];
  /**
   * Dry run of every route rule: a verified peer a rule would refuse goes on, and the would-be
   * refusal is logged, counted (`meshless.policy.would_deny`, scope `route`) and published. A
   * request without a verified peer is still refused with 401.
   */
  dryRun?: boolean;
}

/** Options of {@link requirePeer}. */
export type RequirePeerOptions = RoutePolicyOptions;

type OnRequest = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void;

function hookOf(policy: RoutePolicy): OnRequest {
  return (request, reply, done) => {
    const verdict = policy(request.raw, { path: request.url, remoteAddress: request.raw.socket?.remoteAddress });
    if (verdict.allowed) {
      done();
      return;
    }
    void reply.code(verdict.status).header('content-type', 'application/json; charset=utf-8').send(verdict.body);
  };
}

/**
 * An `onRequest` hook refusing peers that `rules` does not allow: `401 {"error":"unauthorized",
 * "code":"MESHLESS_ERR_PEER_UNVERIFIED"}` without a verified peer, `403 {"error":"forbidden",
 * "code":"MESHLESS_ERR_PEER_DENIED"}` otherwise — before the body is read. Use it per route
 * (`{ onRequest: requirePeer(rules) }`) or for a plugin scope (`app.addHook('onRequest', …)`).
 */
export function requirePeer(rules: Rules, options: RequirePeerOptions = {}): OnRequest {
  return hookOf(routePolicy(rules, options));
}

function asArray<T>(value: T | T[] | undefined): T[] {
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

/**
 * The plugin: decorates `request.peer` (an O(1) lookup of the Peer cached on the connection) and
 * compiles each route's `config: { allow, deny }` into an `onRequest` hook when the route is
 * added. Not encapsulated (like `fastify-plugin`): register it once, before the routes.
 */
export const meshless: FastifyPluginCallback<MeshlessFastifyOptions> = (fastify: FastifyInstance, options: MeshlessFastifyOptions, done: (err?: Error) => void) => {
  fastify.decorateRequest('peer', {
    getter(this: FastifyRequest) {
      return peerOf(this.raw);
    },
  });
  const policyOptions: RoutePolicyOptions = {};
  if (options.logger !== undefined) policyOptions.logger = options.logger;
  if (options.dryRun === true) policyOptions.dryRun = true;
  fastify.addHook('onRoute', (route: RouteOptions) => {
    const config = route.config as { allow?: Rules; deny?: DenyRules } | undefined;
    if (config?.allow === undefined) {
      if (config?.deny !== undefined) {
        throw new MeshlessError(codes.INVALID_OPTION, `route ${route.method} ${route.url}: config.deny needs config.allow (write allow: '*' to allow every other verified peer)`, { field: 'deny' });
      }
      return;
    }
    const rules = config.deny === undefined ? policyOptions : { ...policyOptions, deny: config.deny };
    const hook = hookOf(routePolicy(config.allow, rules));
    route.onRequest = [hook, ...asArray(route.onRequest as OnRequest | OnRequest[] | undefined)] as RouteOptions['onRequest'];
  });
  done();
};
(meshless as unknown as Record<symbol, unknown>)[Symbol.for('skip-override')] = true;
(meshless as unknown as Record<symbol, unknown>)[Symbol.for('fastify.display-name')] = '@meshless/http/fastify';
(meshless as unknown as Record<symbol, unknown>)[Symbol.for('plugin-meta')] = { name: '@meshless/http/fastify', fastify: '5.x' };
