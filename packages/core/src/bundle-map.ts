import { trustDomainProblem } from './spiffe-id.js';
import { bundleError, bundleFromJwks, parseJsonStrictly, textOf, type BundleContext, type SpiffeBundle } from './spiffe-bundle.js';

export interface ParseBundleMapOptions {
  /** The file it was read from, for messages and `err.file`. */
  file?: string;
}

/**
 * Reads a SPIFFE bundle map, the file grpc-go reads as `spiffe_trust_bundle_map_file`:
 * `{ "trust_domains": { "partner.example": <SPIFFE bundle>, … } }`. Keys are bare trust domain
 * names; `spiffe://partner.example` is accepted too. A trust domain given twice (as two raw JSON
 * keys, or as `td` and `spiffe://td`), a bad trust domain name or a bad bundle is a
 * `MESHLESS_ERR_BUNDLE_INVALID` naming the file and the trust domain: the whole map is refused.
 * Returns the bundles keyed by bare trust domain, sorted by name.
 */
export function parseBundleMap(input: string | Buffer, options: ParseBundleMapOptions = {}): ReadonlyMap<string, SpiffeBundle> {
  const label = options.file === undefined ? 'bundle map' : `bundle map file ${options.file}`;
  const ctx: BundleContext = { label, trustDomain: undefined, file: options.file, field: 'bundleMap' };
  const text = textOf(input);
  if (text.trim().length === 0) throw bundleError(ctx, 'is empty; it should hold { "trust_domains": { "<trust domain>": <SPIFFE bundle>, … } }');
  const doc = parseJsonStrictly(text, ctx);
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw bundleError(ctx, 'is not a JSON object; a bundle map is { "trust_domains": { … } }');
  const domains = (doc as Record<string, unknown>).trust_domains;
  if (typeof domains !== 'object' || domains === null || Array.isArray(domains)) {
    throw bundleError(ctx, `has no "trust_domains" object (it should map trust domain names to SPIFFE bundles)${Array.isArray(domains) ? '; it is an array' : ''}`);
  }
  const rawKeyOf = new Map<string, string>();
  const out = new Map<string, SpiffeBundle>();
  for (const [key, value] of Object.entries(domains as Record<string, unknown>)) {
    const td = key.startsWith('spiffe://') ? key.slice('spiffe://'.length).replace(/\/$/, '') : key;
    const problem = trustDomainProblem(td);
    if (problem !== undefined) throw bundleError(ctx, `${JSON.stringify(key)} is not a trust domain name (${problem}); write it as "partner.example" or "spiffe://partner.example"`);
    const earlier = rawKeyOf.get(td);
    if (earlier !== undefined) throw bundleError(ctx, `trust domain ${td} is given twice (${JSON.stringify(earlier)} and ${JSON.stringify(key)}); give each trust domain one bundle`);
    rawKeyOf.set(td, key);
    out.set(td, bundleFromJwks(value, { label: `${label}, trust domain ${td}`, trustDomain: td, file: options.file, field: `bundleMap[${td}]` }));
  }
  return new Map([...out].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
