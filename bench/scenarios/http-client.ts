// The meshless HTTP client alone: createAgent against a hand-configured undici Agent (`connect:
// { cert, key, ca }`), same certificates, same hand-written node:https server, each client in its
// own load process, in the shared interleaved rounds: keep-alive at 32 in flight, and a new
// connection per request at 8 in flight, with full handshakes (session caches off on both sides)
// and resumed ones. Ratios are medians of per-round ratios, with their spread.
import type { BenchContext } from '../lib/context.js';
import { startPairs, type PairSpec } from '../lib/pairs.js';
import { skippedRow, type Row } from '../lib/results.js';
import { runInterleaved } from '../lib/rounds.js';
import { round } from '../lib/stats.js';

const specs: PairSpec[] = [
  { id: 'agent', label: 'undici Agent with connect options', server: 'mtls', load: 'mtls' },
  { id: 'meshless', label: 'meshless createAgent', server: 'mtls', load: 'meshless' },
  { id: 'agent-full', label: 'undici Agent, session cache off', server: 'mtls', load: 'mtls-full' },
  { id: 'meshless-full', label: 'meshless createAgent, session cache off', server: 'mtls', load: 'meshless-full' },
];

export async function runHttpClient(ctx: BenchContext): Promise<Row[]> {
  console.log('\n== meshless HTTP client: createAgent vs undici Agent ==');
  const pairs = await startPairs(ctx, specs, false);
  const measureMs = Math.max(100, Math.round(ctx.options.measureMs / 2));
  // meshless against the Agent of the same session-cache setting, paired by round.
  const baselines = (id: string) => (id.startsWith('meshless') ? [id.replace('meshless', 'agent')] : []);
  const rows = [
    ...(await runInterleaved(ctx, 'http-client', pairs.slice(0, 2), [{ id: 'c32', concurrency: 32, path: '/', newConnection: false }], measureMs, baselines)),
    ...(await runInterleaved(ctx, 'http-client', pairs, [{ id: 'c8-new', concurrency: 8, path: '/', newConnection: true }], measureMs, baselines)),
  ];
  const pair = (scenario: string, variant: string, id: string, shape: string): Row => {
    const base = id.replace('meshless', 'agent');
    const [m, a] = [id, base].map((s) => rows.find((r) => r.scenario === s && r.variant === shape && r.median));
    if (!m || !a) return skippedRow('http-client', scenario, variant, rows.find((r) => (r.scenario === id || r.scenario === base) && r.variant === shape && r.reason)?.reason ?? 'no run completed', 'failed');
    const range = m.ratioRanges?.[`rps/${base}`];
    const row: Row = {
      group: 'http-client',
      scenario,
      variant,
      status: m.status === 'ok' && a.status === 'ok' ? 'ok' : 'failed',
      median: {
        meshlessPerSec: round(m.median?.rps, 4),
        baselinePerSec: round(a.median?.rps, 4),
        ratio: m.ratios?.[`rps/${base}`],
        ratioMin: range?.[0],
        ratioMax: range?.[1],
        meshlessCpuUsPerRequest: round((m.median?.clientCpuSecPer10k ?? NaN) * 100, 3),
        baselineCpuUsPerRequest: round((a.median?.clientCpuSecPer10k ?? NaN) * 100, 3),
        errors: [...m.rounds!, ...a.rounds!].reduce((sum, x) => sum + Number(x.errors), 0),
      },
      rounds: m.rounds!.map((x, i) => ({ round: x.round, meshlessRps: x.rps, baselineRps: a.rounds![i]?.rps })),
      ...(m.reason || a.reason ? { reason: m.reason ?? a.reason } : {}),
    };
    console.log(`  ${scenario} ${variant}: ${JSON.stringify(row.median)}`);
    return row;
  };
  return [pair('keep-alive', 'c32', 'meshless', 'c32'), pair('new-connections', 'full', 'meshless-full', 'c8-new'), pair('new-connections', 'resumed', 'meshless', 'c8-new')];
}
