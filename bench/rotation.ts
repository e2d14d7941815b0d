// Rotation latency, two figures per swap, both from the kubelet's atomic `..data` rename:
// - rename → the file source's `update` event;
// - rename → the first NEW TLS connection that a meshless `createServer` (its `source` is that
//   file source) serves with the new certificate ("served").
//
//   node --conditions=source --import tsx bench/rotation.ts [--rotations 100] [--interval-ms 150] [--verbose]
//
// Each rotation is done exactly as the kubelet's AtomicWriter does it (new `..<timestamp>`
// directory with the files, `..data_tmp` symlink to it, rename onto `..data`, then removal of the
// previous directory); the clock starts right before the rename. From then on a client in this
// process opens new mTLS connections one after another (no session reuse; each socket destroyed
// at `secureConnect`) until the server presents the new leaf's serial number: that handshake's
// `secureConnect` ends the served sample. The source therefore shares its event loop with a busy
// server and client, as it would in a loaded service. Rotations are paced `intervalMs` apart
// (after the previous swap is served), as in production where rotations are hours apart.
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { fileSource, silentLogger, type Credential } from '@meshless/core';
import { createServer } from '@meshless/http';
import { createTestCA, type IssuedCertificate } from '@meshless/testing';

export interface RotationBenchOptions {
  /** Number of swaps to measure. Default 100. */
  rotations?: number;
  /** Pause between one update and the next swap, in ms. Default 150. */
  intervalMs?: number;
  /** Give up on one swap (its update and its served connection) after this long, in ms. Default 5000. */
  timeoutMs?: number;
  /** Print every swap and the source's own rotation log lines. */
  verbose?: boolean;
}

/** Latencies of one measured step over every swap. */
export interface LatencyFigures {
  /** Median, ms. */
  p50Ms: number;
  /** 99th percentile (nearest rank), ms. */
  p99Ms: number;
  /** Slowest swap, ms. */
  maxMs: number;
  /** Every measured latency, in order, ms. */
  samples: number[];
  /** Swaps that did not get there within timeoutMs (not in samples). */
  missed: number;
}

/** The top-level figures are rename → `update`; `served` is rename → first new connection served with the new certificate. */
export interface RotationBenchResult extends LatencyFigures {
  served: LatencyFigures;
}

/** Nearest-rank percentile of ascending `sorted`. */
function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export const round2 = (x: number) => Math.round(x * 100) / 100;

export function figuresOf(samples: number[], missed: number): LatencyFigures {
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99), maxMs: sorted.at(-1) ?? Number.NaN, samples, missed };
}

/** Milliseconds on a clock shared by the threads (performance.now() alone is per thread). */
export const now = () => performance.timeOrigin + performance.now();

/**
 * The client, in a worker thread of its own (so its handshakes do not hold up the source's event
 * loop, as a client in another process would not). For each `{ serial, deadline }` it opens new
 * mTLS connections one after another (no session reuse), reads the server certificate's serial
 * number at `secureConnect` and destroys the socket, until the serial is `serial` or the deadline
 * passes; it answers `{ at }` (that `secureConnect`, on the shared clock) or `{ error }`.
 */
