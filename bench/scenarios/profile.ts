// Where the CPU goes per request: V8 CPU profiles of the server and the client, taken in-process
// around one measured window (after warm-up; bench/proc/profiler.ts), for the meshless pair and
// the leanest hand-written pair (node:https ← bare undici Pool), kept-alive and with a new
// connection per request. Profiling slows everything a little: these rows say where time goes,
// the keep-alive and new-connection rows say how fast it is.
import { stopAll } from '../lib/children.js';
import type { BenchContext } from '../lib/context.js';
import { startLoad, startServer, type LoadKind, type ServerKind } from '../lib/pairs.js';
import { skippedRow, type Row } from '../lib/results.js';
import { round } from '../lib/stats.js';

interface Shape {
  id: string;
  concurrency: number;
  path: string;
  newConnection: boolean;
}

interface Pair {
  id: string;
  server: ServerKind;
  load: LoadKind;
  shapes: Shape[];
}

export const profileShapes: Shape[] = [
  { id: 'c32', concurrency: 32, path: '/', newConnection: false },
  { id: 'c8-new', concurrency: 8, path: '/', newConnection: true },
];
/** gRPC: unary calls, 32 in flight on one HTTP/2 connection (as in the gRPC rows). */
const grpcShapes: Shape[] = [{ id: 'grpc-unary', concurrency: 32, path: '/', newConnection: false }];

const pairs: Pair[] = [
  { id: 'meshless', server: 'meshless', load: 'meshless', shapes: profileShapes },
  { id: 'pool', server: 'mtls', load: 'pool', shapes: profileShapes },
  { id: 'grpc meshless', server: 'grpc-meshless', load: 'grpc-meshless', shapes: grpcShapes },
  { id: 'grpc createSsl', server: 'grpc-createSsl', load: 'grpc-createSsl', shapes: grpcShapes },
];

interface Summary {
  cpuMs: number;
  busyMs: number;
  areasMs: Record<string, number>;
  topMs: { fn: string; ms: number }[];
  meshlessTopMs: { fn: string; ms: number }[];
}

/**
 * Per request: the process's CPU time, split in the proportions of the profile's non-idle samples
 * (samples are wall-clock, CPU time is not inflated by other processes on the machine).
 */
function perRequest(
  summary: Summary,
  requests: number,
): { usPerRequest: number; areas: Record<string, number>; top: { fn: string; usPerRequest: number }[]; meshlessTop: { fn: string; usPerRequest: number }[] } {
  const scale = summary.busyMs > 0 ? summary.cpuMs / summary.busyMs : 0;
  const us = (ms: number) => round((ms * scale * 1000) / requests, 3)!;
  const areas: Record<string, number> = {};
  for (const [k, v] of Object.entries(summary.areasMs)) if (k !== 'idle') areas[k] = us(v);
  return { usPerRequest: round((summary.cpuMs * 1000) / requests, 3)!, areas,
    top: summary.topMs.map((t) => ({ fn: t.fn, usPerRequest: us(t.ms) })),
    meshlessTop: summary.meshlessTopMs.map((t) => ({ fn: t.fn, usPerRequest: us(t.ms) })),
  };
}

export async function runProfile(ctx: BenchContext): Promise<Row[]> {
  console.log('\n== profile: CPU per request of server and client, in-process V8 profiles of one window ==');
  const rows: Row[] = [];
  const measureMs = ctx.options.mode === 'quick' ? 1_000 : 3_000;
  for (const pair of pairs) {
    const skip = (reason: string, status: 'skipped' | 'failed' = 'skipped') => {
      for (const shape of pair.shapes) for (const side of ['server', 'client']) rows.push(skippedRow('profile', `${pair.id} ${side}`, shape.id, reason, status));
    };
    if (ctx.budget.cannotFit(2 * (measureMs + ctx.options.warmupMs + 10_000))) {
      skip('time budget exhausted before this row ran');
      continue;
    }
    try {
      const server = await startServer(ctx, pair.server, `profile-server-${pair.id}`);
      const load = await startLoad(ctx, pair.load, server.port, `profile-load-${pair.id}`);
      for (const shape of pair.shapes) {
        const shapeArgs = { concurrency: shape.concurrency, path: shape.path, newConnection: shape.newConnection };
        await load.request({ type: 'open' }, 10_000);
        await load.request({ type: 'warm', ...shapeArgs, durationMs: ctx.options.warmupMs }, 60_000);
        await Promise.all([server.child.request({ type: 'profileStart' }, 10_000), load.request({ type: 'profileStart' }, 10_000)]);
        const m = await load.request({ type: 'measure', ...shapeArgs, durationMs: measureMs }, measureMs + 60_000);
        const [s, c] = await Promise.all([server.child.request({ type: 'profileStop', top: 12 }, 30_000), load.request({ type: 'profileStop', top: 12 }, 30_000)]);
        await load.request({ type: 'close' }, 10_000);
        const requests = Number(m.requests);
        for (const [side, summary] of [
          ['server', s],
          ['client', c],
        ] as const) {
          const pr = perRequest(summary as unknown as Summary, Math.max(1, requests));
          rows.push({
            group: 'profile',
            scenario: `${pair.id} ${side}`,
            variant: shape.id,
            status: requests > 0 ? 'ok' : 'failed',
            median: { usPerRequest: pr.usPerRequest, ...Object.fromEntries(Object.entries(pr.areas).map(([k, v]) => [`us.${k}`, v])) },
            details: { requests, top: pr.top, meshlessTop: pr.meshlessTop },
            ...(requests > 0 ? {} : { reason: `no request completed: ${String(m.firstError)}` }),
          });
          const library = pair.server.startsWith('grpc-') ? `grpc-js ${pr.areas['grpc-js'] ?? 0}` : `undici ${pr.areas.undici ?? 0}`;
          console.log(`  ${shape.id.padEnd(10)} ${`${pair.id} ${side}`.padEnd(22)} ${pr.usPerRequest} µs CPU per request (meshless ${pr.areas.meshless ?? 0} µs, ${library} µs); top: ${pr.top.slice(0, 3).map((t) => `${t.fn} ${t.usPerRequest} µs`).join(', ')}`);
        }
      }
    } catch (err) {
      skip((err as Error).message.split('\n').slice(0, 4).join(' | '), 'failed');
    } finally {
      await stopAll();
    }
  }
  return rows;
}
