// How cost grows with the work:
// - idle: N keep-alive mTLS connections held open to one server (hand-written node:https, then
//   meshless createServer): server RSS and heap per connection after GC, time and server CPU to
//   accept them (resumed sessions, as a pool of clients would);
// - rotation: with those N connections still open to the meshless server, rotations (own
//   certificate, and every other one a trust-bundle change that still trusts every peer) while
//   requests run on 32 of them: time the server spends swapping, rename-free "first new
//   connection served with the new certificate", event-loop stall, CPU per rotation, failed
//   requests and connections closed (none should be: trust never dropped a peer);
// - origins: one client talking to M origins (servers on 127.1.x.y): meshless createAgent
//   against a hand-written undici Agent, memory per live origin and after the servers closed every connection.
// Every wait is bounded; the counts shrink to fit the file-descriptor limit and the time budget.
import { readFileSync } from 'node:fs';
import { waitFor } from '@meshless/testing';
import { startTs, stopAll, type BenchChild } from '../lib/children.js';
import type { BenchContext } from '../lib/context.js';
import { treeCpuSeconds } from '../lib/cpu.js';
import { startServer } from '../lib/pairs.js';
import { skippedRow, type Row } from '../lib/results.js';
import { quantileSorted, round } from '../lib/stats.js';

const MB = 1024 * 1024;

/** The soft limit on open files of this process (children inherit it), or undefined. */
function fdLimit(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line?.split(/\s{2,}/)[1];
    return soft === undefined || soft === 'unlimited' ? undefined : Number(soft);
  } catch {
    return undefined;
  }
}

const start = (ctx: BenchContext, name: string, file: string, args: string[]) => startTs(name, file, args, { verbose: ctx.options.verbose, nodeFlags: ['--expose-gc'], readyMs: 120_000 });
type Memory = Awaited<ReturnType<BenchChild['memory']>>;

/** The idle-connection row of one server kind, and the rotation row for meshless. */
async function idleAndRotation(ctx: BenchContext, kind: 'mtls' | 'meshless', count: number, rotations: number): Promise<Row[]> {
  const variant = `${count.toLocaleString('en-US')} idle keep-alive connections`;
  const server = await startServer(ctx, kind, `scale-server-${kind}`, ['--expose-gc'], ['--keep-alive-ms', '0']);
  const client = await start(ctx, `scale-client-${kind}`, 'proc/idle-client.ts', ['--port', String(server.port), '--certs', ctx.certs.dir]);
  const rows: Row[] = [];
  try {
    const openConnections = async () => Number((await server.child.request({ type: 'stats' }, 10_000)).openConnections);
    // Warm-up: lazily built state (TLS, HTTP parser, meshless registries) exists before the baseline.
    await client.child.request({ type: 'open', count: 50, concurrency: 8 }, 120_000);
    await client.child.request({ type: 'close' }, 10_000);
    await waitFor(async () => (await openConnections()) === 0, 30_000, 'the warm-up connections to close', 50);
    const before = await server.child.memory();
    const cpu0 = treeCpuSeconds([server.child.pid]);
    const opened = await client.child.request({ type: 'open', count, concurrency: 64 }, Math.max(120_000, count * 50));
    const cpu1 = treeCpuSeconds([server.child.pid]);
    const n = Number(opened.opened);
    await waitFor(async () => (await openConnections()) >= n, 30_000, 'the server to see every connection', 50);
    const after = await server.child.memory();
    const failed = Number(opened.failed);
    const acceptSeconds = Number(opened.elapsedMs) / 1000;
    const row: Row = {
      group: 'scale',
      scenario: kind === 'meshless' ? 'idle meshless createServer' : 'idle hand-written node:https',
      variant,
      status: n > 0 && failed <= count * 0.01 ? 'ok' : 'failed',
      median: {
        connections: n,
        rssPerConnectionKB: round((after.rss - before.rss) / n / 1024, 3),
        heapPerConnectionKB: round((after.heapUsed - before.heapUsed) / n / 1024, 3),
        rssBeforeMB: round(before.rss / MB, 4),
        rssAfterMB: round(after.rss / MB, 4),
        acceptSeconds: round(acceptSeconds, 3),
        acceptedPerSecond: round(n / acceptSeconds, 4),
        serverCpuMsPerConnection: round(((cpu1 - cpu0) * 1000) / n, 3),
        resumedShare: round(Number(opened.resumed) / Math.max(1, n), 3),
        failed,
      },
      details: { firstError: opened.firstError, clientCpuSeconds: opened.clientCpuSeconds },
    };
    if (row.status === 'failed') row.reason = `${failed} connections failed: ${String(opened.firstError)}`;
    rows.push(row);
    console.log(
      `  ${kind.padEnd(8)} ${n} connections in ${acceptSeconds.toFixed(1)} s: RSS ${row.median!.rssPerConnectionKB} KB, heap ${row.median!.heapPerConnectionKB} KB per connection, server CPU ${row.median!.serverCpuMsPerConnection} ms per connection${failed ? `, ${failed} failed (${String(opened.firstError)})` : ''}`,
    );
    if (kind === 'meshless' && n > 0) rows.push(await rotationUnderLoad(ctx, server.child, client.child, n, rotations));
  } finally {
    await client.child.request({ type: 'close' }, 30_000).catch(() => undefined);
    await Promise.all([client.child.stop(), server.child.stop()]);
  }
  return rows;
}

