// Scenarios that run a function of a bench/ module in a child process: the per-request
// microbench (ours), and the rotation, gRPC and HTTP-client benches other engineers write.
import type { BenchContext } from '../lib/context.js';
import { runModule } from '../lib/module-run.js';
import { ROTATION_SERVED, ROTATION_UPDATE, WORKLOAD_API_SERVED, WORKLOAD_API_UPDATE } from '../lib/report.js';
import { skippedRow, type Row } from '../lib/results.js';
import { round } from '../lib/stats.js';
import type { PerRequestResult } from './per-request.js';

export async function runPerRequest(ctx: BenchContext): Promise<Row[]> {
  console.log('\n== per request: identity + allow-list decision ==');
  const outcome = await runModule(ctx, 'scenarios/per-request.ts', 'runPerRequestBench', { quick: ctx.options.mode === 'quick', batches: ctx.options.microBatches }, 120_000);
  if (!outcome.ok) return [skippedRow('per-request', 'per-request', 'ns/op', outcome.reason, outcome.status)];
  const result = outcome.result as PerRequestResult;
  for (const r of result.rows) console.log(`  ${r.nsPerOp.toFixed(0).padStart(8)} ns/op  ${r.label}`);
  console.log(`  10,000 rules ÷ 10 rules = ${result.ratio10kTo10.toFixed(2)}×`);
  return result.rows.map((r) => ({
    group: 'per-request',
    scenario: r.id,
    variant: 'ns/op',
    status: 'ok',
    median: { nsPerOp: round(r.nsPerOp, 3), minNsPerOp: round(r.minNsPerOp, 3) },
    details: { label: r.label, ...(r.id === 'allow-10k' ? { ratio10kTo10: round(result.ratio10kTo10, 3) } : {}) },
  }));
}

/**
 * Two rows: `rotation` is `..data` rename → first new connection served with the new certificate
 * (what the "rotation p99 ≤ 100 ms" target reads: bench/lib/targets.ts takes the row named
 * `rotation`); `rotation-update` is rename → the file source's `update` event.
 */
export async function runRotation(ctx: BenchContext): Promise<Row[]> {
  console.log('\n== rotation (bench/rotation.ts) ==');
  const rotations = ctx.options.rotations;
  const outcome = await runModule(ctx, 'rotation.ts', 'runRotationBench', { rotations }, Math.max(60_000, rotations * 3_000));
  if (!outcome.ok) return [skippedRow('rotation', 'rotation', `${rotations} swaps`, outcome.reason, outcome.status)];
  const result = (outcome.result ?? {}) as Record<string, unknown>;
  const served = (result.served ?? {}) as Record<string, unknown>;
  const { served: _served, ...update } = result;
  console.log(`  ${ROTATION_SERVED}: p50 ${String(served.p50Ms)} ms  p99 ${String(served.p99Ms)} ms over ${rotations} swaps`);
  console.log(`  ${ROTATION_UPDATE}: p50 ${String(update.p50Ms)} ms  p99 ${String(update.p99Ms)} ms over ${rotations} swaps`);
  return [
    numericRow('rotation', 'rotation', `${rotations} swaps: ${ROTATION_SERVED}`, served, served),
    numericRow('rotation', 'rotation-update', `${rotations} swaps: ${ROTATION_UPDATE}`, update, update),
    ...(await runWorkloadApiRotation(ctx)),
  ];
}

/** The same two figures through the SPIFFE Workload API: push of a new SVID → served, → update (bench/rotation-workload-api.ts). */
async function runWorkloadApiRotation(ctx: BenchContext): Promise<Row[]> {
  const rotations = ctx.options.rotations;
  const outcome = await runModule(ctx, 'rotation-workload-api.ts', 'runWorkloadApiRotationBench', { rotations }, Math.max(60_000, rotations * 3_000));
  if (!outcome.ok) return [skippedRow('rotation', 'workload-api', `${rotations} pushes`, outcome.reason, outcome.status)];
  const result = (outcome.result ?? {}) as Record<string, unknown>;
  const served = (result.served ?? {}) as Record<string, unknown>;
  const { served: _served, ...update } = result;
  console.log(`  ${WORKLOAD_API_SERVED}: p50 ${String(served.p50Ms)} ms  p99 ${String(served.p99Ms)} ms over ${rotations} pushes`);
  console.log(`  ${WORKLOAD_API_UPDATE}: p50 ${String(update.p50Ms)} ms  p99 ${String(update.p99Ms)} ms over ${rotations} pushes`);
  return [
    numericRow('rotation', 'workload-api', `${rotations} pushes: ${WORKLOAD_API_SERVED}`, served, served),
    numericRow('rotation', 'workload-api-update', `${rotations} pushes: ${WORKLOAD_API_UPDATE}`, update, update),
  ];
}

/** The numeric fields of an object, as a row's medians. */
function numericRow(group: Row['group'], scenario: string, variant: string, fields: Record<string, unknown>, details: unknown): Row {
  const median: Record<string, number | undefined> = {};
  for (const [k, v] of Object.entries(fields)) if (typeof v === 'number' && Number.isFinite(v)) median[k] = round(v, 4);
  if (Object.keys(median).length === 0) {
    return { ...skippedRow(group, scenario, variant, `the module returned no figures: ${JSON.stringify(details).slice(0, 200)}`, 'failed'), details };
  }
  return { group, scenario, variant, status: 'ok', median, details };
}
