import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { allowList } from '@meshless/core';
import { createTestCA } from '@meshless/testing';
import { parseAddress } from '@meshless/workload-api';
import { startWorkloadApi, svidOf } from '@meshless/fixtures/workload-api-server';
import { assertServicesExposePorts, flag, loadManifests, peerOf, serveContainer, serviceAccountId, type Doc } from './helpers/manifests.js';
import { ensureBuilt, root as repoRoot } from './helpers/processes.js';

// examples/kubernetes/spire-workload-api: the SPIRE variant with no spiffe-helper. Each service
// reads its SVID from the agent's Workload API (socket mounted by the SPIFFE CSI driver).

const dir = fileURLToPath(new URL('../../examples/kubernetes/spire-workload-api/', import.meta.url));
const TD = 'prod.example';

function service(d: Doc) {
  const { spec, app } = serveContainer(d);
  const socket = app.env?.find((e: Doc) => e.name === 'SPIFFE_ENDPOINT_SOCKET')?.value as string;
  return { spec, app, socket, allow: flag(app.args, 'allow'), spiffeId: serviceAccountId(d, TD) };
}

describe('examples/kubernetes/spire-workload-api (SPIRE, workloadApiSource, no spiffe-helper)', () => {
  let docs: Doc[];
  const of = (kind: string) => docs.filter((d) => d.kind === kind);

  before(async () => {
    docs = await loadManifests(dir);
  });

  it('has the expected kinds and no helper: no spiffe-helper, no init container, no volume holding keys', () => {
    assert.deepEqual([...new Set(docs.map((d) => d.kind))].sort(), ['ClusterSPIFFEID', 'Deployment', 'Namespace', 'Service', 'ServiceAccount']);
    assert.deepEqual(of('Deployment').map((d) => d.metadata.name).sort(), ['orders', 'payments']);
    for (const d of of('Deployment')) {
      const { spec } = service(d);
      assert.equal(spec.initContainers, undefined);
      assert.equal(spec.containers.length, 1, 'the service only');
      assert.ok(spec.volumes.every((v: Doc) => v.csi?.driver === 'csi.spiffe.io'), 'only the Workload API socket is mounted');
    }
  });

  it('points SPIFFE_ENDPOINT_SOCKET at the agent socket inside the read-only SPIFFE CSI volume', () => {
    for (const d of of('Deployment')) {
      const { app, spec, socket } = service(d);
      assert.ok(app.args.includes('--workload-api'), `${d.metadata.name}: serve --workload-api`);
      assert.equal(flag(app.args, 'dir').length, 0);
      const parsed = parseAddress(socket);
      assert.equal(parsed.transport, 'unix');
      const socketDir = posix.dirname(parsed.target.slice('unix://'.length));
      const mount = app.volumeMounts.find((m: Doc) => m.mountPath === socketDir);
      assert.ok(mount, `${d.metadata.name}: the socket's directory ${socketDir} is a mount`);
      assert.equal(mount.readOnly, true);
      assert.equal(mount.subPath, undefined);
      const volume = spec.volumes.find((v: Doc) => v.name === mount.name);
      assert.equal(volume?.csi?.driver, 'csi.spiffe.io');
      assert.equal(volume?.csi?.readOnly, true);
    }
  });

  it('registers the pods with SPIRE under their own service account, whose SPIFFE ID the callers allow', () => {
    const entry = of('ClusterSPIFFEID')[0]!;
    assert.match(entry.spec.spiffeIDTemplate, /^spiffe:\/\/\{\{ \.TrustDomain \}\}\/ns\/\{\{ \.PodMeta\.Namespace \}\}\/sa\/\{\{ \.PodSpec\.ServiceAccountName \}\}$/);
    const accounts = new Set(of('ServiceAccount').map((s) => `${s.metadata.namespace}/${s.metadata.name}`));
    const byName = Object.fromEntries(of('Deployment').map((d) => [d.metadata.name, service(d)]));
    for (const d of of('Deployment')) {
      const labels = d.spec.template.metadata.labels;
      for (const [k, v] of Object.entries(entry.spec.podSelector.matchLabels)) assert.equal(labels[k], v, `${d.metadata.name} is selected`);
      const sa = d.spec.template.spec.serviceAccountName;
      assert.ok(sa && sa !== 'default' && accounts.has(`${d.metadata.namespace}/${sa}`));
    }
    const payments = allowList(byName.payments!.allow);
    assert.equal(payments(peerOf(byName.orders!.spiffeId)).allowed, true);
    assert.equal(payments(peerOf(byName.payments!.spiffeId)).allowed, false);
    const orders = allowList(byName.orders!.allow);
    assert.equal(orders(peerOf(`spiffe://${TD}/ns/shop/sa/frontend`)).allowed, true);
    assert.equal(orders(peerOf(`spiffe://${TD}/ns/shop/sa/payments`)).allowed, false);
  });

  it('exposes the port each service listens on through its Service', () => {
    assertServicesExposePorts(docs);
  });

  it("runs `meshless serve` with the manifest's arguments against a Workload API serving the pod's SVID: ready", async function () {
    this.timeout(60_000);
    ensureBuilt();
    const ca = await createTestCA({ trustDomain: TD });
    for (const d of of('Deployment')) {
      const { app, spiffeId } = service(d);
      const api = await startWorkloadApi();
      try {
        api.push({ svids: [svidOf(await ca.issue(spiffeId))] });
        // As in the manifest, except a free port on loopback (the test machine is not a pod).
        const args = (app.args as string[]).map((a) => a.replace(/^--(http|grpc)=\d+$/, '--$1=0').replace(/^--host=.*$/, '--host=127.0.0.1'));
        const child = spawn(process.execPath, [join(repoRoot, 'packages/cli/dist/bin.js'), ...args], { env: { ...process.env, SPIFFE_ENDPOINT_SOCKET: api.address }, stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
        child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
        const exited = new Promise<number | null>((r) => child.on('exit', r));
        const deadline = Date.now() + 20_000;
        while (!out.includes('"ready"') && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        child.kill('SIGTERM');
        await exited;
        assert.match(out, /"event":"ready"/, `${d.metadata.name}: ${err}`);
        assert.match(err, new RegExp(`"identity":"${spiffeId.replace(/[/.]/g, '\\$&')}"`));
      } finally {
        await api.close();
      }
    }
  });
});
