import type { PeerCertificate, TLSSocket } from 'node:tls';
import type { Authorizer, Credential, Decision, Peer, RefusalClass } from '@meshless/core';
import { checkAcceptedConnection } from '@meshless/core/internal';
import { grpc, type AuthContext } from './grpc-js.js';

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
  /** The credential served now: the bundles of its trust domains are the trust the verdict must hold under. */
  credential: Credential;
  now: number;
}

/**
 * Checks one TLS connection (server side) with core's one verifier (checkConnection, reading the client certificate from the session):
 * OpenSSL's verdict, then — on every connection, resumed ones included — the chain against the
 * current bundle of the client's own trust domain, validity, identity and the allow-list; and
 * turns the outcome into what grpc-js needs (a status code, an AuthContext).
 */
export function connectionVerdict(socket: TLSSocket, input: VerdictInput): Verdict {
  const { credential } = input;
  const bundleHash = credential.bundleHash;
  const check = checkAcceptedConnection(socket, input.authorize, credential, { now: input.now, who: 'client' });
  if (!check.ok) {
    const denied = check.failure === 'denied';
    return {
      ok: false,
      failure: check.failure,
      code: denied ? grpc.status.PERMISSION_DENIED : grpc.status.UNAUTHENTICATED,
      reason: check.reason,
      resumed: check.resumed,
      bundleHash,
      expiresAt: Infinity,
      ...(check.peer ? { peer: check.peer } : {}),
      ...(check.decision ? { decision: check.decision } : {}),
    };
  }
  return {
    ok: true,
    peer: check.peer,
    decision: check.decision,
    reason: check.decision.reason,
    resumed: check.resumed,
    code: grpc.status.OK,
    bundleHash,
    expiresAt: check.peer.notAfter.getTime(),
    authContext: authContextFor(socket, check.peer),
  };
}
