import { createHash, type X509Certificate } from 'node:crypto';
import { BoundedMap } from './bounded-map.js';
import type { Authorizer, Decision } from './allow-list.js';
import { verifyChain } from './chain.js';
import type { Credential } from './credential.js';
import { MeshlessError, codes, type MeshlessErrorCode } from './errors.js';
import { identityOf } from './identity.js';
import type { Peer } from './peer.js';

/** Why a peer was refused: no verifiable certificate, or an identity the rules deny. */
export type RefusalClass = 'unverified' | 'denied';

/** The outcome of checking one peer: accepted with its identity, or refused with a coded error. */
export type PeerCheck =
  | {
      readonly ok: true;
      readonly peer: Peer;
      readonly decision: Decision;
      /** The peer's leaf certificate. */
      readonly certificate: X509Certificate;
      /** The intermediates of the verified path (keep them to re-verify when trust changes). */
      readonly intermediates: readonly X509Certificate[];
    }
  | {
      readonly ok: false;
      readonly failure: RefusalClass;
      /** A sentence for logs: what was presented and why it was refused. */
      readonly reason: string;
      readonly error: MeshlessError;
      readonly peer?: Peer;
      readonly decision?: Decision;
      readonly certificate?: X509Certificate;
    };

/** What the peer presented: its leaf and, when the leaf does not verify alone, the certificates it sent after it. */
export interface PresentedChain {
  readonly leaf: X509Certificate;
  /** Untrusted candidates for a path to the bundle; a function is called only when needed. */
  readonly intermediates?: readonly X509Certificate[] | (() => readonly X509Certificate[]);
  /** The leaf's Peer, when the caller computed it already. */
  readonly peer?: Peer;
}

export interface VerifyOptions {
  /** The credential in force now: its bundles are the trust the peer must verify to. */
  readonly credential: Credential;
  readonly authorize: Authorizer;
  /** Clock (ms since epoch); default now. */
  readonly now?: number;
  /** Names the other side in messages, e.g. `server at https://a:8443` (default `peer`). */
  readonly who?: string;
}

/**
 * The one peer verifier of meshless, used by every wrapper (HTTP server and client, gRPC server
 * and channel), on full handshakes, resumed sessions and re-checks after a trust change:
 *
 * 1. identity — the leaf's identity; a CA certificate is never an identity;
 * 2. validity — the leaf is valid now;
 * 3. trust — the chain verifies to the bundle of the trust domain the peer's SPIFFE ID names
 *    (never another trust domain's, even though OpenSSL was given every root so handshakes can
 *    complete); no bundle for it means not trusted. A peer without a SPIFFE ID is verified
 *    against our own bundle (and so is any peer without a federated bundle when our own
 *    certificate has no SPIFFE ID: we then have no trust domain to scope our bundle to);
 * 4. policy — the allow-list.
 *
 * Fail closed: any exception refuses the peer. One bounded cache, keyed by certificate and by
 * the exact bundle it verified to, keeps a repeated check O(1).
 */
