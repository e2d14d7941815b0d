import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import fc from 'fast-check';
import { codes, formatBundleMap, formatSpiffeBundle, MeshlessError, parseBundleMap, parseSpiffeBundle } from '@meshless/core';
import { createTestCA } from '@meshless/testing';
import { findDuplicateJsonKey } from '../src/json-duplicates.js';

// Property tests for the bundle parsers: any input gives a bundle or a BUNDLE_INVALID error —
// never another exception, a crash or a hang — and the duplicate-key scan agrees with a naive
// reference.

const RUNS = Number(process.env.MESHLESS_FUZZ_RUNS ?? 2000);

function onlyBundleErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof MeshlessError) || err.code !== codes.BUNDLE_INVALID) throw err;
  }
}

/** A JSON tree whose objects are entry lists, so a key may repeat. */
type Tree = null | boolean | number | string | Tree[] | { entries: Array<[string, Tree]> };

const { tree } = fc.letrec<{ tree: Tree }>((tie) => ({
  tree: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom(null, true, 1, 'v'),
    fc.array(tie('tree'), { maxLength: 3 }),
    fc.record({ entries: fc.array(fc.tuple(fc.constantFrom('a', 'b', 'keys', 'x5c', 'é', '"', '\\'), tie('tree')), { maxLength: 4 }) }),
  ),
}));

/** Writes a key with a random mix of plain and \u-escaped characters. */
function writeKey(key: string, escape: boolean): string {
  if (!escape) return JSON.stringify(key);
  return '"' + [...key].map((ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`).join('') + '"';
}

function render(t: Tree, escape: boolean): string {
  if (Array.isArray(t)) return '[' + t.map((x) => render(x, escape)).join(', ') + ']';
  if (t !== null && typeof t === 'object') return '{' + t.entries.map(([k, v], i) => `${writeKey(k, escape && i % 2 === 1)}: ${render(v, escape)}`).join(',') + '}';
  return JSON.stringify(t);
}

function hasDuplicate(t: Tree): boolean {
  if (Array.isArray(t)) return t.some(hasDuplicate);
  if (t !== null && typeof t === 'object') {
    const keys = t.entries.map(([k]) => k);
    return new Set(keys).size !== keys.length || t.entries.some(([, v]) => hasDuplicate(v));
  }
  return false;
}

describe('fuzz (fast-check): SPIFFE bundles and bundle maps', function () {
  this.timeout(120_000);
  let certs: X509Certificate[];
  let valid: string;
  let validMap: string;
  before(async () => {
    const cas = await Promise.all([
      createTestCA({ trustDomain: 'partner.example' }),
      createTestCA({ trustDomain: 'partner.example', keyType: 'rsa-2048' }),
      createTestCA({ trustDomain: 'partner.example', keyType: 'ed25519' }),
    ]);
    certs = cas.map((ca) => new X509Certificate(ca.certPem));
    valid = formatSpiffeBundle(certs, { sequence: 4, refreshHintSeconds: 60 });
    validMap = formatBundleMap({ 'partner.example': certs.slice(0, 1), 'other.example': certs.slice(1) });
  });

  it('findDuplicateJsonKey finds a repeated key exactly when one object repeats a key', () => {
    fc.assert(
      fc.property(tree, fc.boolean(), (t, escape) => {
        const text = render(t, escape);
        JSON.parse(text); // the scan is only defined on valid JSON
        assert.equal(findDuplicateJsonKey(text) !== undefined, hasDuplicate(t), text);
      }),
      { numRuns: RUNS },
    );
  });

  it('parseSpiffeBundle: any string or JSON value gives a bundle or BUNDLE_INVALID', () => {
    const jsonish = fc.jsonValue().map((v) => JSON.stringify(v));
    const keysDoc = fc.array(fc.dictionary(fc.constantFrom('use', 'kty', 'x5c', 'kid', 'x', 'crv'), fc.oneof(fc.jsonValue(), fc.constantFrom('x509-svid', 'EC', 'RSA', 'OKP'), fc.array(fc.oneof(fc.string(), fc.base64String())))), { maxLength: 4 })
      .map((keys) => JSON.stringify({ keys }));
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), jsonish, keysDoc, fc.string().map((s) => '{' + s), fc.string().map((s) => '-----BEGIN CERTIFICATE-----\n' + s)), fc.option(fc.constantFrom('partner.example', 'spiffe://partner.example')), (text, td) => {
        onlyBundleErrors(() => parseSpiffeBundle(text, td === null ? {} : { trustDomain: td }));
      }),
      { numRuns: RUNS },
    );
  });

  it('parseSpiffeBundle and parseBundleMap: a mutated valid file gives a result or BUNDLE_INVALID', () => {
    const mutation = fc.tuple(fc.nat(), fc.nat({ max: 8 }), fc.string({ maxLength: 4 }));
    const mutate = (text: string, [at, del, ins]: [number, number, string]): string => {
      const i = at % (text.length + 1);
      return text.slice(0, i) + ins + text.slice(i + del);
    };
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 3 }), (mutations) => {
        const bundle = mutations.reduce(mutate, valid);
        const map = mutations.reduce(mutate, validMap);
        onlyBundleErrors(() => parseSpiffeBundle(bundle, { trustDomain: 'partner.example', file: '/b.json' }));
        onlyBundleErrors(() => parseBundleMap(map, { file: '/m.json' }));
      }),
      { numRuns: RUNS },
    );
  });

  it('parseBundleMap: any trust_domains object gives a map or BUNDLE_INVALID', () => {
    const key = fc.oneof(fc.string(), fc.constantFrom('partner.example', 'spiffe://partner.example', 'spiffe://partner.example/', 'PARTNER.example', '__proto__', 'constructor'));
    fc.assert(
      fc.property(fc.dictionary(key, fc.oneof(fc.jsonValue(), fc.constant({ keys: [] }), fc.constant(JSON.parse(valid) as unknown))), (domains) => {
        onlyBundleErrors(() => parseBundleMap(JSON.stringify({ trust_domains: domains })));
      }),
      { numRuns: RUNS },
    );
  });

  it('formatSpiffeBundle → parseSpiffeBundle keeps every CA, in order, and the sequence', () => {
    fc.assert(
      fc.property(fc.subarray([0, 1, 2]), fc.option(fc.nat()), (picked, sequence) => {
        const chosen = picked.map((i) => certs[i]!);
        const parsed = parseSpiffeBundle(formatSpiffeBundle(chosen, sequence === null ? {} : { sequence }));
        assert.deepEqual(parsed.x509Authorities.map((c) => c.fingerprint256), chosen.map((c) => c.fingerprint256));
        assert.equal(parsed.sequence, sequence ?? undefined);
      }),
      { numRuns: Math.min(RUNS, 200) },
    );
  });
});
