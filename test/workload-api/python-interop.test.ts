import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { codes, type MeshlessError } from '@meshless/core';
import { createTestCA, type TestCA, waitFor } from '@meshless/testing';
import { workloadApiSource } from '@meshless/workload-api';
import { nextEvent, silent } from '@meshless/fixtures/events';
import { pemToDer, svidOf, type X509SvidResponseWire } from '@meshless/fixtures/workload-api-server';

// workloadApiSource against a Workload API server of another implementation: Python grpcio
// (C-core HTTP/2, as SPIRE's agent is grpc-go: not grpc-js) encoding with Google's protobuf.

const PYTHON = '/usr/bin/python3';
const here = dirname(fileURLToPath(import.meta.url));
const TD = 'prod.example';
const ID = `spiffe://${TD}/ns/pay/sa/api`;

class PythonWorkloadApi {
  readonly events: Record<string, unknown>[] = [];
  readonly stderr: string[] = [];
  readonly proc: ChildProcess;
  constructor(socket: string) {
    this.proc = spawn(PYTHON, [join(here, 'python', 'workload_api_server.py'), JSON.stringify({ socket })], { stdio: ['pipe', 'pipe', 'pipe'] });
    createInterface({ input: this.proc.stdout! }).on('line', (l) => this.events.push(JSON.parse(l) as Record<string, unknown>));
    createInterface({ input: this.proc.stderr! }).on('line', (l) => this.stderr.push(l));
  }
  send(cmd: object): void {
    this.proc.stdin!.write(JSON.stringify(cmd) + '\n');
  }
  push(r: X509SvidResponseWire): void {
    const b64 = (b: Buffer) => b.toString('base64');
    this.send({
      push: {
        svids: r.svids.map((s) => ({ spiffe_id: s.spiffe_id, x509_svid: b64(s.x509_svid), x509_svid_key: b64(s.x509_svid_key), bundle: b64(s.bundle), hint: s.hint ?? '' })),
        federated_bundles: Object.fromEntries(Object.entries(r.federated_bundles ?? {}).map(([k, v]) => [k, b64(v)])),
      },
    });
  }
  async stop(): Promise<void> {
    this.proc.stdin!.end();
    const exited = new Promise((r) => this.proc.once('exit', r));
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
}

describe('workloadApiSource against a Python grpcio Workload API server', function () {
  this.timeout(30_000);
  let ca: TestCA;
  let tmp: string;

  before(async function () {
    const probe = spawnSync(PYTHON, ['-c', 'import grpc, google.protobuf'], { encoding: 'utf8' });
    if (probe.status !== 0) {
      console.log(`    skipped: ${PYTHON} cannot import grpc and google.protobuf (install python3-grpcio): ${probe.stderr?.trim() ?? probe.error}`);
      this.skip();
    }
    ca = await createTestCA({ trustDomain: TD });
    tmp = await mkdtemp(join(tmpdir(), 'meshless-wlapi-py-'));
  });
  after(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('first SVID, federated bundles, a rotation, a refused message, and PermissionDenied after an SVID', async () => {
    const py = new PythonWorkloadApi(join(tmp, 'agent.sock'));
    try {
      await waitFor(() => py.events.find((e) => e.listening), 15_000, `the Python server (stderr: ${py.stderr.join('\n')})`);
      const partner = await createTestCA({ trustDomain: 'partner.example' });
      const first = await ca.issue(ID);
      py.push({ svids: [svidOf(first, { hint: 'internal' })], federated_bundles: { 'spiffe://partner.example': pemToDer(partner.bundle) } });
      const source = await workloadApiSource({ address: `unix://${join(tmp, 'agent.sock')}`, logger: silent, firstUpdateTimeoutMs: 10_000, backoff: { initialMs: 50, maxMs: 200 } });
      try {
        assert.equal(source.current().leaf.serialNumber, first.serialNumber);
        assert.equal(source.hint, 'internal');
        assert.deepEqual([...source.current().bundles.keys()], ['partner.example', TD]);
        const call = await waitFor(() => py.events.find((e) => e.call === 1), 5000, 'the call to be logged');
        assert.equal(call!.header, 'true', 'the security header reached grpcio');

        const next = await ca.issue(ID);
        const updated = nextEvent(source, 'update');
        py.push({ svids: [svidOf(next)] });
        const [c] = await updated;
        assert.equal(c.leaf.serialNumber, next.serialNumber);
        assert.deepEqual([...c.bundles.keys()], [TD], 'partner.example dropped');

        const failed = nextEvent(source, 'error');
        py.push({ svids: [{ ...svidOf(await ca.issue(ID)), x509_svid_key: svidOf(first).x509_svid_key }] });
        assert.equal(((await failed)[0] as MeshlessError).code, codes.KEY_MISMATCH);
        assert.equal(source.current().leaf.serialNumber, next.serialNumber);

        const withdrawn = nextEvent(source, 'error');
        py.send({ deny: 'PERMISSION_DENIED' });
        assert.equal(((await withdrawn)[0] as MeshlessError).code, codes.IDENTITY_WITHDRAWN);
        const back = await ca.issue(ID);
        const healed = nextEvent(source, 'update', 10_000);
        py.push({ svids: [svidOf(back)] });
        py.send({ deny: null });
        assert.equal((await healed)[0].leaf.serialNumber, back.serialNumber);
        assert.equal(source.health().state, 'fresh');
      } finally {
        await source.close();
      }
    } finally {
      await py.stop();
    }
  });
});
