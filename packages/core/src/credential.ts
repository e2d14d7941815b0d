import { X509Certificate, createHash, createPrivateKey, type KeyObject } from 'node:crypto';
import { inspect } from 'node:util';
import { allowList, type Rules } from './allow-list.js';
import { verifyChain } from './chain.js';
import { MeshlessError, codes } from './errors.js';
import { identityOf } from './identity.js';
import { trustDomainProblem } from './spiffe-id.js';
import type { Peer } from './peer.js';
import { certificatesToPem, describe, parseCertificates, toText, type PemOrigin } from './pem.js';
import { parseSpiffeBundle } from './spiffe-bundle.js';

/** One generation of own material: validated, immutable. */
export interface Credential {
  /** The leaf certificate. */
  readonly leaf: X509Certificate;
  /** Leaf first, then the intermediates sent with it (never the root). */
  readonly chain: readonly X509Certificate[];
  /**
   * Our own trust domain's bundle (the `ca` input): roots, old and new during a CA rotation. It
   * verifies peers of our own trust domain, and peers that carry no SPIFFE ID.
   */
  readonly bundle: readonly X509Certificate[];
  /** PEM of `chain`, as served. */
  readonly certPem: string;
  /** PEM of `bundle`. */
  readonly bundlePem: string;
  /** Our own trust domain (from the leaf's SPIFFE ID); undefined when the leaf has no SPIFFE ID. */
  readonly trustDomain: string | undefined;
  /**
   * Trust bundles keyed by trust domain name (bare, e.g. `partner.example`): our own (`bundle`,
   * when we have a trust domain) and every federated one. A peer with a SPIFFE ID is verified
   * against the bundle of its own trust domain only; none here means it is not trusted. An empty
   * bundle means that trust domain revoked its keys.
   */
  readonly bundles: ReadonlyMap<string, readonly X509Certificate[]>;
  /** PEM of every root of every bundle (deduplicated): what OpenSSL is given so handshakes complete. */
  readonly trustPem: string;
  /** Things worth logging about how the input was read (e.g. a federated bundle for our own trust domain was ignored). */
  readonly notices: readonly string[];
  /** The private key, as a KeyObject (never printed). */
  readonly privateKey: KeyObject;
  /** Our own identity (what the leaf proves). */
  readonly identity: Peer;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** 1 for the first load of a source, +1 for every new generation. */
  readonly generation: number;
  /** SHA-256 over cert, key and every bundle: equal content, equal hash. */
  readonly contentHash: string;
  /** SHA-256 over every bundle (own and federated, with their trust domains): tells a trust change from a leaf rotation. */
  readonly bundleHash: string;
}

/**
 * Federated trust bundles: trust domain (bare `partner.example` or `spiffe://partner.example`) →
 * PEM text or a SPIFFE bundle (JWK Set JSON text; `{ "keys": [] }` revokes), or certificates
 * already parsed (an empty array: the trust domain revoked its keys).
 */
export type FederatedBundles =
  | ReadonlyMap<string, string | Buffer | readonly X509Certificate[]>
  | Readonly<Record<string, string | Buffer | readonly X509Certificate[]>>;

export interface CredentialInput {
  /** Leaf certificate, then intermediates (PEM). */
  cert: string | Buffer;
  /** Private key PEM: PKCS#8, PKCS#1 RSA, SEC1 EC, Ed25519, or encrypted PKCS#8 with `passphrase`. */
  key: string | Buffer;
  /** Trust bundle PEM of our own trust domain: one or more root certificates. */
  ca: string | Buffer;
  passphrase?: string;
  /** Bundles of other trust domains whose workloads we may talk to (see docs/federation.md). */
  federation?: FederatedBundles;
}

export interface LoadCredentialOptions {
  /** Rules our own identity must pass (e.g. `'spiffe://prod.example/ns/pay/sa/api'`). */
  expectIdentity?: Rules;
  /** Clock for validity checks (ms since epoch or Date); default now. */
  now?: number | Date;
  /** Tolerance for validity checks, in ms; default 0. */
  clockSkewMs?: number;
  /** Generation number to stamp; default 1. */
  generation?: number;
  /** Files the inputs were read from, for error messages (`federation`: trust domain → file). */
  files?: { cert?: string; key?: string; ca?: string; federation?: Readonly<Record<string, string>> };
}

// A global symbol, not a WeakMap: a Credential built by one copy of @meshless/core must work
// with another copy (two module instances of the package in one process).
const keyPemSymbol = Symbol.for('meshless.Credential.privateKeyPem');

/** The unencrypted PKCS#8 PEM of a credential's private key, for Node's TLS options. */
export function privateKeyPem(credential: Credential): string {
  const pem = (credential as unknown as Record<symbol, unknown>)?.[keyPemSymbol];
  if (typeof pem !== 'string') throw new MeshlessError(codes.INVALID_OPTION, 'not a Credential built by loadCredential');
  return pem;
}

function origin(field: 'cert' | 'key' | 'ca', files: LoadCredentialOptions['files']): PemOrigin {
  const file = files?.[field];
  return file === undefined ? { field } : { field, file };
}

