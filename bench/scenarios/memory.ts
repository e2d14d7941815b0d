import { stopAll } from '../lib/children.js';
import type { BenchContext } from '../lib/context.js';
import { startLoad, startServer } from '../lib/pairs.js';
import { skippedRow, type Row } from '../lib/results.js';
import { round } from '../lib/stats.js';

const MB = 1024 * 1024;

/**
 * Memory of the meshless server and client processes after warm-up, then after many requests
 * with rotations on both sides in between (full: 1,000,000 requests and 1,000 rotations, bounded
 * by a time cap; the counts reached are reported). Heap is measured after forced GCs.
 */
export async function runMemory(ctx: BenchContext): Promise<Row[]> {
  console.log('\n== memory: meshless server and client ==');
  const { memoryRequests, memoryRotations, memoryCapMs } = ctx.options;
  const variant = `target ${memoryRequests.toLocaleString('en-US')} requests, ${memoryRotations.toLocaleString('en-US')} rotations, concurrency 8`;
  const capMs = Math.min(memoryCapMs, ctx.budget.left() - 20_000);
  if (capMs < 5_000) return ['server', 'client'].map((s) => skippedRow('memory', `meshless ${s}`, variant, 'time budget exhausted before this row ran'));
  try {
    const server = await startServer(ctx, 'meshless', 'memory-server', ['--expose-gc']);
    const load = await startLoad(ctx, 'meshless', server.port, 'memory-load', ['--expose-gc']);
    // Concurrency 8: every client rotation replaces the pooled connections (new handshakes), so a
    // smaller pool keeps 1,000 rotations affordable; requests/s is close to concurrency 32.
    const shape = { concurrency: 8, path: '/' };
    await load.request({ type: 'open' }, 10_000);
    // Warm-up: traffic and a few rotations, so that lazily built state exists before the baseline.
    const warmRequests = Math.min(50_000, Math.max(2_000, Math.round(memoryRequests / 20)));
    await load.request({ type: 'count', ...shape, count: warmRequests }, 120_000);
    for (let i = 0; i < 4; i++) {
      await Promise.all([server.child.request({ type: 'rotate' }, 10_000), load.request({ type: 'rotate' }, 10_000)]);
      await load.request({ type: 'count', ...shape, count: 500 }, 60_000);
    }
    const before = { server: await server.child.memory(), client: await load.memory() };

    const chunk = Math.max(1, Math.floor(memoryRequests / memoryRotations));
    const started = Date.now();
    let requests = 0;
    let errors = 0;
    let rotations = 0;
    let firstError: string | undefined;
    while ((requests < memoryRequests || rotations < memoryRotations) && Date.now() - started < capMs) {
      if (requests < memoryRequests) {
        const r = await load.request({ type: 'count', ...shape, count: Math.min(chunk, memoryRequests - requests) }, 60_000);
        requests += Number(r.requests);
        errors += Number(r.errors);
        if (r.firstError && !firstError) firstError = String(r.firstError);
      }
      if (rotations < memoryRotations) {
        await Promise.all([server.child.request({ type: 'rotate' }, 10_000), load.request({ type: 'rotate' }, 10_000)]);
        rotations++;
      }
    }
    const seconds = (Date.now() - started) / 1000;
    await load.request({ type: 'close' }, 10_000);
    const after = { server: await server.child.memory(), client: await load.memory() };
    const capped = requests < memoryRequests || rotations < memoryRotations;
    console.log(`  ${requests} requests (${errors} errors), ${rotations} rotations in ${seconds.toFixed(1)} s${capped ? ' (time cap reached)' : ''}`);
    return (['server', 'client'] as const).map((side) => {
      const b = before[side];
      const a = after[side];
      const row: Row = {
        group: 'memory',
        scenario: `meshless ${side}`,
        variant,
        status: errors > requests * 0.01 ? 'failed' : 'ok',
        median: {
          heapAfterWarmupMB: round(b.heapUsed / MB, 4),
          heapAfterMB: round(a.heapUsed / MB, 4),
          heapGrowthMB: round((a.heapUsed - b.heapUsed) / MB, 3),
          rssAfterWarmupMB: round(b.rss / MB, 4),
          rssAfterMB: round(a.rss / MB, 4),
          rssGrowthMB: round((a.rss - b.rss) / MB, 3),
          requests,
          rotations,
        },
        details: { errors, seconds, capped, ...(firstError ? { firstError } : {}) },
      };
      if (row.status === 'failed') row.reason = `${errors} failed requests: ${firstError}`;
      else if (capped) row.reason = `time cap of ${Math.round(capMs / 1000)} s reached: ${requests} requests, ${rotations} rotations`;
      console.log(`  ${side}: heap ${row.median!.heapAfterWarmupMB} → ${row.median!.heapAfterMB} MB, RSS ${row.median!.rssAfterWarmupMB} → ${row.median!.rssAfterMB} MB`);
      return row;
    });
  } catch (err) {
    const reason = (err as Error).message.split('\n').slice(0, 4).join(' | ');
    return ['server', 'client'].map((s) => skippedRow('memory', `meshless ${s}`, variant, reason, 'failed'));
  } finally {
    await stopAll();
  }
}
