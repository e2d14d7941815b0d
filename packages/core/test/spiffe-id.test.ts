import assert from 'node:assert/strict';
import { SpiffeId, MeshlessError, codes } from '@meshless/core';

describe('SpiffeId', () => {
  it('parses a valid ID into trust domain, path and segments', () => {
    const id = SpiffeId.parse('spiffe://prod.example/ns/pay/sa/api');
    assert.equal(id.trustDomain, 'prod.example');
    assert.equal(id.path, '/ns/pay/sa/api');
    assert.deepEqual(id.segments, ['ns', 'pay', 'sa', 'api']);
    assert.equal(id.toString(), 'spiffe://prod.example/ns/pay/sa/api');
    assert.equal(JSON.stringify({ id }), '{"id":"spiffe://prod.example/ns/pay/sa/api"}');
    assert.ok(Object.isFrozen(id));
  });

  const valid = [
    'spiffe://example.org',
    'spiffe://example.org/a',
    'spiffe://td-1_x.y/A.b-c_D/0',
    'spiffe://a/...a/..b/.c',
    'spiffe://example.org/' + 'a'.repeat(2048 - 'spiffe://example.org/'.length),
  ];
  for (const s of valid) {
    it(`accepts ${s.length > 60 ? s.slice(0, 60) + '…' : s}`, () => {
      assert.ok(SpiffeId.isValid(s));
      assert.equal(SpiffeId.parse(s).toString(), s);
    });
  }

  const invalid: [string, RegExp][] = [
    ['', /empty/],
    ['http://example.org/a', /scheme/],
    ['SPIFFE://example.org/a', /scheme must be lowercase/],
    ['spiffe:/example.org/a', /scheme/],
    ['spiffe://', /trust domain is missing/],
    ['spiffe:///a', /trust domain is missing/],
    ['spiffe://Example.org/a', /lowercase/],
    ['spiffe://exa mple.org/a', /trust domain contains/],
    ['spiffe://example.org:8443/a', /port/],
    ['spiffe://user@example.org/a', /user info/],
    ['spiffe://example.org/', /must not end with/],
    ['spiffe://example.org/a/', /must not end with/],
    ['spiffe://example.org//a', /empty segments/],
    ['spiffe://example.org/./a', /"\." or "\.\." segments/],
    ['spiffe://example.org/a/..', /"\." or "\.\." segments/],
    ['spiffe://example.org/a?x=1', /query/],
    ['spiffe://example.org?x=1', /query/],
    ['spiffe://example.org/a#frag', /fragment/],
    ['spiffe://example.org/a%20b', /percent/],
    ['spiffe://example.org/a b', /path segment contains/],
    ['spiffe://example.org/a*', /path segment contains/],
    ['spiffe://example.org/' + 'a'.repeat(2048), /longer than 2048 bytes/],
    ['spiffe://' + 'a'.repeat(256) + '/x', /longer than 255/],
  ];
  for (const [s, why] of invalid) {
    it(`rejects ${JSON.stringify(s.length > 60 ? s.slice(0, 60) + '…' : s)} saying which rule failed`, () => {
      assert.equal(SpiffeId.isValid(s), false);
      assert.throws(() => SpiffeId.parse(s), (err: unknown) => {
        assert.ok(err instanceof MeshlessError);
        assert.equal(err.code, codes.INVALID_SPIFFE_ID);
        assert.match(err.message, why);
        return true;
      });
    });
  }

  it('rejects non-strings', () => {
    assert.equal(SpiffeId.isValid(42 as unknown as string), false);
  });
});
