/**
 * @meshless/http — mutual TLS for Node's https server (and, from the client engineer's files, an
 * undici client). Express middleware lives at `@meshless/http/express`.
 */
export { createServer, type MeshlessServer } from './server.js';
export type { ServerOptions } from './server-options.js';
export type { PeerRefusal, ServerRefusalClass } from './server-refusals.js';
export type { PeerRetirement, RetireReason } from './server-connections.js';
export { peerOf, type PeerTarget } from './peer-of.js';
export { healthHandler, type HealthBody } from './health.js';
// The undici client (createAgent…) is exported from ./client.ts, written separately; this line
// is uncommented when that file exists. Keep it here.
export * from './client.js';
