// Rotation latency, two figures per swap, for two ways a new certificate arrives:
// - `rotation`: a kubelet-style `..data` swap under a `fileSource` (exactly as the kubelet's
//   AtomicWriter does it: new `..<timestamp>` directory, `..data_tmp` symlink, rename onto
//   `..data`, removal of the previous directory); the clock starts right before the rename;
// - `workload-api`: a SPIFFE Workload API server (grpc-js on a Unix socket, the test server of
//   packages/workload-api) pushes a new SVID to a `workloadApiSource`; the clock starts at the push.
// Each is timed until the source's `update` event (the `-update` rows), and until the first NEW
// TLS connection that a meshless `createServer` on that source serves with the new certificate
// (what the "rotation p99 ≤ 100 ms" target reads). From the trigger on, a client in a worker thread
// opens new mTLS connections one after another (no session reuse; each socket destroyed at
// `secureConnect`) until the server presents the new serial, so the source shares its event loop
// with a busy server. Swaps are paced 150 ms apart (after the previous one is served).
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import { fileSource, silentLogger, type Credential, type Source } from '@meshless/core';
import { createServer } from '@meshless/http';
import { workloadApiSource } from '@meshless/workload-api';
import { startWorkloadApi, svidOf } from '@meshless/fixtures/workload-api-server';
import { CLIENT_ID, SERVER_NAME, type CertFiles } from '../lib/certs.js';
import type { BenchContext } from '../lib/context.js';
import { skippedRow, type Row } from '../lib/results.js';
import { quantileSorted, round } from '../lib/stats.js';

/** What the `rotation` row times (the variant text of its row; the report looks for it). */
export const ROTATION_SERVED = '..data rename → first new connection served with the new certificate';

const INTERVAL_MS = 150;
const TIMEOUT_MS = 5_000;

/** A way to deliver certificate generation g (cycled through the bench's generations) to a Source. */
interface Trigger {
  id: 'rotation' | 'workload-api';
  unit: 'swaps' | 'pushes';
  served: string;
  update: string;
  /** The source, serving generation 0; `prepare(g)` readies generation g and returns what publishes it (the clock starts just before). */
  start(ctx: BenchContext): Promise<{ source: Source; prepare(g: number): Promise<() => Promise<void>>; close(): Promise<void> }>;
}

const pemsOf = (certs: CertFiles, g: number) => ({ cert: readFileSync(certs.serverCert(g), 'utf8'), key: readFileSync(certs.serverKey(g), 'utf8'), ca: readFileSync(certs.ca, 'utf8') });

const kubelet: Trigger = {
  id: 'rotation',
  unit: 'swaps',
  served: ROTATION_SERVED,
  update: '..data rename → file source update event',
  async start(ctx) {
    const dir = join(ctx.workDir, 'rotation', 'tls');
    await mkdir(dir, { recursive: true });
    let n = 0;
    let current: string | undefined;
    const prepare = async (g: number) => {
      const generation = `..bench_${String(++n).padStart(5, '0')}`;
      const pems = pemsOf(ctx.certs, g);
      await mkdir(join(dir, generation));
      for (const [name, text] of [['tls.crt', pems.cert], ['tls.key', pems.key], ['ca.crt', pems.ca]]) await writeFile(join(dir, generation, name!), text!, { mode: 0o600 });
      await symlink(generation, join(dir, '..data_tmp'));
      return async () => {
        await rename(join(dir, '..data_tmp'), join(dir, '..data'));
        const previous = current;
        current = generation;
        if (previous !== undefined) await rm(join(dir, previous), { recursive: true, force: true });
      };
    };
    await (await prepare(0))();
    for (const name of ['tls.crt', 'tls.key', 'ca.crt']) await symlink(join('..data', name), join(dir, name));
    const source = await fileSource({ dir }, { logger: silentLogger });
    return { source, prepare, close: () => source.close() };
  },
};

const workloadApi: Trigger = {
  id: 'workload-api',
  unit: 'pushes',
  served: 'Workload API push → first new connection served with the new certificate',
  update: 'Workload API push → workloadApiSource update event',
  async start(ctx) {
    const api = await startWorkloadApi();
    api.push({ svids: [svidOf(pemsOf(ctx.certs, 0))] });
    const source = await workloadApiSource({ address: api.address, logger: silentLogger });
    return {
      source,
      prepare: async (g) => {
        const svid = svidOf(pemsOf(ctx.certs, g));
        return async () => api.push({ svids: [svid] });
      },
      close: async () => {
        await source.close();
        await api.close();
      },
    };
  },
};

/** Milliseconds on a clock shared by the threads (performance.now() alone is per thread). */
const now = () => performance.timeOrigin + performance.now();

/**
 * The client, in a worker thread of its own (so its handshakes do not hold up the source's event
 * loop, as a client in another process would not). For each `{ serial, deadline }` it opens new
 * mTLS connections one after another until the server's certificate has that serial or the
 * deadline passes, and answers `{ at }` (that `secureConnect`, on the shared clock) or `{ error }`.
 */