const TRAFFIC = 32;

async function rotationUnderLoad(ctx: BenchContext, server: BenchChild, client: BenchChild, live: number, rotations: number): Promise<Row> {
  const variant = `${rotations} rotations with ${live.toLocaleString('en-US')} live connections, requests on ${TRAFFIC} of them`;
  const windowMs = ctx.options.mode === 'quick' ? 1_500 : 4_000;
  // Baseline: the same traffic without rotations, for the server's CPU per second.
  let cpu0 = treeCpuSeconds([server.pid]);
  let t0 = performance.now();
  const quiet = await client.request({ type: 'traffic', durationMs: windowMs, connections: TRAFFIC }, windowMs + 60_000);
  const quietCpuPerSecond = (treeCpuSeconds([server.pid]) - cpu0) / ((performance.now() - t0) / 1000);
  const state0 = await client.request({ type: 'state' }, 10_000);
  await server.request({ type: 'loopDelay', reset: true }, 10_000);

  cpu0 = treeCpuSeconds([server.pid]);
  t0 = performance.now();
  const traffic = client.request({ type: 'traffic', durationMs: windowMs, connections: TRAFFIC }, windowMs + 60_000);
  const swaps: number[] = [];
  const served: number[] = [];
  let missed = 0;
  for (let i = 0; i < rotations && performance.now() - t0 < windowMs - 200; i++) {
    const start = performance.now();
    // Every other rotation also changes the trust bundle (all peers still verify): the server
    // re-checks every live connection then.
    const r = await server.request({ type: 'rotate', trustChange: i % 2 === 0 }, 30_000);
    swaps.push(Number(r.swapMs));
    const want = String(r.serial).replace(/^0+/, '').toUpperCase();
    let seen = false;
    while (!seen && performance.now() - start < 5_000) {
      const p = await client.request({ type: 'probe' }, 30_000);
      seen = String(p.serial).replace(/^0+/, '').toUpperCase() === want;
    }
    if (seen) served.push(performance.now() - start);
    else missed++;
  }
  const result = await traffic;
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = treeCpuSeconds([server.pid]) - cpu0;
  const loop = await server.request({ type: 'loopDelay', reset: true }, 10_000);
  const reviews = (loop.reviews ?? []) as { maxSliceMs: number; maxSliceCpuMs?: number; busyMs: number; durationMs: number; slices: number }[];
  const reviewMax = (f: (r: (typeof reviews)[0]) => number): number | undefined => (reviews.length > 0 ? round(Math.max(...reviews.map(f)), 3) : undefined);
  const state1 = await client.request({ type: 'state' }, 10_000);
  const done = swaps.length;
  const sortedSwaps = [...swaps].sort((a, b) => a - b);
  const sortedServed = [...served].sort((a, b) => a - b);
  const closed = Number(state1.closedSinceOpen) - Number(state0.closedSinceOpen);
  const failed = Number(result.failed) + Number(quiet.failed);
  const row: Row = {
    group: 'scale',
    scenario: 'rotation with live connections',
    variant,
    status: failed === 0 && closed === 0 ? 'ok' : 'failed',
    median: {
      rotations: done,
      liveConnections: live,
      swapP50Ms: round(quantileSorted(sortedSwaps, 0.5), 3),
      swapP99Ms: round(quantileSorted(sortedSwaps, 0.99), 3),
      servedP50Ms: round(quantileSorted(sortedServed, 0.5), 3),
      servedP99Ms: round(quantileSorted(sortedServed, 0.99), 3),
      loopDelayMaxMs: round(Number(loop.maxMs), 3),
      // The live-connection review after a trust change (sliced): longest slice, synchronous total, duration.
      reviewMaxSliceMs: reviewMax((r) => r.maxSliceMs),
      // The same slice's CPU time: its work without the time a loaded machine did not schedule the process.
      reviewMaxSliceCpuMs: reviewMax((r) => r.maxSliceCpuMs ?? NaN),
      reviewBusyMaxMs: reviewMax((r) => r.busyMs),
      reviewDurationMaxMs: reviewMax((r) => r.durationMs),
      cpuMsPerRotation: done > 0 ? round(((cpu - quietCpuPerSecond * elapsed) * 1000) / done, 3) : undefined,
      requests: Number(result.requests),
      failedRequests: failed,
      connectionsClosed: closed,
      missed,
    },
    details: { swaps, served, trustChanges: Math.ceil(done / 2), quietRequests: quiet.requests, firstError: result.firstError ?? quiet.firstError },
  };
  if (row.status === 'failed') row.reason = `${failed} failed requests (${String(result.firstError ?? quiet.firstError)}), ${closed} connections closed during the rotations`;
  console.log(
    `  rotation: ${done} swaps with ${live} live connections: server swap p50 ${row.median!.swapP50Ms} / p99 ${row.median!.swapP99Ms} ms, new cert served p99 ${row.median!.servedP99Ms} ms, loop stall max ${row.median!.loopDelayMaxMs} ms, review of live connections: longest slice ${row.median!.reviewMaxSliceMs} ms (CPU ${row.median!.reviewMaxSliceCpuMs} ms), ${row.median!.reviewBusyMaxMs} ms busy over ${row.median!.reviewDurationMaxMs} ms (max), ${row.median!.cpuMsPerRotation} ms CPU per rotation, ${row.median!.requests} requests, ${failed} failed, ${closed} connections closed`,
  );
  return row;
}