function parseKey(input: string | Buffer | undefined, passphrase: string | undefined, o: PemOrigin): KeyObject {
  const text = toText(input);
  if (text.trim().length === 0) throw new MeshlessError(codes.PEM_EMPTY, `${describe(o)} is empty: it should hold a PEM private key`, o);
  const encrypted = /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(text);
  if (encrypted && passphrase === undefined) {
    throw new MeshlessError(codes.KEY_ENCRYPTED, `${describe(o)} is encrypted: pass its passphrase`, o);
  }
  if (!/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(text)) {
    throw new MeshlessError(codes.PEM_INVALID, `${describe(o)} holds no PEM "PRIVATE KEY" block; check that the right file is mounted`, o);
  }
  try {
    return createPrivateKey(passphrase === undefined ? { key: text, format: 'pem' } : { key: text, format: 'pem', passphrase });
  } catch (cause) {
    // Node's message never contains key bytes; keep only its code, not the input.
    const why = encrypted ? 'the passphrase is wrong or the key is corrupt' : 'the key is corrupt or of an unsupported type';
    const code = (cause as { code?: string }).code;
    throw new MeshlessError(codes.KEY_INVALID, `${describe(o)} cannot be parsed: ${why}${code ? ` (${code})` : ''}`, { ...o, cause: code ? new Error(code) : undefined });
  }
}

