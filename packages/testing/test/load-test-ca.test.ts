import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { createTestCA, keyTypes, loadTestCA } from '@meshless/testing';

describe('loadTestCA', () => {
  for (const keyType of keyTypes) {
    it(`re-opens a persisted ${keyType} CA and issues from it`, async function () {
      this.timeout(20_000);
      const original = await createTestCA({ trustDomain: 'prod.example', keyType });
      const loaded = await loadTestCA({ certPem: original.certPem, keyPem: original.keyPem });
      assert.equal(loaded.trustDomain, 'prod.example');
      assert.equal(loaded.keyType, keyType);
      assert.equal(loaded.certPem, original.certPem);
      assert.equal(loaded.keyPem, original.keyPem);
      const leaf = await loaded.issue('spiffe://prod.example/ns/a/sa/b');
      const cert = new X509Certificate(leaf.cert);
      const root = new X509Certificate(original.certPem);
      assert.ok(cert.checkIssued(root) && cert.verify(root.publicKey));
      assert.equal(leaf.ca, original.bundle);
    });
  }

  it('takes the trust domain from the options when given', async () => {
    const original = await createTestCA({ trustDomain: 'prod.example' });
    const loaded = await loadTestCA({ certPem: original.certPem, keyPem: original.keyPem, trustDomain: 'other.example' });
    assert.equal(loaded.trustDomain, 'other.example');
  });

  it('refuses a key of another certificate, and a leaf', async () => {
    const a = await createTestCA({ trustDomain: 'prod.example' });
    const b = await createTestCA({ trustDomain: 'prod.example' });
    await assert.rejects(loadTestCA({ certPem: a.certPem, keyPem: b.keyPem }), /does not belong to the certificate/);
    const leaf = await a.issue('spiffe://prod.example/x');
    await assert.rejects(loadTestCA({ certPem: leaf.cert, keyPem: leaf.key }), /not a CA/);
  });
});
