import { X509Certificate } from 'node:crypto';
import { MeshlessError, codes } from './errors.js';
import { findDuplicateJsonKey } from './json-duplicates.js';
import { parseCertificates } from './pem.js';

/** One trust domain's bundle as read from a SPIFFE bundle (JWK Set) or from PEM certificates. */
export interface SpiffeBundle {
  /** The trust domain it was read for (bare name), when the caller said. */
  readonly trustDomain: string | undefined;
  /** How it was written: `jwks` (the SPIFFE Trust Domain and Bundle JWK Set) or `pem`. */
  readonly format: 'jwks' | 'pem';
  /**
   * The X.509 authorities: CA certificates that may issue X509-SVIDs of the trust domain, each
   * once. Empty only for a JWK Set with no x509-svid key (`"keys": []`: the trust domain revoked
   * its keys, its SVIDs are untrusted).
   */
  readonly x509Authorities: readonly X509Certificate[];
  /** `spiffe_sequence`, when set (a JSON number: exact up to 2^53). */
  readonly sequence: number | undefined;
  /** `spiffe_refresh_hint` in seconds, when set. */
  readonly refreshHintSeconds: number | undefined;
  /** Keys that were skipped and why (JWT authorities, keys of unknown `use` or `kty`). */
  readonly ignoredKeys: readonly { readonly index: number; readonly reason: string }[];
}

export interface ParseSpiffeBundleOptions {
  /** The trust domain this bundle is for (bare or `spiffe://`), for messages and the result. */
  trustDomain?: string;
  /** The file it was read from, for messages and `err.file`. */
  file?: string;
}

/** Where a bundle came from, for messages. */
export interface BundleContext {
  /** E.g. `SPIFFE bundle file /etc/partner/bundle.json for trust domain partner.example`. */
  label: string;
  trustDomain: string | undefined;
  file: string | undefined;
  field: string;
}

