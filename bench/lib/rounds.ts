import type { BenchContext } from './context.js';
import { machineBusySeconds, treeCpuSeconds } from './cpu.js';
import type { Pair, Unavailable } from './pairs.js';
import { skippedRow, type Row } from './results.js';
import { median, pairedRange, pairedRatio, round } from './stats.js';

export interface Variant extends LoadShape {
  id: string;
}

/** Extra warm-up of each scenario's first window (round 1), when its processes are freshly started. */
const FIRST_ROUND_EXTRA_WARMUP_MS = 1_000;

const metrics = ['rps', 'p50Ms', 'p99Ms', 'cpuSecPer10k', 'serverCpuSecPer10k', 'clientCpuSecPer10k', 'otherCoresBusy'] as const;

/**
 * Runs every target in every variant, `rounds` times, interleaved: round 1 (A B C…, each variant),
 * round 2 (B C … A)… so that drift on the machine lands on every scenario alike. A target that
 * breaks is dropped with its error; the others go on. Returns one row per target and variant.
 */
export async function runInterleaved(
  ctx: BenchContext,
  group: Row['group'],
  targets: (Pair | Unavailable)[],
  variants: Variant[],
  measureMs: number,
  baselines: (scenario: string) => string[] = httpBaselines,
): Promise<Row[]> {
  const { rounds, warmupMs } = ctx.options;
  const results = new Map<string, RunResult[]>();
  const broken = new Map<string, string>();
  let skippedForTime = false;
  const live = targets.filter((t): t is Pair => 'load' in t);
  const windowMs = warmupMs + measureMs + 500;
  const firstWindowMs = windowMs + FIRST_ROUND_EXTRA_WARMUP_MS;
  for (let r = 1; r <= rounds; r++) {
    // The order rotates each round (A B C, B C A, C A B…): no scenario always runs right after the
    // same other one, so what a window leaves behind (a warm or busy core, a CPU frequency) does not
    // land on one scenario only.
    const order = live.map((_, i) => live[(i + r - 1) % live.length]!);
    for (const variant of variants) {
      for (const target of order) {
        const key = `${target.id}|${variant.id}`;
        if (broken.has(target.id)) continue;
        if (ctx.budget.cannotFit(r === 1 ? firstWindowMs : windowMs)) {
          skippedForTime = true;
          continue;
        }
        try {
          // Round 1 meets freshly started processes whose code is not optimised yet: their first
          // window warms up a second longer (in the last full run, every scenario's round 1 was
          // its slowest, by up to 20 %).
          const run = await measureOnce(target, variant, r === 1 ? warmupMs + FIRST_ROUND_EXTRA_WARMUP_MS : warmupMs, measureMs, r);
          if (!results.has(key)) results.set(key, []);
          results.get(key)!.push(run);
          const err = run.errors > 0 ? `, ${run.errors} errors (${run.firstError})` : '';
          console.log(
            `  round ${r} ${variant.id.padEnd(8)} ${target.id.padEnd(15)} ${fmt(run.rps, 0).padStart(7)} req/s  p50 ${fmt(run.p50Ms, 3)} ms  p99 ${fmt(run.p99Ms, 3)} ms  ${fmt(run.cpuSecPer10k, 3)} CPU s/10k  (others busy: ${fmt(run.otherCoresBusy, 1)} cores)${err}`,
          );
        } catch (e) {
          broken.set(target.id, (e as Error).message.split('\n').slice(0, 4).join(' | '));
          console.log(`  ${target.id} failed: ${broken.get(target.id)}`);
        }
      }
    }
  }

  const rows: Row[] = [];
  for (const target of targets) {
    for (const variant of variants) {
      if (!('load' in target)) {
        rows.push(skippedRow(group, target.id, variant.id, target.reason, target.status));
        continue;
      }
      const runs = results.get(`${target.id}|${variant.id}`) ?? [];
      if (runs.length === 0) {
        const reason = broken.get(target.id) ?? (skippedForTime ? 'time budget exhausted before this row ran' : 'no run completed');
        rows.push(skippedRow(group, target.id, variant.id, reason, broken.has(target.id) ? 'failed' : 'skipped'));
        continue;
      }
      const med: Record<string, number | undefined> = {};
      for (const m of metrics) med[m] = round(median(runs.map((x) => x[m])), 4);
      const requests = runs.reduce((s, x) => s + x.requests, 0);
      const errors = runs.reduce((s, x) => s + x.errors, 0);
      const tls = runs.reduce((s, x) => s + x.tlsConnections, 0);
      if (tls > 0) med.resumedShare = round(runs.reduce((s, x) => s + x.resumed, 0) / tls, 3);
      const row: Row = { group, scenario: target.id, variant: variant.id, status: 'ok', median: med, rounds: runs.map((x) => ({ ...x })) };
      if (errors > requests * 0.01) {
        row.status = 'failed';
        row.reason = `${errors} failed requests of ${requests + errors}: ${runs.find((x) => x.firstError)?.firstError}`;
      } else if (broken.has(target.id)) {
        row.reason = `incomplete: ${broken.get(target.id)}`;
      }
      rows.push(row);
    }
  }
  addRatios(rows, baselines);
  return rows;
}