const CLIENT_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { connect, createSecureContext } = require('node:tls');
// One context for every connection (tls.connect with cert/key/ca would build one per connection).
const secureContext = createSecureContext({ cert: workerData.cert, key: workerData.key, ca: workerData.ca });
const now = () => performance.timeOrigin + performance.now();
function probe(deadline) {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port: workerData.port, servername: workerData.servername, secureContext, rejectUnauthorized: true });
    const timer = setTimeout(() => finish({ error: 'a handshake did not finish before the swap deadline' }), Math.max(1, deadline - now()));
    function finish(outcome) { clearTimeout(timer); socket.destroy(); resolve(outcome); }
    socket.once('secureConnect', () => {
      const at = now();
      const cert = socket.getPeerX509Certificate();
      finish(cert ? { serial: cert.serialNumber, at } : { error: 'the server sent no certificate' });
    });
    socket.once('error', (err) => finish({ error: err.message }));
  });
}
parentPort.on('message', async ({ serial, deadline }) => {
  let error, seen;
  while (now() < deadline) {
    const outcome = await probe(deadline);
    if (outcome.error) error = outcome.error;
    else if (outcome.serial === serial) return parentPort.postMessage({ at: outcome.at });
    else seen = outcome.serial;
  }
  parentPort.postMessage({ error: error ?? 'still served serial ' + seen });
});
`;

/** p50, p99 (nearest rank), max and missed of one measured step, in ms, as a row's figures. */
function figures(samples: number[], missed: number): Record<string, number | undefined> {
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50Ms: round(quantileSorted(sorted, 0.5), 4), p99Ms: round(quantileSorted(sorted, 0.99), 4), maxMs: round(sorted.at(-1), 4), missed };
}

/** Times `rotations` deliveries of a new certificate through `trigger`: → update, and → served. */
async function measure(ctx: BenchContext, trigger: Trigger, rotations: number): Promise<Row[]> {
  const serial = (g: number) => new X509Certificate(readFileSync(ctx.certs.serverCert(g))).serialNumber;
  const { source, prepare, close } = await trigger.start(ctx);
  const server = createServer({ source, allow: CLIENT_ID, logger: silentLogger }, (_req, res) => res.end());
  const client = { cert: readFileSync(ctx.certs.clientCert()), key: readFileSync(ctx.certs.clientKey()), ca: readFileSync(ctx.certs.ca) };
  let worker: Worker | undefined;
  const update: number[] = [];
  const served: number[] = [];
  try {
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
    worker = new Worker(CLIENT_WORKER, { eval: true, workerData: { port: (server.address() as AddressInfo).port, servername: SERVER_NAME, ...client } });
    const w = worker;
    const servedAt = (want: string, deadline: number) => {
      w.postMessage({ serial: want, deadline });
      // Bounded: the worker answers by the deadline; one that died without a word fails the scenario.
      return once(w, 'message', { signal: AbortSignal.timeout(Math.ceil(deadline - now()) + 10_000) }).then(([reply]) => reply as { at?: number; error?: string });
    };
    const first = await servedAt(serial(0), now() + TIMEOUT_MS);
    if (first.at === undefined) throw new Error(`the meshless server did not serve the first certificate: ${first.error ?? ''}`);
    for (let i = 1; i <= rotations; i++) {
      const want = serial(i);
      const publish = await prepare(i);
      const updated = new Promise<number | undefined>((resolve) => {
        const timer = setTimeout(() => {
          source.off('update', onUpdate);
          resolve(undefined);
        }, TIMEOUT_MS);
        const onUpdate = (c: Credential) => {
          if (c.leaf.serialNumber !== want) return;
          source.off('update', onUpdate);
          clearTimeout(timer);
          resolve(now());
        };
        source.on('update', onUpdate);
      });
      const t0 = now();
      const reply = servedAt(want, t0 + TIMEOUT_MS);
      await publish();
      const [t1, r] = await Promise.all([updated, reply]);
      if (t1 !== undefined) update.push(round(t1 - t0, 4)!);
      if (r.at !== undefined) served.push(round(r.at - t0, 4)!);
      if (ctx.options.verbose) console.log(`  ${trigger.id} ${i}: → update ${t1 === undefined ? 'missed' : `${(t1 - t0).toFixed(1)} ms`}, → served ${r.at === undefined ? `missed (${r.error ?? ''})` : `${(r.at - t0).toFixed(1)} ms`}`);
      await sleep(INTERVAL_MS);
    }
  } finally {
    await worker?.terminate();
    server.closeAllConnections();
    await new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));
    await close();
  }
  return [
    [trigger.id, trigger.served, served],
    [`${trigger.id}-update`, trigger.update, update],
  ].map(([scenario, what, samples]) => {
    const median = figures(samples as number[], rotations - (samples as number[]).length);
    console.log(`  ${String(what)}: p50 ${median.p50Ms} ms  p99 ${median.p99Ms} ms over ${rotations} ${trigger.unit}`);
    const row: Row = { group: 'rotation', scenario: scenario as string, variant: `${rotations} ${trigger.unit}: ${String(what)}`, status: 'ok', median, details: { samples } };
    return (samples as number[]).length ? row : { ...row, status: 'failed', reason: `every one of ${rotations} ${trigger.unit} missed (${TIMEOUT_MS} ms each)` };
  });
}

export async function runRotation(ctx: BenchContext): Promise<Row[]> {
  console.log('\n== rotation: a new certificate → update, → first new connection served with it ==');
  const rows: Row[] = [];
  for (const trigger of [kubelet, workloadApi]) {
    try {
      rows.push(...(await measure(ctx, trigger, ctx.options.rotations)));
    } catch (err) {
      const reason = (err as Error).message.split('\n')[0]!;
      for (const [scenario, what] of [[trigger.id, trigger.served], [`${trigger.id}-update`, trigger.update]]) rows.push(skippedRow('rotation', scenario!, `${ctx.options.rotations} ${trigger.unit}: ${what}`, reason, 'failed'));
    }
  }
  return rows;
}
