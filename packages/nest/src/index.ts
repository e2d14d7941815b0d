/**
 * @meshless/nest — NestJS integration: `MeshlessModule.forRoot({ source })`, `@RequirePeer(rules)`
 * enforced by `MeshlessGuard` on HTTP controllers (Express and Fastify platforms) and gRPC
 * handlers, and `@Peer()` for the caller's identity. Serve HTTP through `@meshless/http`'s
 * `createServer` (or `serverFactory` on the Fastify platform) and gRPC with `@meshless/grpc`'s
 * `serverCredentials` in the transport options.
 */
import 'reflect-metadata';

export { MeshlessModule, type MeshlessModuleOptions } from './module.js';
export { MeshlessGuard, type MeshlessGuardOptions } from './guard.js';
export { RequirePeer, type RequirePeerOptions, type PeerRequirement } from './require-peer.js';
export { Peer, peerOfContext } from './peer-of-context.js';
export { MESHLESS_SOURCE, MESHLESS_OPTIONS, REQUIRE_PEER } from './tokens.js';