/** Baselines each HTTP scenario is compared with (paired by round). */
const httpBaselines = (scenario: string): string[] =>
  scenario === 'meshless-permissive'
    ? ['meshless', 'mtls', 'pool']
    : scenario === 'meshless' || scenario === 'mtls' || scenario === 'pool'
    ? ['plaintext', 'pool', 'pool-full', 'mtls', 'mtls-full', 'stunnel', 'nginx']
    : ['plaintext', 'pool', 'pool-full', 'mtls', 'mtls-full'];

/** Sets `ratios` and `ratioRanges` of measured rows against the other rows of their group and variant. */
export function addRatios(rows: Row[], baselinesOf = httpBaselines): void {
  for (const key of new Set(rows.map((r) => `${r.group}|${r.variant}`))) {
    const sameVariant = rows.filter((r) => `${r.group}|${r.variant}` === key && r.status !== 'skipped' && r.rounds);
    for (const row of sameVariant) {
      const ratios: Record<string, number | undefined> = {};
      const ranges: Record<string, [number, number]> = {};
      for (const baseId of baselinesOf(row.scenario)) {
        const base = sameVariant.find((b) => b.scenario === baseId);
        if (!base || base === row) continue;
        const pick = (rr: Row, k: string) => rr.rounds!.map((x) => x[k] as number | undefined);
        for (const [name, metric] of [['rps', 'rps'], ['p99', 'p99Ms'], ['cpu', 'cpuSecPer10k']] as const) {
          const key = `${name}/${baseId}`;
          ratios[key] = round(pairedRatio(pick(row, metric), pick(base, metric)), 3);
          const range = pairedRange(pick(row, metric), pick(base, metric));
          if (range) ranges[key] = [round(range[0], 3)!, round(range[1], 3)!];
        }
      }
      if (Object.keys(ratios).length > 0) row.ratios = ratios;
      if (Object.keys(ranges).length > 0) row.ratioRanges = ranges;
    }
  }
}

/** A number for console lines. */
export function fmt(value: number | undefined, digits: number): string {
  return value === undefined || !Number.isFinite(value) ? 'n/a' : value.toFixed(digits);
}

export interface LoadShape {
  concurrency: number;
  path: string;
  newConnection: boolean;
}

/** One measured window of one scenario. */
export interface RunResult {
  round: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  cpuSecPer10k: number;
  serverCpuSecPer10k: number;
  clientCpuSecPer10k: number;
  requests: number;
  errors: number;
  firstError?: string;
  elapsedMs: number;
  tlsConnections: number;
  resumed: number;
  /** Cores kept busy by other processes during the window (machine busy − this scenario): noise. */
  otherCoresBusy: number;
}

/**
 * Measures one window: fresh client pool, warm-up, then CPU of the serving processes (from
 * /proc) and of the load generator (its own process.cpuUsage) around the measured window.
 */
export async function measureOnce(target: Pair, shape: LoadShape, warmupMs: number, measureMs: number, round: number): Promise<RunResult> {
  const timeout = measureMs + warmupMs + 30_000;
  const load = { concurrency: shape.concurrency, path: shape.path, newConnection: shape.newConnection };
  await target.load.request({ type: 'open' }, 10_000);
  try {
    await target.load.request({ type: 'warm', ...load, durationMs: warmupMs }, timeout);
    const pids = target.serving.map((c) => c.pid);
    const stats0 = await target.server.request({ type: 'stats' }, 10_000);
    const cpu0 = treeCpuSeconds(pids);
    const busy0 = machineBusySeconds();
    const m = await target.load.request({ type: 'measure', ...load, durationMs: measureMs }, timeout);
    const busy1 = machineBusySeconds();
    const cpu1 = treeCpuSeconds(pids);
    const stats1 = await target.server.request({ type: 'stats' }, 10_000);
    const requests = Number(m.requests);
    const serverCpu = cpu1 - cpu0;
    const clientCpu = Number(m.cpuSeconds);
    const per10k = (s: number) => (requests > 0 ? (s / requests) * 10_000 : NaN);
    return {
      round,
      rps: requests / (Number(m.elapsedMs) / 1000),
      p50Ms: Number(m.p50Ms),
      p99Ms: Number(m.p99Ms),
      cpuSecPer10k: per10k(serverCpu + clientCpu),
      serverCpuSecPer10k: per10k(serverCpu),
      clientCpuSecPer10k: per10k(clientCpu),
      requests,
      errors: Number(m.errors),
      ...(m.firstError ? { firstError: String(m.firstError) } : {}),
      elapsedMs: Number(m.elapsedMs),
      tlsConnections: Number(stats1.tlsConnections) - Number(stats0.tlsConnections),
      resumed: Number(stats1.resumed) - Number(stats0.resumed),
      otherCoresBusy: Math.max(0, (busy1 - busy0 - serverCpu - clientCpu) / (Number(m.elapsedMs) / 1000)),
    };
  } finally {
    if (target.load.running) await target.load.request({ type: 'close' }, 10_000).catch(() => undefined);
  }
}
