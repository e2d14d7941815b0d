import assert from 'node:assert/strict';
import { loadCredential, silentLogger } from '@meshless/core';
import { createTestCA, manualSource, waitFor, type ManualSource } from '@meshless/testing';
import { rawCall, startRecordingServer, type RawCall, type RecordingServer } from './recording-server.js';

// A TLS session resumed after a trust change must be checked again: Node restores the stored
// verdict (authorized: true) and skips identity checks on resumption.

const TD = 'prod.example';

describe('security: resumption after a trust change', function () {
  this.timeout(30_000);
  let rec: RecordingServer;
  let source: ManualSource;
  let client: { cert: string; key: string; ca: string };
  let ca: Awaited<ReturnType<typeof createTestCA>>;

  beforeEach(async () => {
    ca = await createTestCA({ trustDomain: TD });
    source = manualSource(loadCredential(await ca.issue({ spiffeId: `spiffe://${TD}/ns/pay/sa/api`, dnsNames: ['localhost'] })));
    client = await ca.issue(`spiffe://${TD}/ns/orders/sa/web`);
    rec = await startRecordingServer({ source, allow: `spiffe://${TD}/ns/orders/**`, logger: silentLogger });
  });
  afterEach(() => rec.close());

  /** One request on a fresh connection, offering `session`; returns the new session and whether it resumed. */
  const call = (session?: Buffer): Promise<RawCall> => rawCall(rec.port, { cert: client.cert, key: client.key, ca: ca.bundle }, '/', { session });

  it('resumes normally (control)', async () => {
    const first = await call();
    assert.equal(first.status, 'HTTP/1.1 200');
    assert.ok(first.session);
    const second = await call(first.session);
    assert.equal(second.status, 'HTTP/1.1 200');
    assert.equal(second.resumed, true, 'the second connection resumes');
  });

  it('after the allow-list changes, a resumed session of a peer no longer allowed is refused', async () => {
    const first = await call();
    assert.ok(first.session);
    rec.server.setAllow(`spiffe://${TD}/ns/billing/**`);
    const second = await call(first.session);
    assert.equal(second.status, '', 'no response after the policy change');
    const refusal = await waitFor(() => rec.refusals[0], 5000, 'a refusal');
    assert.equal(refusal.failure, 'denied');
    assert.equal(rec.handled.length, 1);
  });

  it('after the client CA is removed from the bundle, a resumed session is refused', async () => {
    const first = await call();
    assert.ok(first.session);
    const newCa = await createTestCA({ trustDomain: TD });
    const rotated = await newCa.issue({ spiffeId: `spiffe://${TD}/ns/pay/sa/api`, dnsNames: ['localhost'] });
    source.set(loadCredential(rotated, { generation: 2 }));
    const second = await call(first.session);
    assert.equal(second.status, '', 'no response after the CA removal');
    assert.equal(rec.handled.length, 1);
    assert.equal(second.resumed && rec.refusals.length === 0, false, 'a resumed session must not pass unchecked');
  });
});
