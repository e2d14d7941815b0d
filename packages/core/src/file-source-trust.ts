import { createHash, type X509Certificate } from 'node:crypto';
import path from 'node:path';
import { parseBundleMap } from './bundle-map.js';
import { MeshlessError, codes } from './errors.js';
import { readFiles, type FileToRead } from './file-source-read.js';
import { parseSpiffeBundle, type SpiffeBundle } from './spiffe-bundle.js';
import { trustDomainProblem } from './spiffe-id.js';

/** Where a file source reads federated bundles from (absolute paths). */
export interface TrustFiles {
  /** Trust domain (bare) → its bundle file (PEM or SPIFFE bundle). */
  readonly federation: Readonly<Record<string, string>>;
  /** The bundle map file (grpc-go's `{ "trust_domains": … }`), when configured. */
  readonly bundleMap: string | undefined;
}

/** One validated generation of the federated bundles. */
export interface TrustSet {
  /** Trust domain → CA certificates, as loadCredential's `federation` takes them. */
  readonly federation: ReadonlyMap<string, readonly X509Certificate[]>;
  /** Trust domain → the file its bundle came from (for loadCredential's messages). */
  readonly files: Readonly<Record<string, string>>;
  /** The parsed bundles (sequence numbers, ignored keys), for logs and `meshless inspect`. */
  readonly bundles: ReadonlyMap<string, SpiffeBundle>;
  /** What is worth logging about how they were combined. */
  readonly notices: readonly string[];
  /** SHA-256 over the bytes read: equal bytes, equal hash. */
  readonly raw: string;
}

export const noTrust: TrustSet = Object.freeze({ federation: new Map(), files: {}, bundles: new Map(), notices: [], raw: '' });

function invalid(field: string, why: string): MeshlessError {
  return new MeshlessError(codes.INVALID_OPTION, `fileSource option ${field} ${why}`, { field });
}

/**
 * Validates `federation` and `bundleMap` of a file source location and resolves their paths
 * (relative ones against `dir`, like `certFile`). Throws INVALID_OPTION.
 */
export function resolveTrustFiles(location: { dir?: string | undefined; federation?: unknown; bundleMap?: unknown }): TrustFiles {
  const base = location.dir === undefined ? undefined : path.resolve(location.dir);
  const resolve = (file: string): string => (base === undefined ? path.resolve(file) : path.resolve(base, file));
  const federation: Record<string, string> = {};
  if (location.federation !== undefined) {
    const f = location.federation;
    if (typeof f !== 'object' || f === null || Array.isArray(f)) throw invalid('federation', "must map trust domains to bundle files, e.g. { 'partner.example': '/etc/partner/bundle.json' }");
    for (const [key, file] of Object.entries(f as Record<string, unknown>)) {
      const td = key.startsWith('spiffe://') ? key.slice('spiffe://'.length).replace(/\/$/, '') : key;
      const problem = trustDomainProblem(td);
      if (problem !== undefined) throw invalid('federation', `has ${JSON.stringify(key)}, which is not a trust domain name (${problem}); write "partner.example" or "spiffe://partner.example"`);
      if (typeof file !== 'string' || file.length === 0) throw invalid(`federation[${td}]`, 'must be a non-empty path string');
      if (federation[td] !== undefined) throw invalid('federation', `names trust domain ${td} twice; give each trust domain one bundle file`);
      federation[td] = resolve(file);
    }
  }
  if (location.bundleMap !== undefined && (typeof location.bundleMap !== 'string' || location.bundleMap.length === 0)) throw invalid('bundleMap', 'must be a non-empty path string');
  const bundleMap = typeof location.bundleMap === 'string' ? resolve(location.bundleMap) : undefined;
  return Object.freeze({ federation: Object.freeze(federation), bundleMap });
}

/** Every file of a TrustFiles, each once. */
export function trustFileList(files: TrustFiles): string[] {
  return [...new Set([...Object.values(files.federation), ...(files.bundleMap === undefined ? [] : [files.bundleMap])])];
}

export function hasTrustFiles(files: TrustFiles): boolean {
  return files.bundleMap !== undefined || Object.keys(files.federation).length > 0;
}

/**
 * Reads every federated bundle file as one consistent snapshot and validates it whole: the
 * bundle map, then each `federation` file (PEM or SPIFFE bundle, detected). A trust domain in
 * both takes its `federation` file (the explicit file wins; a notice says so). Throws the coded
 * error of the first bad file (FILE_UNREADABLE, GENERATION_UNSTABLE or BUNDLE_INVALID naming
 * the file and the trust domain). `previous` is returned as is when no byte changed.
 */
export async function readTrustSet(files: TrustFiles, previous?: TrustSet): Promise<TrustSet> {
  if (!hasTrustFiles(files)) return noTrust;
  const list = trustFileList(files);
  const entries: FileToRead[] = list.map((file) => ({
    file,
    what: file === files.bundleMap ? 'bundle map' : 'federated trust bundle',
    field: file === files.bundleMap ? 'bundleMap' : 'federation',
  }));
  const read = await readFiles(entries, { what: 'federated bundle files', explain: 'the federated bundles' });
  const hash = createHash('sha256');
  list.forEach((file, i) => hash.update(file).update('\0').update(read.bytes[i]!).update('\0'));
  const raw = hash.digest('hex');
  if (previous !== undefined && previous.raw === raw) return previous;
  const bytesOf = (file: string): Buffer => read.bytes[list.indexOf(file)]!;

  const bundles = new Map<string, SpiffeBundle>();
  const sourceOf: Record<string, string> = {};
  const notices: string[] = [];
  if (files.bundleMap !== undefined) {
    for (const [td, bundle] of parseBundleMap(bytesOf(files.bundleMap), { file: files.bundleMap })) {
      bundles.set(td, bundle);
      sourceOf[td] = files.bundleMap;
    }
  }
  for (const [td, file] of Object.entries(files.federation)) {
    const bundle = parseSpiffeBundle(bytesOf(file), { trustDomain: td, file });
    if (bundles.has(td)) notices.push(`trust domain ${td} is in bundle map file ${files.bundleMap} and has its own federation file ${file}; the federation file wins`);
    bundles.set(td, bundle);
    sourceOf[td] = file;
  }
  const sorted = new Map([...bundles].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return Object.freeze({
    federation: new Map([...sorted].map(([td, b]) => [td, b.x509Authorities])),
    files: Object.freeze(sourceOf),
    bundles: sorted,
    notices: Object.freeze(notices),
    raw,
  });
}

/** A short description of each federated bundle, for logs. */
export function trustSummary(set: TrustSet): Record<string, { authorities: number; sequence?: number; file: string }> {
  return Object.fromEntries(
    [...set.bundles].map(([td, b]) => [td, { authorities: b.x509Authorities.length, ...(b.sequence === undefined ? {} : { sequence: b.sequence }), file: set.files[td]! }]),
  );
}
