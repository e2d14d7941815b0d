import { X509Certificate } from 'node:crypto';
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';
import type { Authorizer, Decision } from './allow-list.js';
import { peerChainProblem } from './chain.js';
import type { Credential } from './credential.js';
import { MeshlessError, codes } from './errors.js';
import { identityOf } from './identity.js';
import type { Peer } from './peer.js';

/** Why a connection was refused: no verifiable certificate, or an identity the rules deny. */
export type RefusalClass = 'unverified' | 'denied';

export type ConnectionCheck =
  | { readonly ok: true; readonly peer: Peer; readonly decision: Decision; readonly resumed: boolean; readonly certificate: X509Certificate }
  | {
      readonly ok: false;
      /** The certificate the peer presented, when it presented one. */
      readonly certificate?: X509Certificate;
      readonly failure: RefusalClass;
      readonly peer?: Peer;
      readonly decision?: Decision;
      readonly reason: string;
      readonly resumed: boolean;
      readonly error: MeshlessError;
    };

const peers = new WeakMap<TLSSocket, Peer>();

/**
 * The peer's certificate on a TLS socket, or undefined when it sent none (or, client side, on a
 * resumed TLS 1.3 session). Read through the legacy `getPeerCertificate()`: Node 20's
 * `getPeerX509Certificate()` leaks native memory on every call (~5 MB per 1,000 connections,
 * measured on both sides of a connection), which a long-running service cannot afford.
 */
export function peerCertificateOf(socket: TLSSocket): X509Certificate | undefined {
  const legacy = socket.getPeerCertificate();
  return legacy && legacy.raw ? new X509Certificate(legacy.raw) : undefined;
}

const MAX_SENT_CHAIN = 8;

/**
 * The certificates the peer sent after its leaf, as OpenSSL built the chain (untrusted: only
 * candidates for a path to the bundle). Costs ~200 µs: ask only when the leaf does not verify alone.
 */
export function sentChainOf(socket: TLSSocket): X509Certificate[] {
  const out: X509Certificate[] = [];
  let cert = socket.getPeerCertificate(true) as DetailedPeerCertificate | undefined;
  const seen = new Set<string>();
  while (cert && cert.raw && out.length <= MAX_SENT_CHAIN) {
    if (seen.has(cert.fingerprint256)) break;
    seen.add(cert.fingerprint256);
    if (seen.size > 1) out.push(new X509Certificate(cert.raw));
    cert = cert.issuerCertificate;
  }
  return out;
}

/**
 * The Peer of a TLS socket, computed once from its certificate ({@link peerCertificateOf}) and cached on the
 * socket (O(1) afterwards). Undefined when the peer sent no certificate, or on a resumed TLS 1.3
 * client-side socket (the client sees no server certificate then).
 */
export function socketPeer(socket: TLSSocket): Peer | undefined {
  let peer = peers.get(socket);
  if (peer === undefined) {
    const x509 = peerCertificateOf(socket);
    if (!x509) return undefined;
    peer = identityOf(x509);
    peers.set(socket, peer);
  }
  return peer;
}

/** Remembers a peer for a socket (a client restoring the identity verified with its session). */
export function rememberSocketPeer(socket: TLSSocket, peer: Peer): void {
  peers.set(socket, peer);
}

/** The Peer cached on a socket by `socketPeer`/`checkConnection`, without computing it. */
export function cachedSocketPeer(socket: TLSSocket): Peer | undefined {
  return peers.get(socket);
}

// Certificates whose chain was verified against a given bundle (`bundleHash|fingerprint`).
// Bounded; oldest entries go first.
const verifiedUnder = new Map<string, true>();
const MAX_VERIFIED = 10_000;

function remember(key: string): void {
  if (verifiedUnder.size >= MAX_VERIFIED) {
    const first = verifiedUnder.keys().next().value;
    if (first !== undefined) verifiedUnder.delete(first);
  }
  verifiedUnder.set(key, true);
}

export interface CheckConnectionOptions {
  /** Clock for validity checks (ms since epoch); default now. */
  now?: number;
  /** The peer certificate, when the caller already read it (saves a second read). */
  certificate?: X509Certificate;
}

/**
 * Checks one TLS connection on the server side (or a client's full handshake): chain trust
 * (OpenSSL's verdict, then re-checked against the *current* bundle — once per certificate and
 * bundle — since the verdict may predate a trust change: a rotation during the handshake, or a
 * resumed session; a resumed session's validity window is checked too), then the
 * identity against `authorize`. Call it once per connection, resumed ones included. The result
 * carries the certificate read (keep it to re-verify the connection when trust changes).
 */
export function checkConnection(socket: TLSSocket, authorize: Authorizer, credential: Credential, options: CheckConnectionOptions = {}): ConnectionCheck {
  const now = options.now ?? Date.now();
  const resumed = socket.isSessionReused();
  const x509 = options.certificate ?? peerCertificateOf(socket);
  if (!x509) return refuse('unverified', 'the peer sent no certificate', resumed);
  const peer = identityOf(x509);
  peers.set(socket, peer);
  if (!socket.authorized) {
    return refuse('unverified', `certificate of ${String(peer)} does not verify: ${String(socket.authorizationError)}`, resumed, peer, undefined, x509);
  }
  // OpenSSL verified a full handshake against the bundle of the context it started with, which
  // may be older than `credential` if the bundle rotated mid-handshake; and a resumed session
  // carries the verdict of its first handshake. So the chain is re-checked against the current
  // bundle, once per certificate and bundle (a bounded cache keeps later connections O(1)).
  if (resumed && peer.notAfter.getTime() <= now) {
    return refuse('unverified', `certificate of ${String(peer)} expired at ${peer.notAfter.toISOString()}`, resumed, peer, undefined, x509);
  }
  const key = `${credential.bundleHash}|${peer.fingerprint256}`;
  if (!verifiedUnder.has(key)) {
    const problem = peerChainProblem(x509, credential.bundle, now, () => sentChainOf(socket));
    if (problem !== undefined) {
      const what = resumed ? `resumed session of ${String(peer)}` : `certificate of ${String(peer)}`;
      return refuse('unverified', `${what} does not verify to the current bundle: ${problem}`, resumed, peer, undefined, x509);
    }
    remember(key);
  }
  const decision = authorize(peer);
  if (!decision.allowed) return refuse('denied', decision.reason, resumed, peer, decision, x509);
  return { ok: true, peer, decision, resumed, certificate: x509 };
}

function refuse(failure: RefusalClass, reason: string, resumed: boolean, peer?: Peer, decision?: Decision, certificate?: X509Certificate): ConnectionCheck {
  const error =
    failure === 'denied'
      ? new MeshlessError(codes.PEER_DENIED, `peer ${String(peer)} is not allowed: ${reason}`, peer ? { peer: String(peer) } : {})
      : new MeshlessError(codes.PEER_UNVERIFIED, `peer refused: ${reason}`, peer ? { peer: String(peer) } : {});
  const out: { ok: false; failure: RefusalClass; reason: string; resumed: boolean; error: MeshlessError; peer?: Peer; decision?: Decision; certificate?: X509Certificate } = {
    ok: false,
    failure,
    reason,
    resumed,
    error,
  };
  if (peer) out.peer = peer;
  if (decision) out.decision = decision;
  if (certificate) out.certificate = certificate;
  return out;
}