async function manyOrigins(ctx: BenchContext, count: number): Promise<Row[]> {
  const variant = `one client, ${count.toLocaleString('en-US')} origins (servers on 127.1.x.y)`;
  const servers = await start(ctx, 'scale-origins', 'proc/multi-server.ts', ['--count', String(count), '--certs', ctx.certs.dir]);
  const rows: Row[] = [];
  try {
    const origins = (await servers.child.request({ type: 'origins' }, 30_000)).origins as string[];
    for (const kind of ['agent', 'meshless'] as const) {
      const scenario = kind === 'meshless' ? 'origins meshless createAgent' : 'origins hand-written undici Agent';
      const client = await start(ctx, `scale-origins-${kind}`, 'proc/origins-client.ts', ['--kind', kind, '--certs', ctx.certs.dir]);
      try {
        const pools = async () => Number((await client.child.request({ type: 'pools' }, 10_000)).pools);
        const drop = async (what: string) => {
          await servers.child.request({ type: 'drop' }, 30_000);
          await waitFor(async () => (await pools()) === 0, 60_000, what, 50);
        };
        // Warm-up on a few origins, then the servers close those connections.
        await client.child.request({ type: 'pass', origins: origins.slice(0, 20), concurrency: 4 }, 60_000);
        await drop('the warm-up pools to go');
        const base = await client.child.memory();
        const passes: { live: Memory; idle: Memory; seconds: number; failed: number; pools: number; firstError?: string }[] = [];
        for (let p = 0; p < 2; p++) {
          const r = await client.child.request({ type: 'pass', origins, concurrency: 16 }, Math.max(120_000, count * 200));
          const livePools = await pools();
          const live = await client.child.memory();
          await drop('the pools to go once the servers closed their connections');
          const idle = await client.child.memory();
          passes.push({ live, idle, seconds: Number(r.elapsedMs) / 1000, failed: Number(r.failed), pools: livePools, ...(r.firstError ? { firstError: String(r.firstError) } : {}) });
        }
        const [p1, p2] = passes as [(typeof passes)[0], (typeof passes)[0]];
        const failed = p1.failed + p2.failed;
        const row: Row = {
          group: 'scale',
          scenario,
          variant,
          status: failed === 0 ? 'ok' : 'failed',
          median: {
            origins: count,
            poolsLive: p1.pools,
            rssPerLiveOriginKB: round((p1.live.rss - base.rss) / count / 1024, 3),
            heapPerLiveOriginKB: round((p1.live.heapUsed - base.heapUsed) / count / 1024, 3),
            heapAfterIdleOverBaseMB: round((p1.idle.heapUsed - base.heapUsed) / MB, 3),
            heapAfterSecondPassIdleOverBaseMB: round((p2.idle.heapUsed - base.heapUsed) / MB, 3),
            rssAfterSecondPassIdleOverBaseMB: round((p2.idle.rss - base.rss) / MB, 3),
            firstPassSeconds: round(p1.seconds, 3),
            secondPassSeconds: round(p2.seconds, 3),
            failed,
          },
          details: { passes: passes.map((p) => ({ ...p, live: { ...p.live }, idle: { ...p.idle } })) },
        };
        if (failed) row.reason = `${failed} failed requests: ${p1.firstError ?? p2.firstError}`;
        rows.push(row);
        console.log(
          `  ${kind.padEnd(8)} ${count} origins: ${row.median!.rssPerLiveOriginKB} KB RSS / ${row.median!.heapPerLiveOriginKB} KB heap per live origin; heap after the pools went +${row.median!.heapAfterIdleOverBaseMB} MB, after a second pass +${row.median!.heapAfterSecondPassIdleOverBaseMB} MB${failed ? `; ${failed} failed` : ''}`,
        );
      } finally {
        await client.child.stop();
      }
    }
  } finally {
    await servers.child.stop();
  }
  return rows;
}

