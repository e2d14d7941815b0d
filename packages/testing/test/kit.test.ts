import assert from 'node:assert/strict';
import { codes, isMeshlessError, type Credential, type MeshlessError } from '@meshless/core';
import { createTestCA, manualSource, recordingLogger, twoTrustDomains, waitFor } from '@meshless/testing';

describe('@meshless/testing kit: manualSource, waitFor, recordingLogger, twoTrustDomains', function () {
  it('manualSource: set() emits update synchronously; PEM is validated at the next generation; a bad one emits error and keeps the current', async () => {
    const ca = await createTestCA({ trustDomain: 'prod.example' });
    const source = manualSource(await ca.issue('spiffe://prod.example/ns/pay/sa/api'));
    assert.equal(source.current().generation, 1);
    const updates: [Credential, Credential][] = [];
    const errors: MeshlessError[] = [];
    source.on('update', (next, previous) => updates.push([next, previous]));
    source.on('error', (err) => errors.push(err));
    const first = source.current();
    const next = source.set(await ca.issue('spiffe://prod.example/ns/pay/sa/api'));
    assert.equal(updates.length, 1, 'synchronous');
    assert.equal(updates[0]![1], first);
    assert.equal((next as Credential).generation, 2);
    const other = await ca.issue('spiffe://prod.example/ns/pay/sa/api');
    const refused = source.set({ cert: other.cert, key: (await ca.issue('spiffe://prod.example/x')).key, ca: other.ca });
    assert.ok(isMeshlessError(refused, codes.KEY_MISMATCH), String(refused));
    assert.equal(errors[0], refused);
    assert.equal(source.current(), next, 'the current credential stays');
    assert.equal(source.health().state, 'fresh');
    source.setHealth({ state: 'stale' });
    assert.equal(source.health().state, 'stale');
    source.setHealth(undefined);
    assert.equal(source.health().generation, 2);
    assert.equal(source.closed, false);
    await source.close();
    assert.equal(source.closed, true);
  });

  it('waitFor resolves with the first truthy value, and names what it waited for when it times out', async () => {
    let n = 0;
    assert.equal(await waitFor(() => (++n >= 3 ? `after ${n}` : undefined), 1000, 'three polls', 1), 'after 3');
    assert.equal(await waitFor(async () => 42), 42);
    await assert.rejects(waitFor(() => false, 30, () => 'never'), /timed out after 30 ms waiting for never/);
  });

  it('recordingLogger keeps every line in order, by level', () => {
    const logger = recordingLogger();
    logger.warn({ peer: 'a' }, 'refused');
    logger.info({});
    assert.deepEqual(logger.entries, [
      { level: 'warn', obj: { peer: 'a' }, msg: 'refused' },
      { level: 'info', obj: {}, msg: '' },
    ]);
    assert.equal(logger.at('warn').length, 1);
  });

  it('twoTrustDomains: each credential owns its CA bundle and federates with the other trust domain', async () => {
    const { home, partner, federationOf, credential } = await twoTrustDomains();
    assert.equal(home.trustDomain, 'prod.example');
    assert.equal(partner.trustDomain, 'partner.example');
    assert.deepEqual(federationOf(home), { 'partner.example': partner.bundle });
    const c = credential(partner, await partner.issue('spiffe://partner.example/ns/shop/sa/checkout'), { generation: 3 });
    assert.equal(c.trustDomain, 'partner.example');
    assert.equal(c.generation, 3);
    assert.deepEqual([...c.bundles.keys()].sort(), ['partner.example', 'prod.example']);
    const alone = credential(home, await home.issue('spiffe://prod.example/ns/web/sa/frontend'), { federate: false });
    assert.deepEqual([...alone.bundles.keys()], ['prod.example']);
  });
});
