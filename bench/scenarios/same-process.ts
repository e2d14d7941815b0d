// meshless's own cost with the processes taken out of the comparison. The pair rows (http, grpc)
// measure each scenario in its own server and load-generator processes; two processes of the
// same code can land a few per cent apart (where the scheduler puts them, how their code was
// optimised), which at concurrency 1 is larger than anything meshless adds per request. Here the
// two things compared share one process, and their windows alternate (A B, B A, …):
// - client: the meshless client and the hand-written one in one load-generator process, against
//   the same hand-written server;
// - server: the meshless server and the hand-written one in one server process (two ports),
//   driven by the same hand-written client kind.
// Per window: requests/s and CPU per request of the side compared (the load generator's own
// process.cpuUsage, or the server process's, which it reports itself: finer than /proc's ticks); ratios are meshless ÷ hand-written, per
// pair of windows, reported as the median and the range.
import { machineBusySeconds } from '../lib/cpu.js';
import { startTs, type BenchChild } from '../lib/children.js';
import type { BenchContext } from '../lib/context.js';
import { skippedRow, type Row } from '../lib/results.js';
import { median, round } from '../lib/stats.js';

interface Comparison {
  /** `http client`, `http server`, `grpc client`, `grpc server`. */
  scenario: string;
  variant: string;
  label: string;
  /** Server kinds: one (both clients aim at it) or two (client i aims at server i). */
  servers: string[];
  /** Client kinds: [hand-written, meshless] or [hand-written, hand-written]. */
  clients: [string, string];
  side: 'client' | 'server';
  concurrency: number;
}

const comparisons: Comparison[] = [
  { scenario: 'http client', variant: 'c1', label: 'createAgent ÷ bare undici Pool, in one load-generator process, same node:https server', servers: ['mtls'], clients: ['pool', 'meshless'], side: 'client', concurrency: 1 },
  { scenario: 'http server', variant: 'c1', label: 'createServer ÷ node:https, in one server process, each behind its own bare Pool', servers: ['mtls', 'meshless'], clients: ['pool', 'pool'], side: 'server', concurrency: 1 },
  { scenario: 'grpc client', variant: 'unary, 32 in flight', label: 'channelCredentials ÷ createSsl, in one client process, same createSsl server', servers: ['grpc-createSsl'], clients: ['grpc-createSsl', 'grpc-meshless'], side: 'client', concurrency: 32 },
  { scenario: 'grpc server', variant: 'unary, 32 in flight', label: 'serverCredentials ÷ createSsl, in one server process, each behind its own createSsl channel', servers: ['grpc-createSsl', 'grpc-meshless'], clients: ['grpc-createSsl', 'grpc-createSsl'], side: 'server', concurrency: 32 },
];

/** Windows per side (alternating); each window is preceded by a short settle with the same client. */
const WINDOWS = { full: 10, quick: 4 };
const WINDOW_MS = { full: 250, quick: 200 };
const SETTLE_MS = 50;
const FIRST_WARMUP_MS = 600;

interface Window {
  rps: number;
  clientCpuUs: number;
  serverCpuUs: number;
  otherCoresBusy: number;
  errors: number;
}

async function measureWindow(load: BenchChild, server: BenchChild, which: number, concurrency: number, ms: number): Promise<Window> {
  await load.request({ type: 'warm', which, concurrency, durationMs: SETTLE_MS }, 30_000);
  const s0 = Number((await server.request({ type: 'cpu' }, 10_000)).us);
  const busy0 = machineBusySeconds();
  const m = await load.request({ type: 'measure', which, concurrency, durationMs: ms }, ms + 30_000);
  const busy1 = machineBusySeconds();
  const serverCpu = (Number((await server.request({ type: 'cpu' }, 10_000)).us) - s0) / 1e6;
  const requests = Number(m.requests);
  const seconds = Number(m.elapsedMs) / 1000;
  const clientCpu = Number(m.cpuSeconds);
  return {
    rps: requests / seconds,
    clientCpuUs: (clientCpu / requests) * 1e6,
    serverCpuUs: (serverCpu / requests) * 1e6,
    otherCoresBusy: Math.max(0, (busy1 - busy0 - serverCpu - clientCpu) / seconds),
    errors: Number(m.errors),
  };
}

