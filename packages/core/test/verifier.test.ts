import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { allowList, codes, loadCredential, verifyPeer, type Credential } from '@meshless/core';
import { parseCertificates, verifyChain } from '@meshless/core/internal';
import { createTestCA, type TestCA } from '@meshless/testing';

const PROD = 'prod.example';
const PARTNER = 'partner.example';
const DAY = 86_400_000;

function split(pem: string): X509Certificate[] {
  return parseCertificates(pem, { field: 'test' });
}

describe('verifyPeer: the one verifier', function () {
  this.timeout(20_000);
  let prod: TestCA;
  let partner: TestCA;
  let own: Credential;

  before(async () => {
    [prod, partner] = await Promise.all([createTestCA({ trustDomain: PROD, intermediate: true }), createTestCA({ trustDomain: PARTNER })]);
    own = loadCredential({ ...(await prod.issue(`spiffe://${PROD}/ns/pay/sa/api`)), federation: { [PARTNER]: partner.bundle } });
  });

  it('tries every candidate issuer: an expired old intermediate sent before its renewal does not hide it (chain walk, credential load, verifier)', async () => {
    const issued = await prod.issue(`spiffe://${PROD}/ns/web/sa/frontend`);
    const [leaf, current] = split(issued.cert);
    const now = Date.now();
    const expired = split(await prod.reissueIntermediate({ notBefore: new Date(now - 2 * DAY), notAfter: new Date(now - DAY) }))[0]!;
    const roots = split(prod.bundle);
    assert.ok('path' in verifyChain(leaf!, [expired, current!], roots, now), 'expired first, renewed second');
    assert.ok('path' in verifyChain(leaf!, [current!, expired], roots, now), 'renewed first');
    const alone = verifyChain(leaf!, [expired], roots, now);
    assert.ok('problem' in alone && /expired/.test(alone.problem), 'the expired one alone is named');
    // Our own mount may hold the same thing.
    const cert = `${leaf!.toString()}${expired.toString()}${current!.toString()}`;
    assert.equal(loadCredential({ cert, key: issued.key, ca: prod.bundle }).identity.spiffeId, `spiffe://${PROD}/ns/web/sa/frontend`);
    // Deterministic: a leaf never seen before, presented with [expired, current], verifies.
    const fresh = split((await prod.issue(`spiffe://${PROD}/ns/web/sa/other`)).cert)[0]!;
    const check = verifyPeer({ leaf: fresh, intermediates: [expired, current!] }, { credential: own, authorize: allowList('*') });
    assert.equal(check.ok, true, check.ok ? '' : check.reason);
  });

  it('verifies a partner peer against the partner bundle only, and refuses a partner-signed certificate that claims our trust domain', async () => {
    const good = split((await partner.issue(`spiffe://${PARTNER}/ns/shop/sa/checkout`)).cert)[0]!;
    const forged = split((await partner.issue(`spiffe://${PROD}/ns/web/sa/frontend`)).cert)[0]!;
    const authorize = allowList([`spiffe://${PROD}/**`, `spiffe://${PARTNER}/**`]);
    assert.equal(verifyPeer({ leaf: good }, { credential: own, authorize }).ok, true);
    const refused = verifyPeer({ leaf: forged }, { credential: own, authorize });
    assert.equal(refused.ok, false);
    assert.equal(!refused.ok && refused.error.code, codes.PEER_UNVERIFIED);
    assert.match(!refused.ok ? refused.reason : '', /trust bundle of prod\.example/);
  });

  it('refuses a peer of a trust domain without a bundle with MESHLESS_ERR_NO_BUNDLE, and one whose trust domain revoked its keys (empty bundle)', async () => {
    const other = await createTestCA({ trustDomain: 'other.example' });
    const leaf = split((await other.issue('spiffe://other.example/x')).cert)[0]!;
    const check = verifyPeer({ leaf }, { credential: own, authorize: allowList('*') });
    assert.equal(!check.ok && check.error.code, codes.NO_BUNDLE);
    assert.match(!check.ok ? check.error.message : '', /other\.example.*federation/);
    const revoked = loadCredential({ ...(await prod.issue(`spiffe://${PROD}/ns/pay/sa/api`)), federation: { [PARTNER]: [] } });
    const partnerLeaf = split((await partner.issue(`spiffe://${PARTNER}/x`)).cert)[0]!;
    const r = verifyPeer({ leaf: partnerLeaf }, { credential: revoked, authorize: allowList('*') });
    assert.equal(r.ok, false);
    assert.match(!r.ok ? r.reason : '', /revoked/);
  });

  it('never accepts a CA certificate as an identity, under "*", dns: and cn: rules', async () => {
    const ca = await prod.issue({ spiffeId: `spiffe://${PROD}/ns/web/sa/ca`, dnsNames: ['ca.internal.example'], commonName: 'ca-leaf', isCA: true });
    const leaf = split(ca.cert)[0]!;
    for (const rules of ['*', 'dns:ca.internal.example', 'dns:*.internal.example', 'cn:ca-leaf', `spiffe://${PROD}/**`]) {
      const check = verifyPeer({ leaf, intermediates: split(ca.cert).slice(1) }, { credential: own, authorize: allowList(rules) });
      assert.equal(check.ok, false, rules);
      assert.match(!check.ok ? check.reason : '', /CA certificate/, rules);
    }
  });

  it('refuses an expired or not-yet-valid certificate, and fails closed when a rule throws', async () => {
    const now = Date.now();
    const expired = split((await prod.issue({ spiffeId: `spiffe://${PROD}/x`, notBefore: new Date(now - 2 * DAY), notAfter: new Date(now - DAY) })).cert);
    const e = verifyPeer({ leaf: expired[0]!, intermediates: expired.slice(1) }, { credential: own, authorize: allowList('*') });
    assert.match(!e.ok ? e.reason : '', /expired/);
    const future = split((await prod.issue({ spiffeId: `spiffe://${PROD}/x`, notBefore: new Date(now + DAY), notAfter: new Date(now + 2 * DAY) })).cert);
    assert.match(((r) => (!r.ok ? r.reason : ''))(verifyPeer({ leaf: future[0]!, intermediates: future.slice(1) }, { credential: own, authorize: allowList('*') })), /not valid before/);
    const good = split((await prod.issue(`spiffe://${PROD}/y`)).cert);
    const thrown = verifyPeer(
      { leaf: good[0]!, intermediates: good.slice(1) },
      {
        credential: own,
        authorize: allowList([
          () => {
            throw new Error('policy store down');
          },
        ]),
      },
    );
    assert.equal(thrown.ok, false);
    assert.equal(!thrown.ok && thrown.error.code, codes.PEER_UNVERIFIED);
  });

  it('a leaf shown without intermediates (a resumed session) verifies through an intermediate seen on another verified path; bundle and signatures still decide', async () => {
    // Another trust domain with its own intermediate: our credential's chain does not hold it.
    const far = await createTestCA({ trustDomain: 'far.example', intermediate: true });
    const credential = loadCredential({ ...(await prod.issue(`spiffe://${PROD}/ns/pay/sa/api`)), federation: { 'far.example': far.bundle } });
    const authorize = allowList('*');
    const leafOf = async (id: string) => split((await far.issue(id)).cert);
    // Before any far.example peer verified: the leaf alone has no path.
    const [early] = await leafOf('spiffe://far.example/early');
    const before = verifyPeer({ leaf: early! }, { credential, authorize });
    assert.equal(before.ok, false);
    assert.match(!before.ok ? before.reason : '', /does not verify to the trust bundle of far\.example/);
    // One far.example peer verifies with the intermediate it sent (a full handshake)…
    const [first, intermediate] = await leafOf('spiffe://far.example/first');
    const sent = verifyPeer({ leaf: first!, intermediates: [intermediate!] }, { credential, authorize });
    assert.equal(sent.ok, true, sent.ok ? '' : sent.reason);
    // …then another leaf of that CA, never seen, shown alone, verifies (the verified-leaf cache cannot have it).
    const [other] = await leafOf('spiffe://far.example/other');
    const resumed = verifyPeer({ leaf: other! }, { credential, authorize });
    assert.equal(resumed.ok, true, resumed.ok ? '' : resumed.reason);
    assert.equal(resumed.ok && resumed.intermediates[0]!.fingerprint256, intermediate!.fingerprint256);
    // The known intermediate chains to far.example's root only: a far-signed leaf claiming our trust
    // domain, shown alone, is still refused (verified against prod's bundle).
    const [forged] = await leafOf(`spiffe://${PROD}/ns/web/sa/frontend`);
    const forgedCheck = verifyPeer({ leaf: forged! }, { credential, authorize });
    assert.equal(forgedCheck.ok, false);
    assert.equal(!forgedCheck.ok && forgedCheck.failure, 'unverified');
    // When far.example's bundle no longer holds that root, a new leaf shown alone has no path.
    const rotated = await createTestCA({ trustDomain: 'far.example' });
    const after = loadCredential({ ...(await prod.issue(`spiffe://${PROD}/ns/pay/sa/api`)), federation: { 'far.example': rotated.bundle } });
    const [late] = await leafOf('spiffe://far.example/late');
    const gone = verifyPeer({ leaf: late! }, { credential: after, authorize });
    assert.equal(gone.ok, false);
    assert.equal(!gone.ok && gone.failure, 'unverified');
  });
});