export function verifyPeer(presented: PresentedChain, options: VerifyOptions): PeerCheck {
  const who = options.who ?? 'peer';
  let peer: Peer | undefined = presented.peer;
  try {
    const now = options.now ?? Date.now();
    const leaf = presented.leaf;
    peer ??= identityOf(leaf);
    const name = String(peer);
    if (leaf.ca) return refuse(who, 'unverified', `${who} presented a CA certificate (${name}) as its own: a CA is never an identity`, peer, leaf);
    if (peer.notBefore.getTime() > now) return refuse(who, 'unverified', `certificate of ${name} is not valid before ${peer.notBefore.toISOString()}`, peer, leaf);
    if (peer.notAfter.getTime() <= now) return refuse(who, 'unverified', `certificate of ${name} expired at ${peer.notAfter.toISOString()}`, peer, leaf);
    const trust = trustFor(options.credential, peer);
    if (trust.bundle === undefined) {
      return refuse(
        who,
        'unverified',
        `${name} belongs to trust domain ${trust.trustDomain}, for which no trust bundle is configured, so its certificate cannot be verified; to trust ${trust.trustDomain}, configure its bundle (fileSource federation or bundleMap, or the Workload API's federated bundles: see docs/federation.md)`,
        peer,
        leaf,
        codes.NO_BUNDLE,
      );
    }
    const intermediates = chainProblem(leaf, peer.fingerprint256, presented, trust, options.credential, now);
    if (typeof intermediates === 'string') {
      const domain = trust.trustDomain === undefined ? 'our trust bundle' : `the trust bundle of ${trust.trustDomain}`;
      return refuse(who, 'unverified', `certificate of ${name} does not verify to ${domain}: ${intermediates}`, peer, leaf);
    }
    const decision = options.authorize(peer);
    if (!decision.allowed) return refuse(who, 'denied', decision.reason, peer, leaf, codes.PEER_DENIED, decision);
    return { ok: true, peer, decision, certificate: leaf, intermediates };
  } catch (err) {
    const reason = `the certificate could not be checked: ${(err as Error)?.message ?? String(err)}`;
    const error = new MeshlessError(codes.PEER_UNVERIFIED, `${who} refused: ${reason}`, { cause: err, ...(peer ? { peer: String(peer) } : {}) });
    return peer ? { ok: false, failure: 'unverified', reason, error, peer } : { ok: false, failure: 'unverified', reason, error };
  }
}

/** Builds a refusal (also used by wrappers for what happens before the verifier: no certificate, OpenSSL's verdict). */
export function refusal(who: string, failure: RefusalClass, reason: string, peer?: Peer, certificate?: X509Certificate, code?: MeshlessErrorCode, decision?: Decision): PeerCheck & { ok: false } {
  return refuse(who, failure, reason, peer, certificate, code, decision);
}

function refuse(who: string, failure: RefusalClass, reason: string, peer?: Peer, certificate?: X509Certificate, code?: MeshlessErrorCode, decision?: Decision): PeerCheck & { ok: false } {
  const details: { peer?: string; rule?: string } = {};
  if (peer !== undefined) details.peer = String(peer);
  if (decision?.rule !== undefined) details.rule = decision.rule;
  const message = failure === 'denied' ? `${who} presented ${String(peer)}, which is not allowed: ${reason}` : `${who} refused: ${reason}`;
  const error = new MeshlessError(code ?? (failure === 'denied' ? codes.PEER_DENIED : codes.PEER_UNVERIFIED), message, details);
  const out: { ok: false; failure: RefusalClass; reason: string; error: MeshlessError; peer?: Peer; decision?: Decision; certificate?: X509Certificate } = { ok: false, failure, reason, error };
  if (peer !== undefined) out.peer = peer;
  if (decision !== undefined) out.decision = decision;
  if (certificate !== undefined) out.certificate = certificate;
  return out;
}

interface Trust {
  /** The trust domain whose bundle applies (undefined: our own bundle, for a peer without a SPIFFE ID). */
  readonly trustDomain: string | undefined;
  /** Undefined when no bundle is configured for the peer's trust domain. */
  readonly bundle: readonly X509Certificate[] | undefined;
  /** Identifies exactly this bundle's content (cache key part). */
  readonly key: string;
}

const bundleKeys = new WeakMap<readonly X509Certificate[], string>();

function keyOf(bundle: readonly X509Certificate[]): string {
  let key = bundleKeys.get(bundle);
  if (key === undefined) {
    const h = createHash('sha256');
    for (const cert of bundle) h.update(cert.fingerprint256).update('\0');
    key = h.digest('base64');
    bundleKeys.set(bundle, key);
  }
  return key;
}