async function start(ctx: BenchContext, c: Comparison): Promise<{ server: BenchChild; load: BenchChild }> {
  const opts = { verbose: ctx.options.verbose };
  const server = await startTs(`two-servers-${c.scenario}`, 'proc/two-servers.ts', ['--kinds', c.servers.join(','), '--certs', ctx.certs.dir], opts);
  const ports = server.ready.ports as number[];
  const clients = c.clients.map((kind, i) => `${kind}@${ports[c.servers.length === 1 ? 0 : i]}`).join(',');
  try {
    const load = await startTs(`ab-load-${c.scenario}`, 'proc/ab-load.ts', ['--clients', clients, '--certs', ctx.certs.dir], opts);
    return { server: server.child, load: load.child };
  } catch (err) {
    await server.child.stop();
    throw err;
  }
}

async function compare(ctx: BenchContext, c: Comparison, started: { server: BenchChild; load: BenchChild }): Promise<Row> {
  const quick = ctx.options.mode === 'quick';
  const windows = quick ? WINDOWS.quick : WINDOWS.full;
  const ms = quick ? WINDOW_MS.quick : WINDOW_MS.full;
  const needed = FIRST_WARMUP_MS * 2 + windows * 2 * (ms + SETTLE_MS + 100);
  if (ctx.budget.cannotFit(needed)) return skippedRow('same-process', c.scenario, c.variant, 'time budget exhausted before this row ran');
  const { server, load } = started;
  for (const which of [0, 1]) await load.request({ type: 'warm', which, concurrency: c.concurrency, durationMs: FIRST_WARMUP_MS }, 60_000);
  const runs: [Window[], Window[]] = [[], []];
  for (let i = 0; i < windows; i++) {
    for (const which of i % 2 === 0 ? [0, 1] : [1, 0]) runs[which]!.push(await measureWindow(load, server, which, c.concurrency, ms));
  }
  const [base, mine] = runs;
  const cpuKey = c.side === 'client' ? 'clientCpuUs' : 'serverCpuUs';
  const ratios = (key: keyof Window) => mine.map((w, i) => w[key] / base[i]![key]).filter(Number.isFinite);
  const range = (xs: number[]): [number, number] => [round(Math.min(...xs), 3)!, round(Math.max(...xs), 3)!];
  const rps = ratios('rps');
  const cpu = ratios(cpuKey);
  const errors = [...base, ...mine].reduce((s, w) => s + w.errors, 0);
  const med = (ws: Window[], key: keyof Window) => round(median(ws.map((w) => w[key])), 4);
  console.log(`  ${c.scenario} ${c.variant}: req/s ratio ${round(median(rps), 3)} (${range(rps).join('–')}), ${c.side} CPU per request ratio ${round(median(cpu), 3)} (${range(cpu).join('–')})`);
  return {
    group: 'same-process',
    scenario: c.scenario,
    variant: c.variant,
    status: errors > 0 ? 'failed' : 'ok',
    ...(errors > 0 ? { reason: `${errors} failed requests` } : {}),
    median: {
      baseRps: med(base, 'rps'),
      meshlessRps: med(mine, 'rps'),
      baseCpuUs: med(base, cpuKey),
      meshlessCpuUs: med(mine, cpuKey),
      windows,
      otherCoresBusy: med([...base, ...mine], 'otherCoresBusy'),
    },
    ratios: { rps: round(median(rps), 3), cpu: round(median(cpu), 3) },
    ratioRanges: { rps: range(rps), cpu: range(cpu) },
    rounds: base.map((b, i) => ({ window: i + 1, base: b, meshless: mine[i] })),
    details: { label: c.label, side: c.side, concurrency: c.concurrency, windowMs: ms },
  };
}

export async function runSameProcess(ctx: BenchContext): Promise<Row[]> {
  console.log('\n== same process: meshless and hand-written side by side in one process ==');
  // Every comparison's processes start together (idle until their turn), then run one at a time.
  const started = await Promise.all(comparisons.map((c) => start(ctx, c).catch((err: Error) => err)));
  const rows: Row[] = [];
  for (const [i, c] of comparisons.entries()) {
    const s = started[i]!;
    if (s instanceof Error) {
      rows.push(skippedRow('same-process', c.scenario, c.variant, s.message.split('\n').slice(0, 3).join(' | '), 'failed'));
      continue;
    }
    try {
      rows.push(await compare(ctx, c, s));
    } catch (err) {
      rows.push(skippedRow('same-process', c.scenario, c.variant, (err as Error).message.split('\n').slice(0, 3).join(' | '), 'failed'));
    } finally {
      await Promise.all([s.load.stop(), s.server.stop()]);
    }
  }
  return rows;
}