/** JWK key types whose x509-svid keys meshless reads (the types X.509 CA keys have). */
const knownKeyTypes: ReadonlySet<string> = new Set(['EC', 'RSA', 'OKP']);
const jwkParams = ['crv', 'x', 'y', 'n', 'e'] as const;
const STANDARD_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export function bundleError(ctx: BundleContext, why: string, cause?: unknown): MeshlessError {
  return new MeshlessError(codes.BUNDLE_INVALID, `${ctx.label}: ${why}`, {
    field: ctx.field,
    ...(ctx.file === undefined ? {} : { file: ctx.file }),
    ...(cause === undefined ? {} : { cause }),
  });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function keyTypeOf(cert: X509Certificate): string | undefined {
  switch (cert.publicKey.asymmetricKeyType) {
    case 'ec':
      return 'EC';
    case 'rsa':
    case 'rsa-pss':
      return 'RSA';
    case 'ed25519':
    case 'ed448':
      return 'OKP';
    default:
      return undefined;
  }
}

/** The certificate's public key as JWK parameters, or undefined when Node cannot export it (RSA-PSS). */
export function publicJwkOf(cert: X509Certificate): Record<string, string> | undefined {
  try {
    return cert.publicKey.export({ format: 'jwk' }) as Record<string, string>;
  } catch {
    return undefined;
  }
}

function integerField(doc: Record<string, unknown>, name: string, ctx: BundleContext): number | undefined {
  const value = doc[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw bundleError(ctx, `${name} must be a non-negative integer (got ${JSON.stringify(value)})`);
  }
  return value;
}

/** Node parses some certificates whose public key it cannot decode; such a CA could verify nothing (and would throw later). */
function usablePublicKey(cert: X509Certificate, at: string, ctx: BundleContext): void {
  try {
    void cert.publicKey.asymmetricKeyType;
  } catch (cause) {
    throw bundleError(ctx, `${at}: the public key of ${JSON.stringify(cert.subject.replace(/\n/g, ', '))} cannot be read (${(cause as Error).message})`, cause);
  }
}

/** Reads the one certificate of an x509-svid key; throws BUNDLE_INVALID naming the key. */
function x509Authority(key: Record<string, unknown>, index: number, kty: string, ctx: BundleContext): X509Certificate {
  const at = `keys[${index}] (use "x509-svid")`;
  const x5c = key.x5c;
  if (!Array.isArray(x5c)) throw bundleError(ctx, `${at} has no x5c array: an x509-svid key carries its CA certificate in x5c`);
  if (x5c.length !== 1) throw bundleError(ctx, `${at}: x5c holds ${x5c.length} certificates; an x509-svid key holds exactly one CA certificate (write one key per CA)`);
  const b64 = x5c[0];
  if (typeof b64 !== 'string' || b64.length === 0 || !STANDARD_BASE64.test(b64)) {
    throw bundleError(ctx, `${at}: x5c[0] is not standard base64 (RFC 7517 §4.7: base64 of the DER certificate, not base64url, no line breaks)`);
  }
  const der = Buffer.from(b64, 'base64');
  let cert: X509Certificate;
  try {
    if (der[0] !== 0x30) throw new Error('not a DER SEQUENCE');
    cert = new X509Certificate(der);
  } catch (cause) {
    throw bundleError(ctx, `${at}: x5c[0] is not a DER X.509 certificate (${(cause as Error).message})`, cause);
  }
  if (!cert.raw.equals(der)) throw bundleError(ctx, `${at}: x5c[0] has bytes after the DER certificate`);
  usablePublicKey(cert, at, ctx);
  const subject = JSON.stringify(cert.subject.replace(/\n/g, ', '));
  if (!cert.ca) throw bundleError(ctx, `${at}: ${subject} is not a CA certificate; a bundle holds the CAs that issue SVIDs, never a workload's leaf`);
  const certKty = keyTypeOf(cert);
  if (certKty !== kty) throw bundleError(ctx, `${at}: kty is ${JSON.stringify(kty)} but the certificate ${subject} has a ${cert.publicKey.asymmetricKeyType ?? 'unknown'} key`);
  const jwk = publicJwkOf(cert);
  if (jwk !== undefined) {
    for (const p of jwkParams) {
      if (key[p] !== undefined && key[p] !== jwk[p]) throw bundleError(ctx, `${at}: the key parameter "${p}" does not match the public key of the certificate ${subject} in x5c`);
    }
  }
  return cert;
}

/** Reads a parsed JWK Set (one bundle) into a SpiffeBundle. */
export function bundleFromJwks(doc: unknown, ctx: BundleContext): SpiffeBundle {
  if (!isObject(doc)) throw bundleError(ctx, 'is not a JSON object; a SPIFFE bundle is a JWK Set: { "keys": [ … ] }');
  if (doc.keys === undefined) throw bundleError(ctx, 'has no "keys" member; a SPIFFE bundle must have one (an empty array means the trust domain revoked its keys)');
  if (!Array.isArray(doc.keys)) throw bundleError(ctx, '"keys" must be an array of JWKs');
  const sequence = integerField(doc, 'spiffe_sequence', ctx);
  const refreshHintSeconds = integerField(doc, 'spiffe_refresh_hint', ctx);
  const authorities: X509Certificate[] = [];
  const seen = new Set<string>();
  const ignoredKeys: { index: number; reason: string }[] = [];
  doc.keys.forEach((key: unknown, index: number) => {
    if (!isObject(key)) throw bundleError(ctx, `keys[${index}] is not a JSON object`);
    const use = key.use;
    if (use === 'jwt-svid') {
      ignoredKeys.push({ index, reason: 'a JWT-SVID authority (meshless verifies X509-SVIDs only)' });
      return;
    }
    if (use !== 'x509-svid') {
      ignoredKeys.push({ index, reason: use === undefined ? 'it has no "use"' : `unknown use ${JSON.stringify(use)}` });
      return;
    }
    const kty = key.kty;
    if (typeof kty !== 'string' || kty.length === 0) throw bundleError(ctx, `keys[${index}] (use "x509-svid") has no "kty"; every JWK must name its key type`);
    if (!knownKeyTypes.has(kty)) {
      ignoredKeys.push({ index, reason: `unknown kty ${JSON.stringify(kty)}` });
      return;
    }
    const cert = x509Authority(key, index, kty, ctx);
    if (seen.has(cert.fingerprint256)) return;
    seen.add(cert.fingerprint256);
    authorities.push(cert);
  });
  return Object.freeze({
    trustDomain: ctx.trustDomain,
    format: 'jwks' as const,
    x509Authorities: Object.freeze(authorities),
    sequence,
    refreshHintSeconds,
    ignoredKeys: Object.freeze(ignoredKeys.map((k) => Object.freeze(k))),
  });
}

/** JSON.parse, then a scan for keys given twice in one object; throws BUNDLE_INVALID. */
export function parseJsonStrictly(text: string, ctx: BundleContext): unknown {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (cause) {
    throw bundleError(ctx, `is not valid JSON (${(cause as Error).message})`, cause);
  }
  const dup = findDuplicateJsonKey(text);
  if (dup !== undefined) {
    const inside = dup.path.length === 0 ? 'at the top level' : `in ${dup.path.map((k) => JSON.stringify(k)).join(' → ')}`;
    throw bundleError(ctx, `the key ${JSON.stringify(dup.key)} appears twice ${inside}; JSON parsers keep only one of them silently — remove the duplicate`);
  }
  return doc;
}

export function textOf(input: string | Buffer): string {
  const text = typeof input === 'string' ? input : Buffer.isBuffer(input) ? input.toString('utf8') : '';
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

function bareTrustDomain(td: string | undefined): string | undefined {
  if (td === undefined) return undefined;
  return td.startsWith('spiffe://') ? td.slice('spiffe://'.length).replace(/\/$/, '') : td;
}

/**
 * Reads one trust domain's bundle: a SPIFFE bundle (the JWK Set of the SPIFFE Trust Domain and
 * Bundle spec) or PEM CA certificates, told apart by content. In a JWK Set, `keys` is required
 * (`[]`: the trust domain revoked its keys); keys with `use: "x509-svid"` must have a `kty` and
 * an `x5c` of exactly one standard-base64 DER CA certificate; keys of other `use` (JWT
 * authorities) or unknown `kty` are skipped (listed in `ignoredKeys`). A key given twice in one
 * JSON object is an error. Every problem is a `MESHLESS_ERR_BUNDLE_INVALID` naming the file,
 * the trust domain and the key index.
 */
export function parseSpiffeBundle(input: string | Buffer, options: ParseSpiffeBundleOptions = {}): SpiffeBundle {
  const trustDomain = bareTrustDomain(options.trustDomain);
  const label = `${options.file === undefined ? 'SPIFFE bundle' : `bundle file ${options.file}`}${trustDomain === undefined ? '' : ` for trust domain ${trustDomain}`}`;
  const ctx: BundleContext = { label, trustDomain, file: options.file, field: trustDomain === undefined ? 'federation' : `federation[${trustDomain}]` };
  const text = textOf(input);
  const trimmed = text.trim();
  if (trimmed.length === 0) throw bundleError(ctx, 'is empty; it should hold a SPIFFE bundle (JSON) or PEM CA certificates (an explicit revocation is { "keys": [] })');
  if (trimmed.startsWith('{')) return bundleFromJwks(parseJsonStrictly(text, ctx), ctx);
  if (!trimmed.includes('-----BEGIN')) throw bundleError(ctx, 'is neither a SPIFFE bundle (a JSON object with "keys") nor PEM certificates; check that the right file is mounted');
  let certs: X509Certificate[];
  try {
    certs = parseCertificates(text, { field: ctx.field, ...(options.file === undefined ? {} : { file: options.file }) });
  } catch (cause) {
    throw bundleError(ctx, `holds no readable PEM certificates (${(cause as Error).message})`, cause);
  }
  const authorities: X509Certificate[] = [];
  const seen = new Set<string>();
  certs.forEach((cert, i) => {
    usablePublicKey(cert, `certificate #${i + 1}`, ctx);
    if (!cert.ca) throw bundleError(ctx, `certificate #${i + 1} ${JSON.stringify(cert.subject.replace(/\n/g, ', '))} is not a CA certificate; a bundle holds the CAs that issue SVIDs, never a workload's leaf`);
    if (seen.has(cert.fingerprint256)) return;
    seen.add(cert.fingerprint256);
    authorities.push(cert);
  });
  return Object.freeze({ trustDomain, format: 'pem' as const, x509Authorities: Object.freeze(authorities), sequence: undefined, refreshHintSeconds: undefined, ignoredKeys: Object.freeze([]) });
}
