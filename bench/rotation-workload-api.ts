// Rotation latency through the SPIFFE Workload API, the same two figures as bench/rotation.ts
// but from the moment a Workload API server pushes a new X509SVIDResponse on its stream:
// - push → the workloadApiSource's `update` event;
// - push → the first NEW TLS connection that a meshless `createServer` (its `source` is that
//   Workload API source) serves with the new certificate ("served").
//
//   node --conditions=source --import tsx bench/rotation-workload-api.ts [--rotations 100] [--interval-ms 150]
//
// The Workload API server is grpc-js on a Unix socket serving the spec's proto (the test
// server of packages/workload-api), in this process like the file bench's writer; the client
// opening new connections is the same worker thread as in bench/rotation.ts.
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { silentLogger, type Credential } from '@meshless/core';
import { createServer } from '@meshless/http';
import { createTestCA, type IssuedCertificate } from '@meshless/testing';
import { workloadApiSource } from '@meshless/workload-api';
import { startWorkloadApi, svidOf } from '@meshless/fixtures/workload-api-server';
import { figuresOf, now, round2, startClient, type LatencyFigures, type RotationBenchOptions, type RotationBenchResult } from './rotation.js';

/** Measures push → `update` and push → first new connection served with the new certificate, over `rotations` pushed SVIDs. */
export async function runWorkloadApiRotationBench(options: RotationBenchOptions = {}): Promise<RotationBenchResult> {
  const rotations = options.rotations ?? 100;
  const intervalMs = options.intervalMs ?? 150;
  const timeoutMs = options.timeoutMs ?? 5000;
  const ca = await createTestCA({ trustDomain: 'bench.example' });
  const certs: IssuedCertificate[] = await Promise.all(Array.from({ length: 4 }, () => ca.issue({ spiffeId: 'spiffe://bench.example/ns/bench/sa/rotation', dnsNames: ['localhost'] })));
  const client = await ca.issue('spiffe://bench.example/ns/bench/sa/client');
  const svids = certs.map((c) => svidOf(c));
  const api = await startWorkloadApi();
  api.push({ svids: [svids[0]!] });
  const source = await workloadApiSource({ address: api.address, logger: silentLogger });
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
    if (first.at === undefined) throw new Error(`workload-api rotation bench: the meshless server did not serve the first SVID: ${first.error ?? ''}`);
    for (let i = 1; i <= rotations; i++) {
      const next = certs[i % certs.length]!;
      let timer: NodeJS.Timeout | undefined;
      let t1: number | undefined;
      const updated = new Promise<Credential | undefined>((resolve) => {
        const onUpdate = (c: Credential) => {
          if (c.leaf.serialNumber !== next.serialNumber) return;
          t1 = now();
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
      const t0 = now();
      const served = clientWorker.served(next.serialNumber, t0 + timeoutMs);
      api.push({ svids: [svids[i % svids.length]!] });
      const [credential, reply] = await Promise.all([updated, served]);
      if (options.verbose) console.log(`push ${i}: → update ${t1 === undefined ? 'missed' : `${(t1 - t0).toFixed(1)} ms`}, → served ${reply.at === undefined ? `missed (${reply.error ?? ''})` : `${(reply.at - t0).toFixed(1)} ms`}`);
      if (credential && t1 !== undefined) samples.push(round2(t1 - t0));
      else missed++;
      if (reply.at !== undefined) servedSamples.push(round2(reply.at - t0));
      else servedMissed++;
      await sleep(intervalMs);
    }
  } finally {
    await clientWorker?.stop();
    server.closeAllConnections();
    await new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));
    await source.close();
    await api.close();
  }
  return { ...figuresOf(samples, missed), served: figuresOf(servedSamples, servedMissed) };
}

const runDirectly = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (runDirectly) {
  const { values } = parseArgs({ options: { rotations: { type: 'string', default: '100' }, 'interval-ms': { type: 'string', default: '150' }, verbose: { type: 'boolean', default: false } } });
  const rotations = Number(values.rotations);
  const result = await runWorkloadApiRotationBench({ rotations, intervalMs: Number(values['interval-ms']), verbose: values.verbose });
  const line = (label: string, f: LatencyFigures) =>
    console.log(`${label.padEnd(64)} over ${f.samples.length} of ${rotations} pushes: p50 ${f.p50Ms.toFixed(1)} ms   p99 ${f.p99Ms.toFixed(1)} ms   max ${f.maxMs.toFixed(1)} ms   missed ${f.missed}`);
  line('Workload API push → update event', result);
  line('Workload API push → first new connection served with the new cert', result.served);
  if (result.missed > 0 || result.served.missed > 0) process.exitCode = 1;
}
