import { X509Certificate } from 'node:crypto';
import { identityOf, type Peer } from '@meshless/core';
import { BoundedMap } from '@meshless/core/internal';
import { PEER } from './connection-verdict.js';
import type { AuthContext } from './grpc-js.js';

/** Anything grpc-js hands a handler or interceptor: it answers `getAuthContext()`. */
export interface CallWithAuthContext {
  getAuthContext(): AuthContext;
}

const MAX_CACHED = 1024;
const byFingerprint = new BoundedMap<string, Peer>(MAX_CACHED);

/** The Peer of a grpc-js AuthContext not built by meshless (e.g. a `createSsl` server): parsed once per certificate. */
function peerOfAuthContext(context: AuthContext): Peer | undefined {
  const certificate = context.sslPeerCertificate;
  if (!certificate || !certificate.raw) return undefined;
  let peer = byFingerprint.get(certificate.fingerprint256);
  if (peer === undefined) {
    peer = identityOf(new X509Certificate(certificate.raw));
    byFingerprint.set(certificate.fingerprint256, peer);
  }
  return peer;
}

/**
 * The verified identity of the caller, inside any handler (unary, client-, server- or
 * bidirectional streaming) or interceptor: `peerOf(call)?.spiffeId`. O(1) on servers bound with
 * `serverCredentials` (the Peer is cached on the connection); on other TLS servers it falls back
 * to grpc-js's `getAuthContext()` (about 17 µs). Undefined when the caller presented no verified
 * certificate.
 */
export function peerOf(call: CallWithAuthContext): Peer | undefined {
  if (call === null || typeof call !== 'object' || typeof call.getAuthContext !== 'function') return undefined;
  const context = call.getAuthContext();
  if (context === null || typeof context !== 'object') return undefined;
  const peer = (context as Record<symbol, Peer | undefined>)[PEER];
  return peer !== undefined ? peer : peerOfAuthContext(context);
}
