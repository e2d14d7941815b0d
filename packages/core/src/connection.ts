import { X509Certificate } from 'node:crypto';
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';
import type { Authorizer } from './allow-list.js';
import type { Credential } from './credential.js';
import { MeshlessError, codes } from './errors.js';
import { BoundedMap } from './bounded-map.js';
import { identityOf } from './identity.js';
import type { Peer } from './peer.js';
import { sessionPeerCertificate } from './tls-session.js';
import { refusal, verifyPeer, type PeerCheck, type PresentedChain } from './verifier.js';

/** The outcome of checking one TLS connection ({@link verifyPeer}'s, plus whether the session was resumed). */
export type ConnectionCheck = PeerCheck & { readonly resumed: boolean };

const peers = new WeakMap<TLSSocket, Peer>();

/**
 * The peer's certificate on a TLS socket, or undefined when it sent none (or, client side, on a
 * resumed TLS 1.3 session). Read through the legacy `getPeerCertificate()`: Node 20's
 * `getPeerX509Certificate()` leaks native memory on every call (~5 MB per 1,000 connections,
 * measured on both sides of a connection), which a long-running service cannot afford.
 */
export function peerCertificateOf(socket: TLSSocket): X509Certificate | undefined {
  const legacy = socket.getPeerCertificate();
  if (!legacy || !legacy.raw) return undefined;
  return certificateOf(legacy.raw, socket.authorized);
}

/**
 * The client certificate of a connection a server accepted, as {@link peerCertificateOf} reads
 * it, at a fraction of the cost: from the serialized TLS session (`getSession()`, ~10 µs) instead
 * of the legacy certificate object (~60–110 µs per connection, resumed ones included). The session
 * holds the certificate OpenSSL verified (or, resumed, the one its ticket was issued for). Server
 * sockets only (a client's session keeps a certificate Node does not show on resumption); falls
 * back to {@link peerCertificateOf} whenever the session has no certificate or cannot be read.
 */
export function acceptedPeerCertificateOf(socket: TLSSocket): X509Certificate | undefined {
  let der: Buffer | undefined;
  try {
    const session = socket.getSession();
    der = session === undefined ? undefined : sessionPeerCertificate(session);
  } catch {
    der = undefined; // an unreadable session: the legacy read below
  }
  return der === undefined ? peerCertificateOf(socket) : certificateOf(der, socket.authorized);
}

/**
 * One X509Certificate per distinct certificate (each holds ~6 KB of native memory, and parsing
 * costs ~130 µs on OpenSSL 3), keyed by its DER bytes. Only certificates whose chain OpenSSL
 * verified (`authorized`) are kept: anyone who can reach a server can present certificates, up to
 * ~100 KB each, and a cache of unverified ones would be theirs to fill.
 */
function certificateOf(der: Buffer, verified: boolean): X509Certificate {
  const key = der.toString('latin1');
  let x509 = verified ? certificates.get(key) : certificates.peek(key);
  if (x509 === undefined) {
    x509 = new X509Certificate(der);
    if (verified) certificates.set(key, x509);
  }
  return x509;
}

const certificates = new BoundedMap<string, X509Certificate>(1024);
const identities = new WeakMap<X509Certificate, Peer>();

/** The Peer of a certificate, computed once per X509Certificate object (frozen, so shared safely). */
function identityOfShared(x509: X509Certificate): Peer {
  let peer = identities.get(x509);
  if (peer === undefined) {
    peer = identityOf(x509);
    identities.set(x509, peer);
  }
  return peer;
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
 * What a peer presented, from the certificate object Node builds for `checkServerIdentity`
 * (already built: no second read): its leaf and identity, and the certificates it sent after the
 * leaf — turned into X509Certificates only if the leaf does not verify alone.
 */
export function presentedChainOf(cert: DetailedPeerCertificate): PresentedChain & { readonly peer: Peer } {
  const leaf = new X509Certificate(cert.raw);
  return {
    leaf,
    peer: identityOf(leaf),
    intermediates: () => {
      const out: X509Certificate[] = [];
      const seen = new Set<string>([cert.fingerprint256]);
      let next = cert.issuerCertificate;
      while (next && next.raw && !seen.has(next.fingerprint256) && out.length < MAX_SENT_CHAIN) {
        seen.add(next.fingerprint256);
        out.push(new X509Certificate(next.raw));
        next = next.issuerCertificate;
      }
      return out;
    },
  };
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
    peer = identityOfShared(x509);
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

export interface CheckConnectionOptions {
  /** Clock for validity checks (ms since epoch); default now. */
  now?: number;
  /** The peer certificate, when the caller already read it (saves a second read). */
  certificate?: X509Certificate;
  /** Names the other side in messages (default `peer`). */
  who?: string;
}

/**
 * Checks one TLS connection (server side, or a client's full handshake), resumed ones included:
 * OpenSSL's verdict first (no certificate, or one that does not verify to any of our roots, is
 * refused), then {@link verifyPeer} against the credential in force now — the chain re-checked
 * against the bundle of the peer's own trust domain (OpenSSL's verdict may predate a trust change,
 * and was reached against every trust domain's roots), validity, identity, allow-list. Fail closed.
 * Call it once per connection; the result carries the certificate and verified intermediates (keep
 * them to re-verify the connection when trust changes).
 */
export function checkConnection(socket: TLSSocket, authorize: Authorizer, credential: Credential, options: CheckConnectionOptions = {}): ConnectionCheck {
  const given = options.certificate;
  return checkWith(socket, given === undefined ? peerCertificateOf : () => given, authorize, credential, options);
}

/**
 * {@link checkConnection} for a connection a server accepted (createServer, serverCredentials):
 * the client certificate read once, from the TLS session ({@link acceptedPeerCertificateOf}).
 */
export function checkAcceptedConnection(socket: TLSSocket, authorize: Authorizer, credential: Credential, options: Omit<CheckConnectionOptions, 'certificate'> = {}): ConnectionCheck {
  return checkWith(socket, acceptedPeerCertificateOf, authorize, credential, options);
}

function checkWith(socket: TLSSocket, read: (socket: TLSSocket) => X509Certificate | undefined, authorize: Authorizer, credential: Credential, options: CheckConnectionOptions): ConnectionCheck {
  let resumed = false;
  const who = options.who ?? 'peer';
  try {
    resumed = socket.isSessionReused();
    const x509 = read(socket);
    if (!x509) {
      const why = socket.authorizationError ? ` (${String(socket.authorizationError)})` : '';
      return { ...refusal(who, 'unverified', `the ${who} sent no certificate${why}`), resumed };
    }
    const peer = identityOfShared(x509);
    peers.set(socket, peer);
    if (!socket.authorized) {
      return { ...refusal(who, 'unverified', `certificate of ${String(peer)} does not verify: ${String(socket.authorizationError)}`, peer, x509), resumed };
    }
    const check = verifyPeer({ leaf: x509, peer, intermediates: () => sentChainOf(socket) }, { credential, authorize, who, ...(options.now === undefined ? {} : { now: options.now }) });
    if (!check.ok && resumed) {
      return { ...refusal(who, check.failure, `resumed session: ${check.reason}`, check.peer, x509, check.error.code, check.decision), resumed };
    }
    return { ...check, resumed };
  } catch (err) {
    const reason = `the certificate could not be checked: ${(err as Error)?.message ?? String(err)}`;
    return { ok: false, failure: 'unverified', reason, resumed, error: new MeshlessError(codes.PEER_UNVERIFIED, `${who} refused: ${reason}`, { cause: err }) };
  }
}
