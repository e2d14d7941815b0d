/**
 * @meshless/http/express — Express (or any connect-style) middleware: `mtls()` sets `req.peer`,
 * `requirePeer(rules)` refuses requests from peers a route does not allow.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Peer, Rules } from '@meshless/core';
import { peerOf } from './peer-of.js';
import { routePolicy, type RoutePolicyOptions, type RouteRefusalBody } from './route-policy.js';

export { healthHandler, type HealthBody } from './health.js';
export { peerOf } from './peer-of.js';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** The verified peer of the connection (set by `mtls()` or `requirePeer()`). */
      peer?: Peer;
    }
  }
}

/** A request that may carry its peer. */
export type PeerRequest = IncomingMessage & { peer?: Peer };
/** A connect-style middleware (Express, Connect, or a plain `http` handler chain). */
export type Middleware = (req: PeerRequest, res: ServerResponse, next: (err?: unknown) => void) => void;

/**
 * Sets `req.peer` to the verified peer of the connection (O(1): the Peer cached on the socket).
 * Never refuses a request: with no verified peer, `req.peer` stays undefined. Use behind
 * `createServer` (every connection was already checked) or any https server whose options come
 * from `serverTlsOptions` (there the peer is computed once per socket from a verified chain).
 */
export function mtls(): Middleware {
  return (req, _res, next) => {
    const peer = peerOf(req);
    if (peer !== undefined) req.peer = peer;
    next();
  };
}

export type RequirePeerOptions = RoutePolicyOptions;

/**
 * Per-route policy on top of the server-wide allow-list: the request goes on only when its peer
 * passes `rules`. Otherwise answers `403 {"error":"forbidden","code":"MESHLESS_ERR_PEER_DENIED"}`,
 * or `401 {"error":"unauthorized","code":"MESHLESS_ERR_PEER_UNVERIFIED"}` when the connection has
 * no verified peer. The body never names the policy; the log does. Rules are compiled once.
 */
export function requirePeer(rules: Rules, options: RequirePeerOptions = {}): Middleware {
  const policy = routePolicy(rules, options);
  return (req, res, next) => {
    const verdict = policy(req);
    if (verdict.peer !== undefined) req.peer = verdict.peer;
    if (verdict.allowed) {
      next();
      return;
    }
    refuse(req, res, verdict.status, verdict.body);
  };
}

function refuse(req: IncomingMessage, res: ServerResponse, status: number, body: RouteRefusalBody): void {
  const text = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.end(req.method === 'HEAD' ? undefined : text);
}
