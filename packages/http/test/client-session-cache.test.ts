import assert from 'node:assert/strict';
import type { X509Certificate } from 'node:crypto';
import { codes, createPeer, isMeshlessError, type Peer } from '@meshless/core';
import { compileAllow, normalizeOrigin } from '../src/agent-allow.js';
import { SessionCache } from '../src/session-cache.js';

function peer(notAfter: number, id = 'spiffe://prod.example/ns/pay/sa/api'): Peer {
  return createPeer({ spiffeId: id, trustDomain: 'prod.example', dnsNames: [], uris: [id], serialNumber: '01', fingerprint256: 'AA', notBefore: new Date(0), notAfter: new Date(notAfter) });
}

/** What the connector keeps with a session (the leaf is not read by the cache). */
function verified(p: Peer): { peer: Peer; leaf: X509Certificate; intermediates: readonly X509Certificate[] } {
  return { peer: p, leaf: undefined as unknown as X509Certificate, intermediates: [] };
}

describe('client session cache and allow compilation', function () {
  it('keeps the newest sessions up to its bound, least recently set out first', function () {
    const cache = new SessionCache(2);
    const now = Date.now();
    const p = peer(now + 60_000);
    cache.set('a', Buffer.from('1'), verified(p));
    cache.set('b', Buffer.from('2'), verified(p));
    cache.set('a', Buffer.from('3'), verified(p)); // refreshes a
    cache.set('c', Buffer.from('4'), verified(p)); // evicts b
    assert.equal(cache.size, 2);
    assert.equal(cache.get('b', now), undefined);
    assert.equal(cache.get('a', now)?.session.toString(), '3');
    assert.equal(cache.get('c', now)?.peer, p);
  });

  it('a session found by get counts as used: the least recently used one goes first', function () {
    const cache = new SessionCache(2);
    const now = Date.now();
    const p = peer(now + 60_000);
    cache.set('a', Buffer.from('1'), verified(p));
    cache.set('b', Buffer.from('2'), verified(p));
    assert.equal(cache.get('a', now)?.session.toString(), '1'); // a is now the most recently used
    cache.set('c', Buffer.from('3'), verified(p)); // evicts b, not a
    assert.equal(cache.get('b', now), undefined);
    assert.equal(cache.get('a', now)?.session.toString(), '1');
    assert.equal(cache.get('c', now)?.session.toString(), '3');
  });

  it('never returns a session whose server certificate has expired, and 0 disables it', function () {
    const cache = new SessionCache(10);
    const now = Date.now();
    cache.set('old', Buffer.from('x'), verified(peer(now - 1)));
    assert.equal(cache.get('old', now), undefined);
    assert.equal(cache.size, 0);
    const off = new SessionCache(0);
    off.set('a', Buffer.from('x'), verified(peer(now + 60_000)));
    assert.equal(off.get('a', now), undefined);
  });

  it('normalizes origins the way undici names them', function () {
    assert.equal(normalizeOrigin('https://Payments.Internal:443'), 'https://payments.internal');
    assert.equal(normalizeOrigin('https://payments.internal:8443/'), 'https://payments.internal:8443');
    assert.equal(normalizeOrigin(new URL('https://[::1]:8443')), 'https://[::1]:8443');
    assert.throws(() => normalizeOrigin('payments.internal'), (e: unknown) => isMeshlessError(e, codes.INVALID_OPTION));
  });

  it('a resolver that throws becomes a coded error naming the origin; its result is compiled once per origin', function () {
    let calls = 0;
    const policy = compileAllow((origin: string) => {
      calls++;
      if (origin.includes('bad')) throw new Error('no entry in the service catalog');
      return 'spiffe://prod.example/ns/pay/sa/api';
    }, 1);
    assert.throws(
      () => policy.authorizerFor('https://bad.internal'),
      (e: unknown) => isMeshlessError(e, codes.INVALID_OPTION) && /https:\/\/bad\.internal.*service catalog/.test(e.message),
    );
    const a = policy.authorizerFor('https://pay.internal');
    assert.equal(policy.authorizerFor('https://pay.internal'), a);
    assert.equal(calls, 2);
    assert.equal(a(peer(Date.now() + 1000)).allowed, true);
  });
});
