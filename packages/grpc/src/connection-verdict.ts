import type { PeerCertificate, TLSSocket } from 'node:tls';
import { identityOf, peerCertificateOf, peerChainProblem, sentChainOf, type Authorizer, type Credential, type Decision, type Peer } from '@meshless/core';
import { grpc, type AuthContext } from './grpc-js.js';

/** Why calls on a connection are refused: no verifiable identity, or an identity the rules deny. */
export type RefusalClass = 'unverified' | 'denied';

/**
 * The outcome of checking one TLS connection, computed on its first call and cached on its
 * HTTP/2 session. Recomputed when the trust bundle changes or the peer's certificate expires.
 */
export interface Verdict {
  readonly ok: boolean;
  readonly peer?: Peer;
  readonly decision?: Decision;
  readonly failure?: RefusalClass;
  /** A sentence for logs: what was presented and why it was accepted or refused. */
  readonly reason: string;
  /** True when the client resumed a TLS session. */
  readonly resumed: boolean;
  /** Status for refused calls: UNAUTHENTICATED (unverified) or PERMISSION_DENIED (denied). */
  readonly code: grpc.status;
  /** Hash of the trust bundle this verdict was reached under. */
  readonly bundleHash: string;
  /** Epoch ms after which the verdict must be recomputed (the peer's notAfter); Infinity when refused. */
  readonly expiresAt: number;
  /** The AuthContext handed to handlers (allowed connections only). */
  readonly authContext?: AuthContext;
}

/** Where the Peer hides on an AuthContext built by meshless: `peerOf(call)` reads it in O(1). */
export const PEER = Symbol.for('meshless.grpc.peer');

const MAX_VERIFIED = 10_000;
// Leaf fingerprints that verified to a bundle, keyed `bundleHash|fingerprint256`. Bounded; the
// oldest entry goes first. Only successes are kept: a failure is recomputed (and rare).
const verifiedUnder = new Map<string, true>();

function rememberVerified(key: string): void {
  if (verifiedUnder.size >= MAX_VERIFIED) {
    const oldest = verifiedUnder.keys().next().value;
    if (oldest !== undefined) verifiedUnder.delete(oldest);
  }
  verifiedUnder.set(key, true);
}

/** Builds the AuthContext of an allowed connection: O(1) for handlers; the legacy certificate object is made on first use. */
function authContextFor(socket: TLSSocket, peer: Peer): AuthContext {
  let certificate: PeerCertificate | undefined;
  const context = { transportSecurityType: 'ssl' } as AuthContext & { [PEER]: Peer };
  Object.defineProperty(context, 'sslPeerCertificate', {
    enumerable: true,
    get() {
      if (certificate === undefined) {
        const cert = socket.getPeerCertificate();
        certificate = cert && cert.raw ? cert : ({} as PeerCertificate);
      }
      return certificate.raw ? certificate : undefined;
    },
  });
  Object.defineProperty(context, PEER, { value: peer });
  return Object.freeze(context);
}

export interface VerdictInput {
  authorize: Authorizer;
  /** The credential served now: its bundle is the trust the verdict must hold under. */
  credential: Credential;
  /**
   * Verify the chain ourselves against `credential.bundle` even on a full handshake: needed once
   * the bundle has changed, since OpenSSL's verdict may predate the change.
   */
  reverify: boolean;
  now: number;
}

/**
 * Checks one TLS connection (server side): a client certificate OpenSSL verified; on a resumed
 * session, or after a trust change, the chain re-verified against the current bundle (the
 * stored verdict may predate the change); validity; then the identity against the allow-list.
 */
export function connectionVerdict(socket: TLSSocket, input: VerdictInput): Verdict {
  const { credential, now } = input;
  const bundleHash = credential.bundleHash;
  const resumed = socket.isSessionReused();
  const unverified = (reason: string, peer?: Peer): Verdict => ({
    ok: false,
    failure: 'unverified',
    code: grpc.status.UNAUTHENTICATED,
    reason,
    resumed,
    bundleHash,
    expiresAt: Infinity,
    ...(peer ? { peer } : {}),
  });
  const x509 = peerCertificateOf(socket);
  if (!x509) {
    const why = socket.authorizationError ? ` (${String(socket.authorizationError)})` : '';
    return unverified(`the client presented no certificate${why}`);
  }
  let peer: Peer;
  try {
    peer = identityOf(x509);
  } catch (err) {
    return unverified(`the client certificate has no usable identity: ${(err as Error).message}`);
  }
  if (!socket.authorized) {
    return unverified(`the certificate of ${String(peer)} does not verify: ${String(socket.authorizationError)}`, peer);
  }
  if (peer.notAfter.getTime() <= now) {
    return unverified(`the certificate of ${String(peer)} expired at ${peer.notAfter.toISOString()}`, peer);
  }
  if (resumed || input.reverify) {
    const key = `${bundleHash}|${peer.fingerprint256}`;
    if (!verifiedUnder.has(key)) {
      const problem = peerChainProblem(x509, credential.bundle, now, () => sentChainOf(socket));
      if (problem !== undefined) {
        const when = resumed ? 'resumed session' : 'connection';
        return unverified(`the ${when} of ${String(peer)} no longer verifies to the current trust bundle: ${problem}`, peer);
      }
      rememberVerified(key);
    }
  }
  const decision = input.authorize(peer);
  if (!decision.allowed) {
    return { ok: false, failure: 'denied', code: grpc.status.PERMISSION_DENIED, peer, decision, reason: decision.reason, resumed, bundleHash, expiresAt: Infinity };
  }
  return {
    ok: true,
    peer,
    decision,
    reason: decision.reason,
    resumed,
    code: grpc.status.OK,
    bundleHash,
    expiresAt: peer.notAfter.getTime(),
    authContext: authContextFor(socket, peer),
  };
}
