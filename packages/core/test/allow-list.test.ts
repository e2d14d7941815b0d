import assert from 'node:assert/strict';
import { allowList, createPeer, codes, MeshlessError, type Peer } from '@meshless/core';

function peer(fields: { spiffeId?: string; dnsNames?: string[]; commonName?: string }): Peer {
  const td = fields.spiffeId ? fields.spiffeId.slice(9).split('/')[0] : undefined;
  return createPeer({
    spiffeId: fields.spiffeId,
    trustDomain: td,
    dnsNames: fields.dnsNames ?? [],
    uris: fields.spiffeId ? [fields.spiffeId] : [],
    commonName: fields.commonName,
    serialNumber: '01',
    fingerprint256: 'AA',
    notBefore: new Date(0),
    notAfter: new Date(8.64e15),
  });
}
const id = (s: string) => peer({ spiffeId: s });

describe('allowList', () => {
  const matrix: [string, string, boolean][] = [
    ['spiffe://prod.example/ns/pay/sa/api', 'spiffe://prod.example/ns/pay/sa/api', true],
    ['spiffe://prod.example/ns/pay/sa/api', 'spiffe://prod.example/ns/pay/sa/api2', false],
    ['spiffe://prod.example/ns/pay/sa/api', 'spiffe://prod.example/ns/pay/sa/api/x', false],
    ['spiffe://prod.example/ns/pay/sa/api', 'spiffe://other.example/ns/pay/sa/api', false],
    ['spiffe://prod.example/ns/pay/sa/api', 'spiffe://prod.example/ns/pay/sa/API', false],
    ['spiffe://prod.example/ns/*/sa/api', 'spiffe://prod.example/ns/orders/sa/api', true],
    ['spiffe://prod.example/ns/*/sa/api', 'spiffe://prod.example/ns/a/b/sa/api', false],
    ['spiffe://prod.example/ns/*/sa/api', 'spiffe://prod.example/ns/x/sa/web', false],
    ['spiffe://prod.example/ns/pay/**', 'spiffe://prod.example/ns/pay/sa/api', true],
    ['spiffe://prod.example/ns/pay/**', 'spiffe://prod.example/ns/pay/x', true],
    ['spiffe://prod.example/ns/pay/**', 'spiffe://prod.example/ns/pay', false],
    ['spiffe://prod.example/ns/pay/**', 'spiffe://prod.example/ns/payments/x', false],
    ['spiffe://prod.example/ns/pay/**', 'spiffe://prod.example/ns/pay2/x', false],
    ['spiffe://prod.example/ns/pay/**', 'spiffe://other.example/ns/pay/x', false],
    ['spiffe://prod.example/**', 'spiffe://prod.example/anything/at/all', true],
    ['spiffe://prod.example/**', 'spiffe://prod.example.evil/x', false],
    ['spiffe://prod.example/**', 'spiffe://evil.prod.example/x', false],
    ['spiffe://prod.example/ns/*/sa/**', 'spiffe://prod.example/ns/a/sa/b', true],
    ['spiffe://prod.example/ns/*/sa/**', 'spiffe://prod.example/ns/a/sa/b/c', true],
    ['spiffe://prod.example/ns/*/sa/**', 'spiffe://prod.example/ns/a/sa', false],
    ['spiffe://prod.example/ns/*/sa/**', 'spiffe://prod.example/ns/a/xx/b', false],
    ['spiffe://prod.example/*', 'spiffe://prod.example/a', true],
    ['spiffe://prod.example/*', 'spiffe://prod.example/a/b', false],
  ];
  for (const [rule, who, want] of matrix) {
    it(`${rule} ${want ? 'matches' : 'does not match'} ${who}`, () => {
      const d = allowList([rule])(id(who));
      assert.equal(d.allowed, want, d.reason);
      if (want) assert.equal(d.rule, rule);
      else assert.equal(d.rule, undefined);
    });
  }

  it('matches DNS SANs case-insensitively, with one left-most wildcard label', () => {
    const a = allowList(['dns:api.internal.example', 'dns:*.svc.example']);
    assert.ok(a(peer({ dnsNames: ['API.Internal.Example'] })).allowed);
    assert.ok(a(peer({ dnsNames: ['other.example', 'api.internal.example'] })).allowed);
    assert.ok(a(peer({ dnsNames: ['orders.svc.example'] })).allowed);
    assert.equal(a(peer({ dnsNames: ['a.orders.svc.example'] })).allowed, false);
    assert.equal(a(peer({ dnsNames: ['svc.example'] })).allowed, false);
    assert.equal(a(peer({ dnsNames: ['xapi.internal.example'] })).allowed, false);
    // A DNS rule never matches a SPIFFE ID and vice versa.
    assert.equal(a(id('spiffe://api.internal.example/x')).allowed, false);
  });

  it('matches CN only through cn: rules, exactly', () => {
    const a = allowList(['cn:legacy-batch']);
    assert.ok(a(peer({ commonName: 'legacy-batch' })).allowed);
    assert.equal(a(peer({ commonName: 'Legacy-batch' })).allowed, false);
    assert.equal(a(peer({ dnsNames: ['legacy-batch'] })).allowed, false);
    assert.equal(allowList(['spiffe://td/**'])(peer({ commonName: 'spiffe://td/x' })).allowed, false);
  });

  it('"*" allows any verified peer, but only when written', () => {
    assert.ok(allowList(['*'])(peer({ commonName: 'x' })).allowed);
    assert.ok(allowList('*')(id('spiffe://a/b')).allowed);
  });

  it('deny wins over allow, and says which rule denied', () => {
    const a = allowList(['spiffe://prod.example/**'], { deny: ['spiffe://prod.example/ns/pay/sa/batch', 'spiffe://prod.example/ns/dev/**'] });
    assert.ok(a(id('spiffe://prod.example/ns/pay/sa/api')).allowed);
    const d = a(id('spiffe://prod.example/ns/pay/sa/batch'));
    assert.equal(d.allowed, false);
    assert.equal(d.rule, 'spiffe://prod.example/ns/pay/sa/batch');
    assert.match(d.reason, /denied by rule/);
    assert.equal(a(id('spiffe://prod.example/ns/dev/sa/x')).allowed, false);
  });

  it('accepts functions returning a boolean or a Decision, in allow and deny', () => {
    const a = allowList([(p) => p.dnsNames.includes('ok.example'), (p) => ({ allowed: p.commonName === 'c', rule: 'custom-c', reason: 'custom' })], {
      deny: [function blockEvil(p) { return p.dnsNames.includes('evil.example'); }],
    });
    assert.ok(a(peer({ dnsNames: ['ok.example'] })).allowed);
    const d = a(peer({ commonName: 'c' }));
    assert.equal(d.rule, 'custom-c');
    assert.equal(a(peer({ commonName: 'x' })).allowed, false);
    const denied = a(peer({ dnsNames: ['ok.example', 'evil.example'] }));
    assert.equal(denied.allowed, false);
    assert.equal(denied.rule, 'function blockEvil');
  });

  it('judges a certificate that carries a SPIFFE ID by its SPIFFE ID only: dns: and cn: rules never match it', () => {
    const both = (spiffeId: string) => peer({ spiffeId, dnsNames: ['api.internal.example', 'x.svc.example'], commonName: 'legacy-batch' });
    const a = allowList(['dns:api.internal.example', 'dns:*.svc.example', 'cn:legacy-batch', 'spiffe://prod.example/ns/pay/sa/api']);
    assert.equal(a(both('spiffe://prod.example/ns/evil/sa/x')).allowed, false);
    assert.ok(a(both('spiffe://prod.example/ns/pay/sa/api')).allowed);
    // The same names without a SPIFFE ID still match.
    assert.ok(a(peer({ dnsNames: ['api.internal.example'] })).allowed);
    assert.ok(a(peer({ commonName: 'legacy-batch' })).allowed);
    // Deny rules follow the same principle: a dns: deny does not deny a SPIFFE peer.
    assert.ok(allowList(['spiffe://prod.example/**'], { deny: ['dns:api.internal.example'] })(both('spiffe://prod.example/ns/pay/sa/api')).allowed);
    // "*" and functions see every peer.
    assert.ok(allowList('*')(both('spiffe://prod.example/ns/evil/sa/x')).allowed);
  });

  it('a dns: wildcard never matches a certificate label that is not a DNS label (", DNS:", NUL, spaces)', () => {
    const a = allowList(['dns:*.internal.example']);
    for (const name of ['x, DNS:a.internal.example', 'a\u0000b.internal.example', 'a b.internal.example', '-a.internal.example', '*.internal.example', 'a..internal.example']) {
      assert.equal(a(peer({ dnsNames: [name] })).allowed, false, JSON.stringify(name));
    }
    assert.ok(a(peer({ dnsNames: ['api-1.internal.example'] })).allowed);
  });

  it('deny functions return true to deny; anything but a boolean (a Decision too) denies: deny fails closed', () => {
    const allow = ['*'];
    const p = peer({ dnsNames: ['a.example'] });
    assert.equal(allowList(allow, { deny: () => true })(p).allowed, false);
    assert.ok(allowList(allow, { deny: () => false })(p).allowed);
    const byDecision = allowList(allow, { deny: (() => ({ allowed: false, reason: 'nope' })) as unknown as () => boolean })(p);
    assert.equal(byDecision.allowed, false);
    assert.match(byDecision.reason, /not a boolean/);
    assert.equal(allowList(allow, { deny: (() => undefined) as unknown as () => boolean })(p).allowed, false);
    // An Authorizer as deny: the peers it allows are denied.
    const batch = allowList(['spiffe://prod.example/ns/batch/**']);
    const a = allowList(['spiffe://prod.example/**'], { deny: batch });
    assert.equal(a(id('spiffe://prod.example/ns/batch/x')).allowed, false);
    assert.ok(a(id('spiffe://prod.example/ns/web/x')).allowed);
  });

  it('combines "trust domain OR these admin IDs" from another domain', () => {
    const a = allowList(['spiffe://prod.example/**', 'spiffe://admin.example/ops/alice']);
    assert.ok(a(id('spiffe://prod.example/x')).allowed);
    assert.ok(a(id('spiffe://admin.example/ops/alice')).allowed);
    assert.equal(a(id('spiffe://admin.example/ops/bob')).allowed, false);
  });

  it('denies a peer with no identity the rules can see', () => {
    const d = allowList(['spiffe://prod.example/**'])(peer({}));
    assert.equal(d.allowed, false);
    assert.match(d.reason, /matches no allow rule/);
  });

  it('returns an already compiled authorizer unchanged and exposes its rules', () => {
    const a = allowList(['spiffe://a/b', 'dns:x.example']);
    assert.equal(allowList(a), a);
    assert.deepEqual(a.rules, ['spiffe://a/b', 'dns:x.example']);
    // and can be nested as a rule
    assert.ok(allowList([a])(id('spiffe://a/b')).allowed);
  });

  const bad: [unknown, string, RegExp][] = [
    [[], codes.EMPTY_ALLOW_LIST, /empty/],
    ['', codes.INVALID_RULE, /starts with/],
    ['spiffe://prod.example/**/x', codes.INVALID_RULE, /last segment/],
    ['spiffe://prod.example/sa/api-*', codes.INVALID_RULE, /whole segment/],
    ['spiffe://Prod.example/x', codes.INVALID_RULE, /lowercase/],
    ['spiffe://*/x', codes.INVALID_RULE, /trust domain cannot be a wildcard/],
    ['spiffe://prod.example', codes.INVALID_RULE, /workload path/],
    ['spiffe://prod.example/a//b', codes.INVALID_RULE, /empty segments/],
    ['spiffe://prod.example/a/', codes.INVALID_RULE, /end with/],
    ['dns:', codes.INVALID_RULE, /host name/],
    ['dns:a.*.example', codes.INVALID_RULE, /left-most/],
    ['dns:*.example', codes.INVALID_RULE, /left-most/],
    ['dns:api-*.example.com', codes.INVALID_RULE, /whole label/],
    ['dns:exa mple.com', codes.INVALID_RULE, /not a valid DNS label/],
    ['cn:', codes.INVALID_RULE, /common name/],
    ['uri:http://x', codes.INVALID_RULE, /starts with/],
    [[42], codes.INVALID_RULE, /number/],
  ];
  for (const [rules, code, why] of bad) {
    it(`refuses ${JSON.stringify(rules)} at construction with ${code}`, () => {
      assert.throws(() => allowList(rules as string[]), (err: unknown) => {
        assert.ok(err instanceof MeshlessError);
        assert.equal(err.code, code);
        assert.match(err.message, why);
        if (typeof rules === 'string' && rules) assert.ok(err.message.includes(JSON.stringify(rules)), 'message names the rule');
        return true;
      });
    });
  }

  it('refuses a bad deny rule too', () => {
    assert.throws(() => allowList(['*'], { deny: ['spiffe://x/a*'] }), /whole segment/);
  });

  it('decides once per frozen Peer for string rules, but asks custom functions every time', () => {
    const p = id('spiffe://prod.example/ns/pay/sa/api');
    const a = allowList(['spiffe://prod.example/**']);
    assert.equal(a(p), a(p), 'the same Decision object for the same Peer');
    let open = true;
    const b = allowList(['spiffe://other.example/**', () => open]);
    assert.equal(b(p).allowed, true);
    open = false;
    assert.equal(b(p).allowed, false, 'a function rule is asked again');
  });

  it('matches as fast with 10,000 exact rules as with 10', () => {
    const make = (n: number) => allowList(Array.from({ length: n }, (_, i) => `spiffe://prod.example/ns/n${i}/sa/s${i}`));
    const small = make(10);
    const large = make(10_000);
    // Unfrozen copies: authorizers remember decisions per frozen Peer; this measures matching.
    const target = { ...id('spiffe://prod.example/ns/n7/sa/s7') } as Peer;
    const miss = { ...id('spiffe://prod.example/ns/zz/sa/zz') } as Peer;
    assert.ok(large(target).allowed);
    assert.equal(large(miss).allowed, false);
    const time = (a: typeof small): number => {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < 5_000; i++) {
        a(target);
        a(miss);
      }
      return Number(process.hrtime.bigint() - t0);
    };
    time(small);
    time(large);
    // Not a timing assertion of absolute speed: paired rounds (each large batch right after its small
    // one, so a busy machine slows both alike), the median ratio against a generous bound that a
    // linear scan (~1000× more work at 10,000 rules) fails by far.
    const ratios: number[] = [];
    for (let round = 0; round < 15; round++) ratios.push(time(large) / time(small));
    ratios.sort((a, b) => a - b);
    const median = ratios[7]!;
    assert.ok(median < 5, `lookup must not degrade with list size (median ratio ${median.toFixed(2)})`);
  });
});