function hash(...parts: string[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex');
}

/** Every root of every bundle, each once (own bundle first). */
function unionOf(own: readonly X509Certificate[], bundles: ReadonlyMap<string, readonly X509Certificate[]>): X509Certificate[] {
  const seen = new Set<string>();
  const out: X509Certificate[] = [];
  for (const cert of [own, ...bundles.values()].flat()) {
    if (seen.has(cert.fingerprint256)) continue;
    seen.add(cert.fingerprint256);
    out.push(cert);
  }
  return out;
}

/** A Map that refuses writes (a frozen Map still has working `set`). */
function readonlyMap<K, V>(map: Map<K, V>): ReadonlyMap<K, V> {
  const refuse = (): never => {
    throw new TypeError('Credential.bundles is read-only');
  };
  Object.defineProperty(map, 'set', { value: refuse });
  Object.defineProperty(map, 'delete', { value: refuse });
  Object.defineProperty(map, 'clear', { value: refuse });
  return Object.freeze(map);
}

/** Normalises `spiffe://td` or `td` to a bare, validated trust domain name. */
export function trustDomainKey(key: string, where: string): string {
  const td = typeof key === 'string' && key.startsWith('spiffe://') ? key.slice('spiffe://'.length).replace(/\/$/, '') : key;
  const problem = typeof td === 'string' ? trustDomainProblem(td) : 'it is not a string';
  if (problem !== undefined) {
    throw new MeshlessError(codes.BUNDLE_INVALID, `${where}: ${JSON.stringify(key)} is not a trust domain name (${problem}); write it as "partner.example" or "spiffe://partner.example"`, { field: 'federation' });
  }
  return td;
}

function federatedBundles(
  input: FederatedBundles | undefined,
  own: string | undefined,
  files: LoadCredentialOptions['files'],
  notices: string[],
): Map<string, readonly X509Certificate[]> {
  const out = new Map<string, readonly X509Certificate[]>();
  if (input === undefined || input === null) return out;
  if (typeof input !== 'object') throw new MeshlessError(codes.INVALID_OPTION, 'federation must map trust domain names to bundles (PEM or certificates)', { field: 'federation' });
  const entries = input instanceof Map ? [...(input as ReadonlyMap<string, unknown>)] : Object.entries(input);
  for (const [key, value] of entries) {
    const file = files?.federation?.[key];
    const where = file === undefined ? `federated bundle ${JSON.stringify(key)}` : `federated bundle file ${file}`;
    const td = trustDomainKey(key, where);
    if (out.has(td)) throw new MeshlessError(codes.BUNDLE_INVALID, `${where}: trust domain ${td} is given twice; give each trust domain one bundle`, file === undefined ? { field: 'federation' } : { file });
    let certs: readonly X509Certificate[];
    if (Array.isArray(value)) {
      for (const c of value) {
        if (!(c instanceof X509Certificate)) throw new MeshlessError(codes.INVALID_OPTION, `${where}: a bundle given as an array must hold X509Certificate objects`, { field: 'federation' });
      }
      certs = value as readonly X509Certificate[];
    } else {
      // PEM certificates or a SPIFFE bundle (JWK Set), told apart by content; BUNDLE_INVALID otherwise.
      certs = parseSpiffeBundle(value as string | Buffer, file === undefined ? { trustDomain: td } : { trustDomain: td, file }).x509Authorities;
    }
    for (const c of certs) {
      if (!c.ca) throw new MeshlessError(codes.BUNDLE_INVALID, `${where}: ${JSON.stringify(c.subject.replace(/\n/g, ', '))} in the bundle of ${td} is not a CA certificate`, file === undefined ? { field: 'federation' } : { file });
    }
    if (td === own) {
      notices.push(`${where} is for our own trust domain ${td}; it is ignored: our own trust bundle (the ca input) is what verifies ${td}`);
      continue;
    }
    out.set(td, Object.freeze([...certs]));
  }
  return out;
}

/**
 * Builds a validated, immutable Credential from PEM. Checks, each with its own code: empty or
 * garbage PEM, key that does not match the leaf, leaf that is a CA, chain that does not verify
 * to the bundle, not yet valid / expired, own identity not matching `expectIdentity`.
 */
export function loadCredential(input: CredentialInput, options: LoadCredentialOptions = {}): Credential {
  if (typeof input !== 'object' || input === null) {
    throw new MeshlessError(codes.INVALID_OPTION, 'loadCredential needs { cert, key, ca } (PEM strings or Buffers)');
  }
  const { files } = options;
  const now = options.now === undefined ? Date.now() : +options.now;
  const skew = options.clockSkewMs ?? 0;
  const certOrigin = origin('cert', files);
  const chain = parseCertificates(input.cert, certOrigin);
  const bundle = parseCertificates(input.ca, origin('ca', files));
  const privateKey = parseKey(input.key, input.passphrase, origin('key', files));
  const leaf = chain[0]!;
  const where = describe(certOrigin);

  if (leaf.ca) {
    throw new MeshlessError(codes.LEAF_IS_CA, `${where}: the first certificate is a CA certificate; a workload must present a leaf (CA:FALSE) issued by the CA`, certOrigin);
  }
  let matches = false;
  try {
    matches = leaf.checkPrivateKey(privateKey);
  } catch {
    matches = false;
  }
  if (!matches) {
    const keyOrigin = origin('key', files);
    throw new MeshlessError(codes.KEY_MISMATCH, `${describe(keyOrigin)} does not belong to the leaf certificate in ${where} (serial ${leaf.serialNumber}); the files come from different issuances — re-issue or remount them together`, keyOrigin);
  }
  const notBefore = new Date(leaf.validFrom);
  const notAfter = new Date(leaf.validTo);
  if (notBefore.getTime() - skew > now) {
    throw new MeshlessError(codes.CERT_NOT_YET_VALID, `${where}: the leaf is not valid before ${notBefore.toISOString()} (now ${new Date(now).toISOString()}); check the clock or wait`, certOrigin);
  }
  if (notAfter.getTime() + skew < now) {
    throw new MeshlessError(codes.CERT_EXPIRED, `${where}: the leaf expired at ${notAfter.toISOString()}; the issuer (cert-manager, SPIRE…) has not renewed it`, certOrigin);
  }
  const verified = verifyChain(leaf, chain.slice(1), bundle, now, skew);
  if ('problem' in verified) {
    const caOrigin = origin('ca', files);
    throw new MeshlessError(codes.CHAIN_UNTRUSTED, `${where} does not verify to the trust bundle in ${describe(caOrigin)}: ${verified.problem}; mount the bundle of the CA that issued this certificate (during a CA rotation, both roots)`, caOrigin);
  }
  const identity = identityOf(leaf);
  if (options.expectIdentity !== undefined) {
    const decision = allowList(options.expectIdentity)(identity);
    if (!decision.allowed) {
      throw new MeshlessError(codes.IDENTITY_MISMATCH, `${where}: own identity ${String(identity)} is not the one expected (${decision.reason}); mount the certificate of this service`, { ...certOrigin, peer: String(identity) });
    }
  }
  const certPem = certificatesToPem(chain);
  const bundlePem = certificatesToPem(bundle);
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const ownBundle = Object.freeze([...bundle]);
  const notices: string[] = [];
  const bundles = federatedBundles(input.federation, identity.trustDomain, files, notices);
  if (identity.trustDomain !== undefined) bundles.set(identity.trustDomain, ownBundle);
  const sorted = new Map([...bundles].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  const trustPem = certificatesToPem(unionOf(ownBundle, sorted));
  const trustText = bundlePem + [...sorted].map(([td, certs]) => `${td}\n${certificatesToPem(certs)}`).join('\0');
  const credential: Credential = {
    leaf,
    chain: Object.freeze([...chain]),
    bundle: ownBundle,
    certPem,
    bundlePem,
    trustDomain: identity.trustDomain,
    bundles: readonlyMap(sorted),
    trustPem,
    notices: Object.freeze(notices),
    privateKey,
    identity,
    notBefore,
    notAfter,
    generation: options.generation ?? 1,
    contentHash: hash(certPem, keyPem, trustText),
    bundleHash: hash(trustText),
  };
  Object.defineProperty(credential, inspect.custom, {
    value: () => `Credential(${String(identity)}, generation ${credential.generation}, notAfter ${notAfter.toISOString()})`,
  });
  Object.defineProperty(credential, 'toJSON', {
    value: () => ({ identity: String(identity), serialNumber: identity.serialNumber, generation: credential.generation, notBefore, notAfter }),
  });
  // Not enumerable: never in JSON, util.inspect, spreads or logs.
  Object.defineProperty(credential, keyPemSymbol, { value: keyPem });
  Object.freeze(credential);
  return credential;
}
