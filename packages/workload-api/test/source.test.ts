import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import diagnostics_channel from 'node:diagnostics_channel';
import grpc from '@grpc/grpc-js';
import { codes, isMeshlessError, type MeshlessError } from '@meshless/core';
import { createTestCA, recordingLogger, type TestCA, waitFor } from '@meshless/testing';
import { workloadApiChannels, workloadApiSource, type WorkloadApiSource, type WorkloadApiSourceOptions } from '@meshless/workload-api';
import { nextEvent, silent } from '@meshless/fixtures/events';
import { pemToDer, startWorkloadApi, svidOf, type WorkloadApiServer } from '@meshless/fixtures/workload-api-server';

const TD = 'wl.example';
const ID = `spiffe://${TD}/ns/pay/sa/api`;
const FAST = { initialMs: 20, maxMs: 200 };

describe('workloadApiSource', function () {
  this.timeout(20_000);
  let ca: TestCA;
  let other: TestCA;
  let partner: TestCA;
  let api: WorkloadApiServer;
  const sources: WorkloadApiSource[] = [];

  before(async () => {
    ca = await createTestCA({ trustDomain: TD });
    other = await createTestCA({ trustDomain: TD });
    partner = await createTestCA({ trustDomain: 'partner.example' });
  });
  beforeEach(async () => {
    api = await startWorkloadApi();
  });
  afterEach(async () => {
    for (const s of sources.splice(0)) await s.close();
    await api.close();
  });

  async function open(options: WorkloadApiSourceOptions = {}): Promise<WorkloadApiSource> {
    const s = await workloadApiSource({ address: api.address, logger: silent, backoff: FAST, firstUpdateTimeoutMs: 5000, ...options });
    sources.push(s);
    return s;
  }

  it('resolves on the first SVID: identity, chain, own bundle; the security header is on every call', async () => {
    const issued = await ca.issue(ID);
    api.push({ svids: [svidOf(issued)] });
    const source = await open();
    const c = source.current();
    assert.equal(String(c.identity), ID);
    assert.equal(c.leaf.serialNumber, issued.serialNumber);
    assert.equal(c.trustDomain, TD);
    assert.deepEqual([...c.bundles.keys()], [TD]);
    assert.equal(c.generation, 1);
    assert.equal(source.health().state, 'fresh');
    assert.equal(source.connected, true);
    // A restart forces a second call: the header is there too.
    api.endStreams();
    await waitFor(() => api.calls >= 2, 5000, 'a second call');
    assert.ok(api.headers.length >= 2);
    assert.ok(api.headers.every((h) => h === 'true'), `every call carries workload.spiffe.io: true (${JSON.stringify(api.headers)})`);
  });

  it('a pushed rotation emits update with the new generation; an identical message does not', async () => {
    api.push({ svids: [svidOf(await ca.issue(ID))] });
    const source = await open();
    const next = await ca.issue(ID);
    const updated = nextEvent(source, 'update');
    api.push({ svids: [svidOf(next)] });
    const [c, previous] = await updated;
    assert.equal(c.leaf.serialNumber, next.serialNumber);
    assert.equal(c.generation, 2);
    assert.equal(previous.generation, 1);
    assert.equal(source.current(), c);
    let updates = 0;
    source.on('update', () => updates++);
    const seen: string[] = [];
    const onMessage = (m: unknown) => seen.push((m as { outcome: string }).outcome);
    diagnostics_channel.subscribe(workloadApiChannels.message.name, onMessage);
    try {
      api.push({ svids: [svidOf(next)] });
      await waitFor(() => seen.includes('unchanged'), 5000, 'the unchanged message');
      assert.equal(updates, 0);
    } finally {
      diagnostics_channel.unsubscribe(workloadApiChannels.message.name, onMessage);
    }
  });

  describe('a bad message is refused whole; the last good SVID keeps serving', () => {
    const cases: Array<[string, () => Promise<Parameters<WorkloadApiServer['push']>[0] | Buffer>, string]> = [
      ['a key that does not match the leaf', async () => ({ svids: [{ ...svidOf(await ca.issue(ID)), x509_svid_key: svidOf(await ca.issue(ID)).x509_svid_key }] }), codes.KEY_MISMATCH],
      ['a chain to another CA', async () => ({ svids: [svidOf({ ...(await other.issue(ID)), ca: ca.bundle })] }), codes.CHAIN_UNTRUSTED],
      ['no svids', async () => ({ svids: [] }), codes.WORKLOAD_API_MESSAGE_INVALID],
      ['a missing bundle', async () => ({ svids: [{ ...svidOf(await ca.issue(ID)), bundle: Buffer.alloc(0) }] }), codes.WORKLOAD_API_MESSAGE_INVALID],
      ['PEM where DER belongs', async () => ({ svids: [{ ...svidOf(await ca.issue(ID)), x509_svid: Buffer.from((await ca.issue(ID)).cert) }] }), codes.WORKLOAD_API_MESSAGE_INVALID],
      ['a spiffe_id that is not the certificate\'s', async () => ({ svids: [svidOf(await ca.issue(ID), { spiffeId: `spiffe://${TD}/ns/pay/sa/other` })] }), codes.WORKLOAD_API_MESSAGE_INVALID],
      ['an expired SVID', async () => ({ svids: [svidOf(await ca.issue({ spiffeId: ID, notBefore: new Date(Date.now() - 7200_000), notAfter: new Date(Date.now() - 3600_000) }))] }), codes.CERT_EXPIRED],
      ['bytes that are not protobuf', async () => Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01]), codes.WORKLOAD_API_MESSAGE_INVALID],
    ];
    for (const [what, make, code] of cases) {
      it(what, async () => {
        const good = await ca.issue(ID);
        api.push({ svids: [svidOf(good)] });
        const source = await open();
        const bad = await make();
        const failed = nextEvent(source, 'error');
        const stale = nextEvent(source, 'health');
        if (Buffer.isBuffer(bad)) api.pushRaw(bad);
        else api.push(bad);
        const [err] = await failed;
        assert.equal(err.code, code, err.message);
        assert.match(err.message, new RegExp(api.address.replace(/[/.]/g, '\\$&')), 'the message names the address');
        // (the address is a random temp folder name, which may itself spell MII)
        assert.doesNotMatch(err.message.replace(api.address, '<address>'), /PRIVATE KEY|MII/, 'no key bytes');
        assert.equal((await stale)[0].state, 'stale');
        assert.equal(source.current().leaf.serialNumber, good.serialNumber);
        assert.equal(source.health().lastError?.code, code);
        // The next good message heals it.
        const next = await ca.issue(ID);
        const updated = nextEvent(source, 'update');
        api.push({ svids: [svidOf(next)] });
        await updated;
        assert.equal(source.health().state, 'fresh');
        assert.equal(source.current().leaf.serialNumber, next.serialNumber);
      });
    }

    it('an SVID with another identity is refused unless expectIdentity or allowIdentityChange allows it', async () => {
      api.push({ svids: [svidOf(await ca.issue(ID))] });
      const source = await open();
      const failed = nextEvent(source, 'error');
      api.push({ svids: [svidOf(await ca.issue(`spiffe://${TD}/ns/pay/sa/other`))] });
      assert.equal((await failed)[0].code, codes.IDENTITY_MISMATCH);
      const relaxed = await open({ allowIdentityChange: true });
      assert.equal(String(relaxed.current().identity), `spiffe://${TD}/ns/pay/sa/other`);
    });
  });

  it('the server stops, then restarts: the outage is reported once (stale), the source reconnects and carries on', async () => {
    api.push({ svids: [svidOf(await ca.issue(ID))] });
    const source = await open();
    const errors: MeshlessError[] = [];
    source.on('error', (e) => errors.push(e));
    await api.stop();
    await waitFor(() => errors.length > 0, 5000, 'the outage to be reported');
    assert.equal(errors[0]!.code, codes.WORKLOAD_API_UNAVAILABLE);
    assert.equal(source.health().state, 'stale');
    assert.equal(source.connected, false);
    const next = await ca.issue(ID);
    api.push({ svids: [svidOf(next)] });
    const updated = nextEvent(source, 'update', 8000);
    await api.restart();
    const [c] = await updated;
    assert.equal(c.leaf.serialNumber, next.serialNumber);
    assert.equal(source.health().state, 'fresh');
    assert.equal(errors.length, 1, 'one outage, one error (retries are not reported one by one)');
  });

  it('a stream the server ends cleanly is reopened at once, with no error', async () => {
    api.push({ svids: [svidOf(await ca.issue(ID))] });
    const source = await open();
    let errors = 0;
    source.on('error', () => errors++);
    const calls = api.calls;
    api.endStreams();
    await waitFor(() => api.calls > calls && source.connected, 5000, 'the stream to be reopened');
    assert.equal(errors, 0);
    assert.equal(source.health().state, 'fresh');
  });

  it('PermissionDenied for a while ("no identity issued yet"), then an SVID: ready', async () => {
    api.deny(grpc.status.PERMISSION_DENIED, 'no identity issued');
    const pending = open();
    await waitFor(() => api.calls >= 3, 5000, 'a few denied calls');
    api.push({ svids: [svidOf(await ca.issue(ID))] });
    api.deny(undefined);
    const source = await pending;
    assert.equal(String(source.current().identity), ID);
  });

  it('no socket: rejects after firstUpdateTimeoutMs naming the address, the last status and what to check', async () => {
    await api.stop();
    const started = Date.now();
    await assert.rejects(workloadApiSource({ address: api.address, logger: silent, backoff: FAST, firstUpdateTimeoutMs: 700 }), (err: unknown) => {
      assert.ok(isMeshlessError(err, codes.WORKLOAD_API_TIMEOUT), String(err));
      assert.ok(err.message.includes(api.address), err.message);
      assert.match(err.message, /UNAVAILABLE/);
      assert.match(err.message, /agent running/);
      assert.match(err.message, /registered/);
      return true;
    });
    const took = Date.now() - started;
    assert.ok(took >= 650 && took < 6000, `bounded by the timeout (${took} ms)`);
  });

  it('still denied at the deadline: the error says the workload is not registered', async () => {
    api.deny(grpc.status.PERMISSION_DENIED, 'no identity issued');
    await assert.rejects(workloadApiSource({ address: api.address, logger: silent, backoff: FAST, firstUpdateTimeoutMs: 500 }), (err: MeshlessError) => {
      assert.equal(err.code, codes.WORKLOAD_API_TIMEOUT);
      assert.match(err.message, /PERMISSION_DENIED \(no identity issued\)/);
      assert.match(err.message, /spire-server entry show/);
      return true;
    });
  });

  it('InvalidArgument and Unimplemented are not retried', async () => {
    const strict = await startWorkloadApi();
    try {
      strict.deny(grpc.status.INVALID_ARGUMENT, 'security header missing from request');
      await assert.rejects(workloadApiSource({ address: strict.address, logger: silent, backoff: FAST, firstUpdateTimeoutMs: 5000 }), (err: MeshlessError) => {
        assert.equal(err.code, codes.WORKLOAD_API_CALL_REFUSED);
        assert.match(err.message, /INVALID_ARGUMENT/);
        return true;
      });
      assert.equal(strict.calls, 1, 'one call, no retry');
      strict.deny(grpc.status.UNIMPLEMENTED, 'nope');
      await assert.rejects(workloadApiSource({ address: strict.address, logger: silent, backoff: FAST }), (err: MeshlessError) => err.code === codes.WORKLOAD_API_CALL_REFUSED && /X\.509-SVID profile/.test(err.message));
      assert.equal(strict.calls, 2);
    } finally {
      await strict.close();
    }
  });

  describe('several SVIDs', () => {
    let internal: Awaited<ReturnType<TestCA['issue']>>;
    let external: Awaited<ReturnType<TestCA['issue']>>;
    beforeEach(async () => {
      internal = await ca.issue(`spiffe://${TD}/internal`);
      external = await ca.issue(`spiffe://${TD}/external`);
      api.push({ svids: [svidOf(internal, { hint: 'internal' }), svidOf(external, { hint: 'external' }), svidOf(await ca.issue(`spiffe://${TD}/dup`), { hint: 'external' })] });
    });

    it('serves svids[0] by default', async () => {
      const source = await open();
      assert.equal(String(source.current().identity), `spiffe://${TD}/internal`);
      assert.equal(source.hint, 'internal');
    });

    it('hint picks (the first of duplicates)', async () => {
      const source = await open({ hint: 'external' });
      assert.equal(String(source.current().identity), `spiffe://${TD}/external`);
      assert.equal(source.hint, 'external');
    });

    it('pick chooses; it sees ids, hints and certificates, never keys', async () => {
      let seen: unknown;
      const source = await open({
        pick: (svids) => {
          seen = svids;
          return svids.find((s) => s.certificates[0]!.subjectAltName?.includes('/dup'));
        },
      });
      assert.equal(String(source.current().identity), `spiffe://${TD}/dup`);
      assert.doesNotMatch(JSON.stringify(seen), /x509_svid_key|PRIVATE/);
    });

    it('a hint that no SVID has: the first start times out saying what was offered', async () => {
      await assert.rejects(open({ hint: 'batch', firstUpdateTimeoutMs: 400 }), (err: MeshlessError) => {
        assert.equal(err.code, codes.WORKLOAD_API_TIMEOUT);
        assert.match(err.message, /WORKLOAD_API_SVID_NOT_FOUND/);
        assert.match(err.message, /hint "internal"/);
        return true;
      });
    });
  });

  it('federated bundles follow the stream: added, then removed (bundleHash changes each time)', async () => {
    const issued = await ca.issue(ID);
    api.push({ svids: [svidOf(issued)] });
    const source = await open();
    const before = source.current();
    assert.deepEqual([...before.bundles.keys()], [TD]);
    let updated = nextEvent(source, 'update');
    api.push({ svids: [svidOf(issued)], federated_bundles: { 'spiffe://partner.example': pemToDer(partner.bundle) } });
    const [withPartner] = await updated;
    assert.deepEqual([...withPartner.bundles.keys()], ['partner.example', TD]);
    assert.equal(withPartner.bundles.get('partner.example')![0]!.fingerprint256, new X509Certificate(partner.bundle).fingerprint256);
    assert.notEqual(withPartner.bundleHash, before.bundleHash);
    assert.equal(withPartner.leaf.serialNumber, issued.serialNumber, 'same SVID, new trust');
    updated = nextEvent(source, 'update');
    api.push({ svids: [svidOf(issued)] });
    const [without] = await updated;
    assert.deepEqual([...without.bundles.keys()], [TD]);
    assert.equal(without.bundleHash, before.bundleHash);
    // An empty federated bundle: that trust domain revoked its keys.
    updated = nextEvent(source, 'update');
    api.push({ svids: [svidOf(issued)], federated_bundles: { 'spiffe://partner.example': Buffer.alloc(0) } });
    const [revoked] = await updated;
    assert.deepEqual(revoked.bundles.get('partner.example'), []);
  });

  describe('identity withdrawn (PermissionDenied after an SVID was served)', () => {
    it("'keep' (default): keeps serving, reports IDENTITY_WITHDRAWN, health stale; an SVID that comes back heals it", async () => {
      const issued = await ca.issue(ID);
      api.push({ svids: [svidOf(issued)] });
      const source = await open();
      const failed = nextEvent(source, 'error');
      api.deny(grpc.status.PERMISSION_DENIED, 'no identity issued', true);
      const [err] = await failed;
      assert.equal(err.code, codes.IDENTITY_WITHDRAWN);
      assert.match(err.message, /until it expires/);
      assert.equal(source.health().state, 'stale');
      assert.equal(source.current().leaf.serialNumber, issued.serialNumber);
      const calls = api.calls;
      await waitFor(() => api.calls >= calls + 2, 5000, 'reconnect attempts');
      const back = await ca.issue(ID);
      api.push({ svids: [svidOf(back)] });
      const updated = nextEvent(source, 'update');
      api.deny(undefined);
      await updated;
      assert.equal(source.health().state, 'fresh');
    });

    it("'expire': health says expired (readiness fails) until an SVID comes back", async () => {
      api.push({ svids: [svidOf(await ca.issue(ID))] });
      const source = await open({ onWithdrawn: 'expire' });
      const health = nextEvent(source, 'health');
      api.deny(grpc.status.PERMISSION_DENIED, 'no identity issued', true);
      assert.equal((await health)[0].state, 'expired');
      assert.equal(source.health().lastError?.code, codes.IDENTITY_WITHDRAWN);
      const fresh = nextEvent(source, 'health');
      api.deny(undefined);
      assert.equal((await fresh)[0].state, 'fresh');
    });
  });

  it('reload() reconnects at once when the stream is down; close() leaves no timer and no stream', async () => {
    api.push({ svids: [svidOf(await ca.issue(ID))] });
    const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const source = await workloadApiSource({ address: api.address, logger: silent, backoff: { initialMs: 60_000, maxMs: 60_000 } });
    await api.stop();
    await waitFor(() => !source.connected, 5000, 'the disconnect');
    await api.restart();
    const t0 = Date.now();
    await source.reload();
    assert.ok(source.connected, 'reconnected by reload(), not by the 60 s backoff');
    assert.ok(Date.now() - t0 < 5000);
    await source.close();
    await waitFor(() => api.openStreams === 0, 5000, 'the stream to close');
    await waitFor(() => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length <= before, 2000, 'timers to be cleared');
    await assert.rejects(source.reload(), (err: MeshlessError) => err.code === codes.SOURCE_CLOSED);
  });

  it('logs and diagnostics channel events: connected, message outcomes with reason codes, disconnected', async () => {
    const events: Array<[string, Record<string, unknown>]> = [];
    const subs = Object.entries(workloadApiChannels).map(([name, ch]) => {
      const fn = (m: unknown) => events.push([name, m as Record<string, unknown>]);
      diagnostics_channel.subscribe(ch.name, fn);
      return () => diagnostics_channel.unsubscribe(ch.name, fn);
    });
    const logger = recordingLogger();
    try {
      api.push({ svids: [svidOf(await ca.issue(ID))] });
      const source = await open({ logger });
      const failed = nextEvent(source, 'error');
      api.push({ svids: [] });
      await failed;
      api.endStreams();
      await waitFor(() => events.some(([n]) => n === 'disconnected'), 5000, 'disconnected');
      const names = events.map(([n, m]) => (n === 'message' ? `message:${m.outcome}${m.code ? `:${m.code}` : ''}` : n));
      assert.deepEqual(names.slice(0, 4), ['connected', 'message:update', `message:refused:${codes.WORKLOAD_API_MESSAGE_INVALID}`, 'disconnected']);
      const disconnected = events.find(([n]) => n === 'disconnected')![1];
      assert.equal(disconnected.code, 'OK');
      assert.equal(disconnected.retry, true);
      assert.ok(logger.at('info').some((l) => /SVID received/.test(l.msg)));
      assert.ok(logger.at('warn').some((l) => (l.obj.err as { code?: string })?.code === codes.WORKLOAD_API_MESSAGE_INVALID));
      assert.doesNotMatch(JSON.stringify(logger.entries), /PRIVATE KEY/);
    } finally {
      for (const u of subs) u();
    }
  });
});

describe('workloadApiSource over tcp://', function () {
  this.timeout(20_000);
  it('tcp://127.0.0.1:<port> works like a Unix socket', async () => {
    const api = await startWorkloadApi({ tcp: true });
    try {
      const ca = await createTestCA({ trustDomain: TD });
      api.push({ svids: [svidOf(await ca.issue(ID))] });
      assert.match(api.address, /^tcp:\/\/127\.0\.0\.1:\d+$/);
      const source = await workloadApiSource({ address: api.address, logger: silent, firstUpdateTimeoutMs: 5000 });
      assert.equal(String(source.current().identity), ID);
      await source.close();
    } finally {
      await api.close();
    }
  });
});
