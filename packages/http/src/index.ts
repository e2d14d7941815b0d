/**
 * @meshless/http — mutual TLS for Node's https server and an undici client, from a rotating
 * credential source. Express middleware lives at `@meshless/http/express`.
 */
export { createServer, type MeshlessServer } from './server.js';
export type { ServerOptions } from './server-options.js';
export type { PeerRefusal, ServerRefusalClass } from './server-refusals.js';
export type { PeerRetirement, RetireReason } from './server-connections.js';
export type { ServerMode, PlaintextRequest } from './server-permissive.js';
export { peerOf, type PeerTarget } from './peer-of.js';
export { healthHandler, type HealthBody } from './health.js';
// Per-route policy for any framework (Fastify, Koa, Hono, NestJS use it; Express's requirePeer too).
export { routePolicy, type RoutePolicy, type RoutePolicyOptions, type RouteVerdict, type RouteRefusalBody, type RouteContext } from './route-policy.js';
// The undici client (createAgent, peerOfResponse…).
export * from './client.js';