const CLIENT_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { connect, createSecureContext } = require('node:tls');
// One context for every connection (tls.connect with cert/key/ca would build one per connection).
const secureContext = createSecureContext({ cert: workerData.cert, key: workerData.key, ca: workerData.ca });
const now = () => performance.timeOrigin + performance.now();
function probe(deadline) {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port: workerData.port, servername: 'localhost', secureContext, rejectUnauthorized: true });
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
  let error, connections = 0, seen;
  while (now() < deadline) {
    const outcome = await probe(deadline);
    connections++;
    if (outcome.error) error = outcome.error;
    else if (outcome.serial === serial) return parentPort.postMessage({ at: outcome.at, connections });
    else seen = outcome.serial;
  }
  parentPort.postMessage({ error: error ?? 'still served serial ' + seen, connections });
});
`;

interface ProbeReply {
  at?: number;
  error?: string;
  connections: number;
}

/** Starts the client worker; `served(serial, deadline)` resolves with its reply. */
export function startClient(port: number, client: IssuedCertificate): { served(serial: string, deadline: number): Promise<ProbeReply>; stop(): Promise<number> } {
  const worker = new Worker(CLIENT_WORKER, { eval: true, workerData: { port, cert: client.cert, key: client.key, ca: client.ca } });
  return {
    served: (serial, deadline) =>
      new Promise<ProbeReply>((resolve, reject) => {
        const onError = (err: Error) => reject(err);
        worker.once('error', onError);
        worker.once('message', (reply: ProbeReply) => {
          worker.off('error', onError);
          resolve(reply);
        });
        worker.postMessage({ serial, deadline });
      }),
    stop: () => worker.terminate(),
  };
}

/** Measures `..data` rename → `update` and rename → first new connection served with the new certificate, over `rotations` kubelet-style swaps. */
export async function runRotationBench(options: RotationBenchOptions = {}): Promise<RotationBenchResult> {
  const rotations = options.rotations ?? 100;
  const intervalMs = options.intervalMs ?? 150;
  const timeoutMs = options.timeoutMs ?? 5000;
  const ca = await createTestCA({ trustDomain: 'bench.example' });
  // Distinct content on every swap: cycling through a few certificates is enough (identical
  // content is not a new generation; consecutive ones always differ).
  // The client checks the host name (servername 'localhost') as well as the chain.
  const certs: IssuedCertificate[] = await Promise.all(Array.from({ length: 4 }, () => ca.issue({ spiffeId: 'spiffe://bench.example/ns/bench/sa/rotation', dnsNames: ['localhost'] })));
  const client = await ca.issue('spiffe://bench.example/ns/bench/sa/client');
  const root = await mkdtemp(path.join(tmpdir(), 'meshless-rotation-bench-'));
  const dir = path.join(root, 'tls');
  await mkdir(dir);
  let n = 0;
  let current: string | undefined;

  /** Writes a generation directory and `..data_tmp`; returns the rename that publishes it. */
  const prepare = async (c: IssuedCertificate): Promise<() => Promise<void>> => {
    const generation = `..bench_${String(++n).padStart(5, '0')}`;
    await mkdir(path.join(dir, generation));
    await writeFile(path.join(dir, generation, 'tls.crt'), c.cert);
    await writeFile(path.join(dir, generation, 'tls.key'), c.key, { mode: 0o600 });
    await writeFile(path.join(dir, generation, 'ca.crt'), c.ca);
    await symlink(generation, path.join(dir, '..data_tmp'));
    return async () => {
      await rename(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
      const previous = current;
      current = generation;
      if (previous !== undefined) await rm(path.join(dir, previous), { recursive: true, force: true });
    };
  };

  await (await prepare(certs[0]!))();
  for (const name of ['tls.crt', 'tls.key', 'ca.crt']) await symlink(path.join('..data', name), path.join(dir, name));
  // verbose: print the source's own "rotated" lines (trigger, read attempts, read time)
  const logger = options.verbose ? { ...silentLogger, info: (o: object, msg?: string) => console.log(`  ${performance.now().toFixed(1)} ${msg ?? ''} ${JSON.stringify(o)}`) } : silentLogger;
  const source = await fileSource({ dir }, { logger });
  const server = createServer({ source, allow: 'spiffe://bench.example/ns/bench/sa/client', logger: silentLogger }, (_req, res) => res.end());
  const samples: number[] = [];
  const servedSamples: number[] = [];
  let missed = 0;
  let servedMissed = 0;
  let clientWorker: ReturnType<typeof startClient> | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    clientWorker = startClient((server.address() as AddressInfo).port, client);
    const first = await clientWorker.served(certs[0]!.serialNumber, now() + timeoutMs);
    if (first.at === undefined) throw new Error(`rotation bench: the meshless server did not serve the first certificate: ${first.error ?? ''}`);
    for (let i = 1; i <= rotations; i++) {
      const next = certs[i % certs.length]!;
      const publish = await prepare(next);
      let timer: NodeJS.Timeout | undefined;
      const updated = new Promise<Credential | undefined>((resolve) => {
        const onUpdate = (c: Credential) => {
          if (c.leaf.serialNumber !== next.serialNumber) return;
          source.off('update', onUpdate);
          clearTimeout(timer);
          resolve(c);
        };
        source.on('update', onUpdate);
        timer = setTimeout(() => {
          source.off('update', onUpdate);
          resolve(undefined);
        }, timeoutMs);
      });
      let t1: number | undefined;
      const t0 = now();
      const served = clientWorker.served(next.serialNumber, t0 + timeoutMs);
      await publish();
      const [credential, reply] = await Promise.all([
        updated.then((c) => {
          t1 = now();
          return c;
        }),
        served,
      ]);
      const servedAt = reply.at;
      if (options.verbose) {
        const update = credential && t1 !== undefined ? `${(t1 - t0).toFixed(1)} ms` : 'missed';
        const servedText = servedAt === undefined ? `missed (${reply.error ?? ''})` : `${(servedAt - t0).toFixed(1)} ms`;
        console.log(`${performance.now().toFixed(1)} swap ${i}: rename → update ${update}, → served ${servedText} after ${reply.connections} new connections`);
      }
      if (credential && t1 !== undefined) samples.push(round2(t1 - t0));
      else missed++;
      if (servedAt !== undefined) servedSamples.push(round2(servedAt - t0));
      else servedMissed++;
      await sleep(intervalMs);
    }
  } finally {
    await clientWorker?.stop();
    server.closeAllConnections();
    await new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));
    await source.close();
    await rm(root, { recursive: true, force: true });
  }
  return { ...figuresOf(samples, missed), served: figuresOf(servedSamples, servedMissed) };
}

const runDirectly = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (runDirectly) {
  const { values } = parseArgs({ options: { rotations: { type: 'string', default: '100' }, 'interval-ms': { type: 'string', default: '150' }, verbose: { type: 'boolean', default: false } } });
  const rotations = Number(values.rotations);
  const result = await runRotationBench({ rotations, intervalMs: Number(values['interval-ms']), verbose: values.verbose });
  const line = (label: string, f: LatencyFigures) =>
    console.log(`${label.padEnd(64)} over ${f.samples.length} of ${rotations} swaps: p50 ${f.p50Ms.toFixed(1)} ms   p99 ${f.p99Ms.toFixed(1)} ms   max ${f.maxMs.toFixed(1)} ms   missed ${f.missed}`);
  line('..data rename → update event', result);
  line('..data rename → first new connection served with the new cert', result.served);
  if (result.missed > 0 || result.served.missed > 0) process.exitCode = 1;
}