/**
 * The bundle a peer must verify to: its trust domain's; our own for a peer without a SPIFFE ID.
 * When our own certificate has no SPIFFE ID we have no trust domain to scope our bundle to, so
 * it also verifies SPIFFE peers of trust domains without a bundle of their own (a federated
 * trust domain is still verified against its own bundle only).
 */
function trustFor(credential: Credential, peer: Peer): Trust {
  const own: Trust = { trustDomain: undefined, bundle: credential.bundle, key: keyOf(credential.bundle) };
  if (peer.trustDomain === undefined) return own;
  const bundle = credential.bundles.get(peer.trustDomain);
  if (bundle === undefined && credential.trustDomain === undefined) return own;
  return { trustDomain: peer.trustDomain, bundle, key: bundle === undefined ? '' : keyOf(bundle) };
}

interface Verified {
  /** Bundle key the leaf verified to. */
  readonly bundleKey: string;
  /** Until when the path stays valid (the earliest notAfter on it). */
  readonly validUntil: number;
  /** The intermediates of the path. */
  readonly intermediates: readonly X509Certificate[];
}

// One bounded cache: leaf fingerprint → the last path it verified with. Least recently used out.
const MAX_VERIFIED = 10_000;
const verified = new BoundedMap<string, Verified>(MAX_VERIFIED);

// The intermediates of verified paths, by fingerprint: a few per trust domain (one per CA that
// signs leaves), kept as candidates for peers that show none — a resumed session, whose leaf's
// entry above the cache may have evicted under more than MAX_VERIFIED distinct peers. Only
// certificates that were on a path to a bundle get in, so a peer cannot fill it; signatures and
// the bundle in force decide every path, so a candidate never admits anything by itself.
const MAX_KNOWN_INTERMEDIATES = 16;
const knownIntermediates = new BoundedMap<string, X509Certificate>(MAX_KNOWN_INTERMEDIATES);

/** The intermediates of a path to `trust.bundle`, or why there is none. */
function chainProblem(leaf: X509Certificate, fingerprint: string, presented: PresentedChain, trust: Trust, credential: Credential, now: number): readonly X509Certificate[] | string {
  const hit = verified.get(fingerprint);
  if (hit !== undefined) {
    if (hit.bundleKey === trust.key && hit.validUntil > now) return hit.intermediates;
    verified.delete(fingerprint);
  }
  if (trust.bundle!.length === 0) return `${trust.trustDomain ?? 'our trust domain'} has no keys (its bundle is empty: the trust domain revoked them)`;
  // The leaf alone, then with what the peer sent, then with the path it verified with before
  // (a resumed session shows no intermediates; a trust change re-checks a live connection).
  let result = verifyChain(leaf, [], trust.bundle!, now);
  if ('problem' in result) {
    // Candidates: what the peer sent (as Node exposes it: one issuer per certificate, the first
    // that matches — an expired copy sent ahead of its renewal hides the renewal), the path this
    // leaf verified with before, our own intermediates (validated when our credential was
    // loaded; a peer of our trust domain usually shares them), and the intermediates of other
    // peers' verified paths. Signatures decide, not the source.
    const sent = typeof presented.intermediates === 'function' ? presented.intermediates() : (presented.intermediates ?? []);
    const candidates = [...sent];
    for (const extra of [hit?.intermediates ?? [], credential.chain.slice(1), knownIntermediates.values()]) for (const c of extra) if (!candidates.includes(c)) candidates.push(c);
    if (candidates.length > 0) result = verifyChain(leaf, candidates, trust.bundle!, now);
  }
  if ('problem' in result) return result.problem;
  const intermediates = Object.freeze(result.path.slice(1, -1));
  for (const intermediate of intermediates) knownIntermediates.set(intermediate.fingerprint256, intermediate);
  let validUntil = Infinity;
  for (const cert of result.path) validUntil = Math.min(validUntil, Date.parse(cert.validTo));
  verified.set(fingerprint, { bundleKey: trust.key, validUntil, intermediates });
  return intermediates;
}
