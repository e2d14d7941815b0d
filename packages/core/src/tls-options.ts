import { X509Certificate } from 'node:crypto';
import { constants } from 'node:crypto';
import type { ConnectionOptions, DetailedPeerCertificate, PeerCertificate, SecureContextOptions, SecureVersion, TlsOptions } from 'node:tls';
import { allowList, type Authorizer, type Rules } from './allow-list.js';
import { privateKeyPem, type Credential } from './credential.js';
import { MeshlessError, codes } from './errors.js';
import { presentedChainOf } from './connection.js';
import { identityOf } from './identity.js';
import { verifyPeer } from './verifier.js';
import type { Peer } from './peer.js';

/** TLS policy shared by servers and clients. Applied whole at start and at every reload. */
export interface TlsPolicy {
  /** Lowest TLS version; default `'TLSv1.3'`. `'TLSv1.2'` is allowed, with renegotiation off. */
  minVersion?: SecureVersion;
  /** Highest TLS version; default: the highest Node supports (TLS 1.3). `'TLSv1.2'` needs `minVersion: 'TLSv1.2'`. */
  maxVersion?: SecureVersion;
  /** OpenSSL cipher list for TLS 1.2 (TLS 1.3 suites are OpenSSL's defaults). */
  ciphers?: string;
  /** Key-exchange groups (`ecdhCurve`). */
  ecdhCurve?: string;
}

export interface ServerTlsPolicy extends TlsPolicy {
  /** 48 bytes of session ticket keys; pass fresh ones whenever trust changes. */
  ticketKeys?: Buffer;
  /** Session lifetime, in seconds. */
  sessionTimeout?: number;
}

export interface ClientTlsPolicy extends TlsPolicy {
  /** Which servers we accept: rules or a compiled Authorizer. Required. */
  allow: Rules;
  /** SNI name to send (not used for identity checks unless a `dns:` rule asks for it). */
  servername?: string;
}

function checkMinVersion(v: SecureVersion | undefined): SecureVersion {
  const minVersion = v ?? 'TLSv1.3';
  if (minVersion !== 'TLSv1.3' && minVersion !== 'TLSv1.2') {
    throw new MeshlessError(codes.INVALID_OPTION, `minVersion ${JSON.stringify(minVersion)} is not allowed: use 'TLSv1.3' (default) or 'TLSv1.2'`, { field: 'minVersion' });
  }
  return minVersion;
}

function checkMaxVersion(v: SecureVersion, minVersion: SecureVersion): SecureVersion {
  if (v !== 'TLSv1.3' && v !== 'TLSv1.2') {
    throw new MeshlessError(codes.INVALID_OPTION, `maxVersion ${JSON.stringify(v)} is not allowed: use 'TLSv1.3' or 'TLSv1.2'`, { field: 'maxVersion' });
  }
  if (v === 'TLSv1.2' && minVersion === 'TLSv1.3') {
    throw new MeshlessError(codes.INVALID_OPTION, `maxVersion 'TLSv1.2' is below minVersion 'TLSv1.3': set minVersion: 'TLSv1.2' too`, { field: 'maxVersion' });
  }
  return v;
}

/** Options for `tls.createSecureContext` common to both sides. */
function baseOptions(credential: Credential, policy: TlsPolicy): SecureContextOptions {
  const out: SecureContextOptions = {
    cert: credential.certPem,
    key: privateKeyPem(credential),
    // Every trust domain's roots, so handshakes complete; the verifier then checks each peer
    // against its own trust domain's bundle only.
    ca: credential.trustPem,
    minVersion: checkMinVersion(policy.minVersion),
    // Renegotiation would let a TLS 1.2 peer change its certificate under a cached Peer.
    secureOptions: constants.SSL_OP_NO_RENEGOTIATION,
  };
  if (policy.maxVersion !== undefined) out.maxVersion = checkMaxVersion(policy.maxVersion, out.minVersion!);
  if (policy.ciphers !== undefined) out.ciphers = policy.ciphers;
  if (policy.ecdhCurve !== undefined) out.ecdhCurve = policy.ecdhCurve;
  return out;
}

/**
 * Complete Node TLS server options for a credential: own chain and key, the bundle as the only
 * trusted roots, client certificates required and verified, TLS 1.3 minimum. Use the same
 * function at start and on every reload (`setSecureContext` resets what is not passed).
 */
export function serverTlsOptions(credential: Credential, policy: ServerTlsPolicy = {}): TlsOptions {
  const out: TlsOptions = baseOptions(credential, policy);
  out.requestCert = true;
  out.rejectUnauthorized = true;
  if (policy.ticketKeys !== undefined) out.ticketKeys = policy.ticketKeys;
  if (policy.sessionTimeout !== undefined) out.sessionTimeout = policy.sessionTimeout;
  return out;
}

const peerCache = new WeakMap<object, Peer>();

/** The Peer of a legacy PeerCertificate object (as `checkServerIdentity` receives it). */
export function peerOfCertificate(cert: PeerCertificate): Peer | undefined {
  if (!cert || !cert.raw) return undefined;
  let peer = peerCache.get(cert);
  if (!peer) {
    peer = identityOf(new X509Certificate(cert.raw));
    peerCache.set(cert, peer);
  }
  return peer;
}

/** Builds the error for a denied server or client. */
export function peerDeniedError(peer: Peer, reason: string, where?: string): MeshlessError {
  const at = where ? ` at ${where}` : '';
  return new MeshlessError(codes.PEER_DENIED, `peer${at} presented ${String(peer)}, which is not allowed: ${reason}`, { peer: String(peer) });
}

/**
 * A `checkServerIdentity` that checks the server with core's verifier instead of the host name:
 * its chain against the bundle of its own trust domain in `credential`, validity, identity, and
 * `allow` (`dns:` rules give the classic host-name check for servers without a SPIFFE ID). Node
 * skips it on resumed sessions: callers that resume must re-check after `secureConnect`.
 */
export function serverIdentityCheck(allow: Rules, credential: Credential): (host: string, cert: PeerCertificate) => Error | undefined {
  const authorize: Authorizer = allowList(allow);
  return (host, cert) => {
    if (!cert || !cert.raw) return new MeshlessError(codes.PEER_UNVERIFIED, `server ${host} presented no certificate`);
    const check = verifyPeer(presentedChainOf(cert as DetailedPeerCertificate), { credential, authorize, who: `server ${host}` });
    return check.ok ? undefined : check.error;
  };
}

/**
 * The secure-context part of the client options (own chain and key, bundle, TLS policy), for
 * `tls.createSecureContext` once per credential generation. Connectors that check the server's
 * identity themselves after the handshake (resumed sessions included) build on this.
 */
export function clientSecureContextOptions(credential: Credential, policy: TlsPolicy = {}): SecureContextOptions {
  return baseOptions(credential, policy);
}

/**
 * Complete Node TLS client options for a credential: own chain and key as client certificate,
 * the bundle as the only trusted roots, and the server's identity checked against `allow` in
 * place of the host name.
 */
export function clientTlsOptions(credential: Credential, policy: ClientTlsPolicy): ConnectionOptions {
  if (!policy || policy.allow === undefined) {
    throw new MeshlessError(codes.INVALID_OPTION, 'clientTlsOptions needs { allow }: the rules that say which servers to accept', { field: 'allow' });
  }
  const out: ConnectionOptions = baseOptions(credential, policy);
  out.rejectUnauthorized = true;
  out.checkServerIdentity = serverIdentityCheck(policy.allow, credential);
  if (policy.servername !== undefined) out.servername = policy.servername;
  return out;
}
