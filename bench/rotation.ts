// Rotation latency: the kubelet's atomic `..data` rename → the file source's `update` event.
//
//   node --conditions=source --import tsx bench/rotation.ts [--rotations 100] [--interval-ms 150] [--verbose]
//
// Each rotation is done exactly as the kubelet's AtomicWriter does it (new `..<timestamp>`
// directory with the files, `..data_tmp` symlink to it, rename onto `..data`, then removal of the
// previous directory); the clock starts right before the rename. Rotations are paced
// `intervalMs` apart (after the previous update), so each one is measured on an idle source,
// as in production where rotations are hours apart.
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { fileSource, silentLogger, type Credential } from '@meshless/core';
import { createTestCA, type IssuedCertificate } from '@meshless/testing';

export interface RotationBenchOptions {
  /** Number of swaps to measure. Default 100. */
  rotations?: number;
  /** Pause between one update and the next swap, in ms. Default 150. */
  intervalMs?: number;
  /** Give up on one swap after this long, in ms. Default 5000. */
  timeoutMs?: number;
  /** Print every swap and the source's own rotation log lines. */
  verbose?: boolean;
}

export interface RotationBenchResult {
  /** Median rename → update latency, ms. */
  p50Ms: number;
  /** 99th percentile (nearest rank), ms. */
  p99Ms: number;
  /** Slowest swap, ms. */
  maxMs: number;
  /** Every measured latency, in order, ms. */
  samples: number[];
  /** Swaps whose update never came within timeoutMs (not in samples). */
  missed: number;
}

/** Nearest-rank percentile of ascending `sorted`. */
function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

const round2 = (x: number) => Math.round(x * 100) / 100;

/** Measures `..data` rename → `update` latency over `rotations` kubelet-style swaps. */
export async function runRotationBench(options: RotationBenchOptions = {}): Promise<RotationBenchResult> {
  const rotations = options.rotations ?? 100;
  const intervalMs = options.intervalMs ?? 150;
  const timeoutMs = options.timeoutMs ?? 5000;
  const ca = await createTestCA({ trustDomain: 'bench.example' });
  // Distinct content on every swap: cycling through a few certificates is enough (identical
  // content is not a new generation; consecutive ones always differ).
  const certs: IssuedCertificate[] = await Promise.all(Array.from({ length: 4 }, () => ca.issue('spiffe://bench.example/ns/bench/sa/rotation')));
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
  const samples: number[] = [];
  let missed = 0;
  try {
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
      const t0 = performance.now();
      await publish();
      const credential = await updated;
      const t1 = performance.now();
      if (options.verbose) console.log(`${t0.toFixed(1)} swap ${i}: rename → update ${credential ? (t1 - t0).toFixed(1) + ' ms' : 'missed'}`);
      if (credential) samples.push(round2(t1 - t0));
      else missed++;
      await sleep(intervalMs);
    }
  } finally {
    await source.close();
    await rm(root, { recursive: true, force: true });
  }
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99), maxMs: sorted.at(-1) ?? Number.NaN, samples, missed };
}

const runDirectly = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (runDirectly) {
  const { values } = parseArgs({ options: { rotations: { type: 'string', default: '100' }, 'interval-ms': { type: 'string', default: '150' }, verbose: { type: 'boolean', default: false } } });
  const rotations = Number(values.rotations);
  const result = await runRotationBench({ rotations, intervalMs: Number(values['interval-ms']), verbose: values.verbose });
  console.log(`rotation latency (..data rename → update event) over ${result.samples.length} of ${rotations} swaps:`);
  console.log(`  p50 ${result.p50Ms.toFixed(1)} ms   p99 ${result.p99Ms.toFixed(1)} ms   max ${result.maxMs.toFixed(1)} ms   missed ${result.missed}`);
  if (result.missed > 0) process.exitCode = 1;
}
