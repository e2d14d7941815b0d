import assert from 'node:assert/strict';
import grpc from '@grpc/grpc-js';
import { request, Agent } from 'undici';
import { loadCredential, privateKeyPem } from '@meshless/core';
import { createTestCA, type TestCA, waitFor } from '@meshless/testing';
import { pemToDer, startWorkloadApi, svidOf, type WorkloadApiServer } from '@meshless/fixtures/workload-api-server';
import { runCli, startCli, type RunningCli } from './helpers/cli.js';

const SERVER = 'spiffe://prod.example/ns/pay/sa/api';
const CLIENT = 'spiffe://prod.example/ns/web/sa/front';

describe('meshless --workload-api', function () {
  this.timeout(60_000);
  let ca: TestCA;
  let partner: TestCA;
  let api: WorkloadApiServer;

  before(async () => {
    ca = await createTestCA({ trustDomain: 'prod.example' });
    partner = await createTestCA({ trustDomain: 'partner.example' });
  });
  beforeEach(async () => {
    api = await startWorkloadApi();
  });
  afterEach(async () => {
    await api.close();
  });

  it('inspect --workload-api ADDRESS: every SVID with its hint and validity, own and federated bundles', async () => {
    const internal = await ca.issue(SERVER);
    api.push({
      svids: [svidOf(internal, { hint: 'internal' }), { ...svidOf(await ca.issue(`${SERVER}-ext`), { hint: 'external' }), x509_svid_key: svidOf(internal).x509_svid_key }],
      federated_bundles: { 'spiffe://partner.example': pemToDer(partner.bundle) },
    });
    const r = await runCli(['inspect', '--workload-api', api.address]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /svids\[0\] \(default\)  spiffe:\/\/prod\.example\/ns\/pay\/sa\/api  hint "internal"/);
    assert.match(r.stdout, new RegExp(`serial ${internal.serialNumber}`));
    assert.match(r.stdout, /svids\[1\]  .*hint "external"\n.*\n    valid     NO MESHLESS_ERR_KEY_MISMATCH/);
    assert.match(r.stdout, /bundle    prod\.example \(own\)/);
    assert.match(r.stdout, /bundle    partner\.example \(federated\)/);
    assert.match(r.stdout, /^OK$/m);
    const j = await runCli(['inspect', '--workload-api', api.address, '--json']);
    const report = JSON.parse(j.stdout) as { ok: boolean; svids: Array<{ hint: string; ok: boolean }>; bundles: Array<{ trustDomain: string }> };
    assert.equal(report.ok, true);
    assert.deepEqual(report.svids.map((s) => [s.hint, s.ok]), [['internal', true], ['external', false]]);
    assert.deepEqual(report.bundles.map((b) => b.trustDomain), ['prod.example', 'partner.example']);
    assert.doesNotMatch(j.stdout + r.stdout, /PRIVATE KEY/);
  });

  it('inspect --workload-api reads SPIFFE_ENDPOINT_SOCKET; nothing listening → exit 1 with the code; a bad address → exit 1 naming it', async () => {
    api.push({ svids: [svidOf(await ca.issue(SERVER))] });
    process.env.SPIFFE_ENDPOINT_SOCKET = api.address;
    try {
      const r = await runCli(['inspect', '--workload-api']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(api.address.replace(/[/.]/g, '\\$&')));
    } finally {
      delete process.env.SPIFFE_ENDPOINT_SOCKET;
    }
    api.deny(grpc.status.PERMISSION_DENIED, 'no identity issued');
    const denied = await runCli(['inspect', '--workload-api', api.address]);
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /MESHLESS_ERR_WORKLOAD_API_PERMISSION_DENIED/);
    assert.match(denied.stderr, /spire-server entry show/);
    await api.stop();
    const down = await runCli(['inspect', '--workload-api', api.address]);
    assert.equal(down.code, 1);
    assert.match(down.stderr, /MESHLESS_ERR_WORKLOAD_API_UNAVAILABLE/);
    const bad = await runCli(['inspect', '--workload-api', 'tcp://localhost:1']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /MESHLESS_ERR_WORKLOAD_API_ADDRESS_INVALID/);
  });

  it('serve --workload-api ADDRESS serves the SVID and rotates with the stream', async () => {
    const first = await ca.issue({ spiffeId: SERVER, dnsNames: ['localhost'] });
    api.push({ svids: [svidOf(first)] });
    let serve: RunningCli | undefined;
    const client = loadCredential(await ca.issue(CLIENT));
    const agent = () => new Agent({ connect: { cert: client.certPem, key: privateKeyPem(client), ca: client.bundlePem, servername: 'localhost', checkServerIdentity: () => undefined } });
    try {
      serve = startCli(['serve', '--workload-api', api.address, '--allow', 'spiffe://prod.example/ns/web/**', '--http', '0']);
      const line = await waitFor(() => serve!.stdout().split('\n').find((l) => l.includes('"ready"')), 20_000, `the ready line (stderr: ${serve.stderr()})`);
      const { http } = JSON.parse(line) as { http: number };
      const a1 = agent();
      const body1 = (await (await request(`https://localhost:${http}/`, { dispatcher: a1 })).body.json()) as { served: { serial: string }; peer: { spiffeId: string } };
      await a1.close();
      assert.equal(body1.served.serial, first.serialNumber);
      assert.equal(body1.peer.spiffeId, CLIENT);
      const next = await ca.issue({ spiffeId: SERVER, dnsNames: ['localhost'] });
      api.push({ svids: [svidOf(next)] });
      await waitFor(() => serve!.events().find((e) => e.event === 'rotated'), 10_000, 'the rotated event');
      const a2 = agent();
      const body2 = (await (await request(`https://localhost:${http}/`, { dispatcher: a2 })).body.json()) as { served: { serial: string } };
      await a2.close();
      assert.equal(body2.served.serial, next.serialNumber);
      assert.ok(serve.events().some((e) => e.event === 'started' && e.workloadApi === api.address));
    } finally {
      if (serve && serve.child.exitCode === null) {
        serve.child.kill('SIGTERM');
        await serve.exited;
      }
    }
  });

  it('serve: --workload-api and --dir together is a usage error', async () => {
    const r = await runCli(['serve', '--workload-api', '--dir', '/tmp', '--allow', '*', '--http', '0']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--dir or --workload-api/);
  });
});
