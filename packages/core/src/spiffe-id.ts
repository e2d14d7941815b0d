import { MeshlessError, codes } from './errors.js';

const SCHEME = 'spiffe://';
const MAX_ID_BYTES = 2048;
const MAX_TRUST_DOMAIN = 255;

/** Characters allowed in a trust domain name: lowercase letters, digits, `.`, `-`, `_`. */
function isTrustDomainChar(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x2d || c === 0x5f;
}

/** Characters allowed in a path segment: letters, digits, `.`, `-`, `_`. */
function isPathChar(c: number): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) ||
    c === 0x2e || c === 0x2d || c === 0x5f
  );
}

/** Returns why `td` is not a valid trust domain name, or undefined when it is. */
export function trustDomainProblem(td: string): string | undefined {
  if (td.length === 0) return 'trust domain is missing';
  if (td.length > MAX_TRUST_DOMAIN) return `trust domain is longer than ${MAX_TRUST_DOMAIN} characters`;
  for (let i = 0; i < td.length; i++) {
    const c = td.charCodeAt(i);
    if (isTrustDomainChar(c)) continue;
    const ch = td[i];
    if (ch === ':') return 'trust domain must not contain a port';
    if (ch === '@') return 'trust domain must not contain user info';
    if (c >= 0x41 && c <= 0x5a) return 'trust domain must be lowercase';
    return `trust domain contains ${JSON.stringify(ch)}: only lowercase letters, digits, ".", "-" and "_" are allowed`;
  }
  return undefined;
}

/** Returns why `path` (with leading slash, or empty) is not a valid SPIFFE ID path. */
export function pathProblem(path: string): string | undefined {
  if (path.length === 0) return undefined;
  if (path.charCodeAt(0) !== 0x2f) return 'path must start with "/"';
  let start = 1;
  for (let i = 1; i <= path.length; i++) {
    if (i < path.length && path.charCodeAt(i) !== 0x2f) continue;
    const seg = path.slice(start, i);
    if (seg.length === 0) return i === path.length ? 'path must not end with "/"' : 'path must not contain empty segments';
    if (seg === '.' || seg === '..') return 'path must not contain "." or ".." segments';
    for (let j = 0; j < seg.length; j++) {
      if (isPathChar(seg.charCodeAt(j))) continue;
      const ch = seg[j];
      if (ch === '?') return 'SPIFFE ID must not contain a query';
      if (ch === '#') return 'SPIFFE ID must not contain a fragment';
      if (ch === '%') return 'path must not contain percent-encoded characters';
      return `path segment contains ${JSON.stringify(ch)}: only letters, digits, ".", "-" and "_" are allowed`;
    }
    start = i + 1;
  }
  return undefined;
}

/** Returns why `s` is not a valid SPIFFE ID, or undefined when it is. */
export function spiffeIdProblem(s: string): string | undefined {
  if (typeof s !== 'string') return 'SPIFFE ID must be a string';
  if (s.length === 0) return 'SPIFFE ID is empty';
  if (Buffer.byteLength(s) > MAX_ID_BYTES) return `SPIFFE ID is longer than ${MAX_ID_BYTES} bytes`;
  if (!s.startsWith(SCHEME)) {
    return s.toLowerCase().startsWith(SCHEME) ? 'scheme must be lowercase "spiffe://"' : 'scheme is missing or is not "spiffe://"';
  }
  const rest = s.slice(SCHEME.length);
  const slash = rest.indexOf('/');
  const td = slash === -1 ? rest : rest.slice(0, slash);
  const hashOrQuery = td.search(/[?#]/);
  if (hashOrQuery !== -1) return td[hashOrQuery] === '?' ? 'SPIFFE ID must not contain a query' : 'SPIFFE ID must not contain a fragment';
  return trustDomainProblem(td) ?? pathProblem(slash === -1 ? '' : rest.slice(slash));
}

/**
 * A parsed, valid SPIFFE ID: `spiffe://<trust-domain>/<path>`.
 * Immutable; `toString()` gives the canonical string back.
 */
export class SpiffeId {
  readonly trustDomain: string;
  /** The path with its leading slash (`/ns/pay/sa/api`), or `''` for a trust domain's own ID. */
  readonly path: string;
  /** The path split into segments (`['ns', 'pay', 'sa', 'api']`). */
  readonly segments: readonly string[];

  private constructor(trustDomain: string, path: string) {
    this.trustDomain = trustDomain;
    this.path = path;
    this.segments = Object.freeze(path === '' ? [] : path.slice(1).split('/'));
    Object.freeze(this);
  }

  /** Parses `s`, throwing `MESHLESS_ERR_INVALID_SPIFFE_ID` with the rule it breaks. */
  static parse(s: string): SpiffeId {
    const problem = spiffeIdProblem(s);
    if (problem !== undefined) {
      const shown = typeof s === 'string' ? JSON.stringify(s.length > 120 ? `${s.slice(0, 120)}…` : s) : String(s);
      throw new MeshlessError(codes.INVALID_SPIFFE_ID, `invalid SPIFFE ID ${shown}: ${problem}`);
    }
    const rest = s.slice(SCHEME.length);
    const slash = rest.indexOf('/');
    return slash === -1 ? new SpiffeId(rest, '') : new SpiffeId(rest.slice(0, slash), rest.slice(slash));
  }

  /** True when `s` is a valid SPIFFE ID. */
  static isValid(s: string): boolean {
    return spiffeIdProblem(s) === undefined;
  }

  /** The SPIFFE ID of a trust domain (`spiffe://td`). */
  static fromTrustDomain(td: string): SpiffeId {
    return SpiffeId.parse(SCHEME + td);
  }

  toString(): string {
    return SCHEME + this.trustDomain + this.path;
  }

  toJSON(): string {
    return this.toString();
  }
}
