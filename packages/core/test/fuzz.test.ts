import assert from 'node:assert/strict';
import fc from 'fast-check';
import { allowList, createPeer, loadCredential, MeshlessError, SpiffeId, type Peer } from '@meshless/core';
import { OpenSslCA } from './helpers/openssl.js';

// Property tests: parsers and matchers only ever answer with a value or a coded MeshlessError —
// never another exception, a crash or a hang — and the matcher agrees with a naive reference.

const RUNS = Number(process.env.MESHLESS_FUZZ_RUNS ?? 2000);

function onlyMeshlessErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof MeshlessError) || !err.code.startsWith('MESHLESS_ERR_')) throw err;
  }
}

const segment = fc.oneof(fc.constantFrom('ns', 'pay', 'sa', 'api', 'web', 'a', 'b'), fc.stringMatching(/^[A-Za-z0-9._-]{1,6}$/).filter((s) => s !== '.' && s !== '..'));
const trustDomain = fc.constantFrom('prod.example', 'dev.example', 'td');
const spiffeId = fc.tuple(trustDomain, fc.array(segment, { minLength: 1, maxLength: 5 })).map(([td, segs]) => `spiffe://${td}/${segs.join('/')}`);
const ruleSegment = fc.oneof({ weight: 4, arbitrary: segment }, { weight: 1, arbitrary: fc.constant('*') });
const spiffeRule = fc
  .tuple(trustDomain, fc.array(ruleSegment, { minLength: 0, maxLength: 4 }), fc.boolean())
  .filter(([, segs, rest]) => segs.length > 0 || rest)
  .map(([td, segs, rest]) => `spiffe://${td}/${[...segs, ...(rest ? ['**'] : [])].join('/')}`);

/** The obvious, slow reference matcher for SPIFFE rules. */
function referenceMatch(rule: string, id: string): boolean {
  const [rtd, ...rsegs] = rule.slice(9).split('/');
  const [itd, ...isegs] = id.slice(9).split('/');
  if (rtd !== itd) return false;
  const rest = rsegs[rsegs.length - 1] === '**';
  const fixed = rest ? rsegs.slice(0, -1) : rsegs;
  if (rest ? isegs.length <= fixed.length : isegs.length !== fixed.length) return false;
  return fixed.every((s, i) => s === '*' || s === isegs[i]);
}

function peerOf(id: string): Peer {
  return createPeer({ spiffeId: id, trustDomain: SpiffeId.parse(id).trustDomain, dnsNames: [], uris: [id], serialNumber: '01', fingerprint256: 'AA', notBefore: new Date(0), notAfter: new Date(8.64e15) });
}

describe('fuzz (fast-check)', function () {
  this.timeout(120_000);

  it('SpiffeId.parse: any string gives an ID that round-trips, or a coded error', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), spiffeId, fc.tuple(spiffeId, fc.string()).map(([a, b]) => a + b)), (s) => {
        let id: SpiffeId | undefined;
        onlyMeshlessErrors(() => (id = SpiffeId.parse(s)));
        assert.equal(SpiffeId.isValid(s), id !== undefined);
        if (id) assert.equal(id.toString(), s);
      }),
      { numRuns: RUNS },
    );
  });

  it('allowList: any rule string compiles or fails with a coded error', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), spiffeRule, fc.string().map((s) => 'spiffe://' + s), fc.string().map((s) => 'dns:' + s), fc.string().map((s) => 'cn:' + s)), (rule) => {
        onlyMeshlessErrors(() => allowList([rule]));
      }),
      { numRuns: RUNS },
    );
  });

  it('allowList matches exactly like the reference matcher', () => {
    fc.assert(
      fc.property(fc.array(spiffeRule, { minLength: 1, maxLength: 6 }), fc.array(spiffeId, { minLength: 1, maxLength: 6 }), (rules, ids) => {
        const authorize = allowList(rules);
        for (const id of ids) {
          const want = rules.some((r) => referenceMatch(r, id));
          const got = authorize(peerOf(id));
          assert.equal(got.allowed, want, `${JSON.stringify(rules)} vs ${id}`);
          if (got.allowed) assert.ok(referenceMatch(got.rule!, id), 'the rule reported must match');
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('deny always wins', () => {
    fc.assert(
      fc.property(fc.array(spiffeRule, { minLength: 1, maxLength: 4 }), fc.array(spiffeRule, { minLength: 1, maxLength: 4 }), spiffeId, (allow, deny, id) => {
        const d = allowList(allow, { deny })(peerOf(id));
        const want = allow.some((r) => referenceMatch(r, id)) && !deny.some((r) => referenceMatch(r, id));
        assert.equal(d.allowed, want);
      }),
      { numRuns: RUNS },
    );
  });

  describe('credential loader with random and mutated PEM', () => {
    let material: { cert: string; key: string; ca: string } | undefined;
    before(function () {
      if (!OpenSslCA.available()) this.skip();
      const ca = new OpenSslCA();
      const k = ca.key('ec-sec1');
      material = { cert: ca.issue(k, ['URI.1 = spiffe://prod.example/a']), key: ca.read(k), ca: ca.caCert };
      ca.close();
    });

    it('never throws anything but a coded MeshlessError', () => {
      const m = material!;
      const mutate = (s: string) =>
        fc.tuple(fc.nat({ max: s.length - 1 }), fc.nat({ max: 40 }), fc.string({ maxLength: 8 })).map(([at, cut, ins]) => s.slice(0, at) + ins + s.slice(at + cut));
      fc.assert(
        fc.property(
          fc.record({
            cert: fc.oneof(fc.constant(m.cert), mutate(m.cert), fc.string()),
            key: fc.oneof(fc.constant(m.key), mutate(m.key), fc.string()),
            ca: fc.oneof(fc.constant(m.ca), mutate(m.ca), fc.string()),
          }),
          (input) => {
            onlyMeshlessErrors(() => loadCredential(input));
          },
        ),
        { numRuns: Math.min(RUNS, 600) },
      );
    });
  });
});