export async function runScale(ctx: BenchContext): Promise<Row[]> {
  const quick = ctx.options.mode === 'quick';
  let connections = ctx.options.scaleConnections;
  let origins = ctx.options.scaleOrigins;
  const limit = fdLimit();
  const notes: string[] = [];
  // Each side holds one descriptor per connection (the server in one process, the client in another).
  if (limit !== undefined && connections > limit - 1_000) {
    notes.push(`connections capped at ${limit - 1_000} by the open-file limit (${limit}; raise it with ulimit -n)`);
    connections = Math.max(10, limit - 1_000);
  }
  if (limit !== undefined && origins * 2 > limit - 1_000) {
    origins = Math.max(10, Math.floor((limit - 1_000) / 2));
    notes.push(`origins capped at ${origins} by the open-file limit (${limit})`);
  }
  console.log(`\n== scale: ${connections.toLocaleString('en-US')} idle connections, rotation under them, ${origins.toLocaleString('en-US')} origins (open-file limit ${limit ?? 'unknown'}) ==`);
  for (const n of notes) console.log(`  ${n}`);
  if (notes.length) ctx.notes.push(`scale: ${notes.join('; ')}`);
  const rows: Row[] = [];
  // Each part: the rows it makes (scenario, variant), how to run it, the time it needs.
  const idle = `${connections.toLocaleString('en-US')} idle keep-alive connections`;
  const parts: [[string, string][], () => Promise<Row[]>, number][] = [
    [[['idle hand-written node:https', idle]], () => idleAndRotation(ctx, 'mtls', connections, 0), quick ? 20_000 : 120_000],
    [
      [
        ['idle meshless createServer', idle],
        ['rotation with live connections', `rotations with ${connections.toLocaleString('en-US')} live connections`],
      ],
      () => idleAndRotation(ctx, 'meshless', connections, quick ? 4 : 20),
      quick ? 25_000 : 150_000,
    ],
    [
      [
        ['origins hand-written undici Agent', `one client, ${origins} origins`],
        ['origins meshless createAgent', `one client, ${origins} origins`],
      ],
      () => manyOrigins(ctx, origins),
      quick ? 20_000 : 90_000,
    ],
  ];
  // All or nothing: the idle rows only mean something side by side.
  const allMs = parts.reduce((sum, p) => sum + p[2], 0);
  const fits = !ctx.budget.cannotFit(allMs);
  for (const [made, run] of parts) {
    if (!fits) {
      for (const [scenario, variant] of made) {
        rows.push(skippedRow('scale', scenario, variant, `time budget exhausted before this row ran (the scale rows need ${Math.round(allMs / 1000)} s together): run \`npm run bench -- --only scale\``));
      }
      continue;
    }
    try {
      rows.push(...(await run()));
    } catch (err) {
      const reason = (err as Error).message.split('\n').slice(0, 4).join(' | ');
      for (const [scenario, variant] of made) if (!rows.some((r) => r.scenario === scenario)) rows.push(skippedRow('scale', scenario, variant, reason, 'failed'));
    } finally {
      await stopAll();
    }
  }
  return rows;
}
