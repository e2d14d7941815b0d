import { X509Certificate } from 'node:crypto';
import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import { identityOf, type Peer as CorePeer } from '@meshless/core';
import { BoundedMap } from '@meshless/core/internal';
import { peerOf as peerOfRequest } from '@meshless/http';

/** A grpc-js call as Nest hands it to a gRPC handler (third argument). */
export interface GrpcCallLike {
  getAuthContext(): { sslPeerCertificate?: { raw?: Buffer; fingerprint256?: string } } & object;
  getPath?(): string;
  getPeer?(): string;
}

type GrpcPeerOf = (call: GrpcCallLike) => CorePeer | undefined;
let grpcPeerOf: GrpcPeerOf | undefined;

/**
 * Loads `@meshless/grpc`'s `peerOf` (O(1) on servers bound with its `serverCredentials`). Only
 * a gRPC call ever asks for it, so an HTTP-only application never loads grpc-js.
 */
export async function loadGrpcPeerOf(): Promise<GrpcPeerOf> {
  if (grpcPeerOf === undefined) {
    const grpc = (await import('@meshless/grpc')) as { peerOf: GrpcPeerOf };
    grpcPeerOf = grpc.peerOf;
  }
  return grpcPeerOf;
}

const byFingerprint = new BoundedMap<string, CorePeer>(1024);

/** Before `@meshless/grpc` is loaded: the verified certificate grpc-js reports, parsed once. */
function fallbackGrpcPeer(call: GrpcCallLike): CorePeer | undefined {
  const certificate = call.getAuthContext()?.sslPeerCertificate;
  if (!certificate?.raw || !certificate.fingerprint256) return undefined;
  let peer = byFingerprint.get(certificate.fingerprint256);
  if (peer === undefined) {
    peer = identityOf(new X509Certificate(certificate.raw));
    byFingerprint.set(certificate.fingerprint256, peer);
  }
  return peer;
}

/** The grpc-js call among a gRPC handler's arguments, if any. */
export function grpcCallOf(context: ExecutionContext): GrpcCallLike | undefined {
  for (const arg of context.getArgs() as unknown[]) {
    if (arg !== null && typeof arg === 'object' && typeof (arg as GrpcCallLike).getAuthContext === 'function') return arg as GrpcCallLike;
  }
  return undefined;
}

/**
 * The verified caller of the request or call a Nest execution context stands for: HTTP
 * (Express or Fastify platform, served by meshless's `createServer`) or gRPC (a server bound
 * with `serverCredentials`). Undefined without a verified certificate.
 */
export function peerOfContext(context: ExecutionContext): CorePeer | undefined {
  const type = context.getType<string>();
  if (type === 'http') {
    const request = context.switchToHttp().getRequest<{ raw?: unknown; socket?: unknown }>();
    return peerOfRequest((request.raw ?? request) as Parameters<typeof peerOfRequest>[0]);
  }
  if (type === 'rpc') {
    const call = grpcCallOf(context);
    if (call === undefined) return undefined;
    return grpcPeerOf ? grpcPeerOf(call) : fallbackGrpcPeer(call);
  }
  return undefined;
}

/**
 * Parameter decorator: the caller's `Peer` (HTTP handlers and gRPC handlers alike):
 * `whoami(@Peer() peer: Peer) { return { caller: peer.spiffeId } }`.
 */
export const Peer = createParamDecorator((_data: unknown, context: ExecutionContext) => peerOfContext(context));
/** The verified identity of a caller (`@meshless/core`'s Peer), so `@Peer() peer: Peer` needs one import. */
export type Peer = CorePeer;
