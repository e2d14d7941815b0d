import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startTs, type BenchChild } from './children.js';
import type { BenchContext } from './context.js';
import { machineBusySeconds, treeCpuSeconds } from './cpu.js';
import { startNginxPair, startStunnelPair } from './sidecars.js';

/** A measurable HTTP scenario: a load generator aimed at a server (maybe through sidecars). */
export interface HttpTarget {
  id: string;
  label: string;
  load: BenchChild;
  /** The HTTP server process (asked for connection counts). */
  server: BenchChild;
  /** Every process on the serving path (server, sidecars): their CPU is counted. */
  serving: BenchChild[];
}

/** A scenario that could not be set up, and why. */
export interface Unavailable {
  id: string;
  label: string;
  status: 'skipped' | 'failed';
  reason: string;
}

export type ServerKind = 'plaintext' | 'mtls' | 'meshless' | 'meshless-permissive' | GrpcKind;
export type LoadKind = 'plaintext' | 'sidecar' | 'mtls' | 'mtls-full' | 'pool' | 'pool-full' | 'meshless' | 'meshless-full' | GrpcKind;
type GrpcKind = 'grpc-insecure' | 'grpc-createSsl' | 'grpc-meshless';

/** Starts a server process of `kind` (HTTP, or gRPC for the grpc- kinds) and waits until it listens. */
export async function startServer(ctx: BenchContext, kind: ServerKind, name: string, nodeFlags: string[] = [], extraArgs: string[] = []): Promise<{ child: BenchChild; port: number }> {
  const file = kind.startsWith('grpc-') ? 'proc/grpc-server.ts' : 'proc/http-server.ts';
  const { child, ready } = await startTs(name, file, ['--kind', kind, '--certs', ctx.certs.dir, ...extraArgs], { verbose: ctx.options.verbose, nodeFlags });
  return { child, port: Number(ready.port) };
}

/** Starts a load-generator process of `kind` aimed at 127.0.0.1:port. */
export async function startLoad(ctx: BenchContext, kind: LoadKind, port: number, name: string, nodeFlags: string[] = []): Promise<BenchChild> {
  return (await startTs(name, 'proc/load.ts', ['--kind', kind, '--port', String(port), '--certs', ctx.certs.dir], { verbose: ctx.options.verbose, nodeFlags })).child;
}

export interface TargetSpec {
  id: string;
  label: string;
  server: ServerKind | 'stunnel' | 'nginx';
  load: LoadKind;
}

/** Scenarios that can share one server process (same server kind, no sidecars). */
type ServerPool = Map<string, Promise<{ child: BenchChild; port: number }>>;

async function setUp(ctx: BenchContext, spec: TargetSpec, servers: ServerPool): Promise<HttpTarget> {
  if (spec.server === 'stunnel' || spec.server === 'nginx') {
    const binary = spec.server === 'stunnel' ? ctx.tools.stunnel : ctx.tools.nginx;
    if (!binary) throw new Unavailability('skipped', `${spec.server} is not installed and scripts/setup-system.sh could not install it`);
    const app = await startServer(ctx, 'plaintext', `app-behind-${spec.server}`);
    try {
      const dir = join(ctx.workDir, spec.server);
      mkdirSync(dir, { recursive: true });
      const start = spec.server === 'stunnel' ? startStunnelPair : startNginxPair;
      // Sidecars listen on ports picked a moment before: another process may take one
      // meanwhile, so try again (fresh ports) before giving up.
      let pair: Awaited<ReturnType<typeof start>> | undefined;
      for (let attempt = 1; !pair; attempt++) {
        try {
          pair = await start(binary, dir, ctx.certs, app.port, ctx.options.verbose);
        } catch (err) {
          if (attempt >= 3) throw err;
        }
      }
      try {
        const load = await startLoad(ctx, 'sidecar', pair.port, `load-${spec.id}`);
        return { id: spec.id, label: spec.label, load, server: app.child, serving: [app.child, ...pair.children] };
      } catch (err) {
        await Promise.all(pair.children.map((c) => c.stop()));
        throw err;
      }
    } catch (err) {
      await app.child.stop();
      throw err;
    }
  }
  let shared = servers.get(spec.server);
  if (!shared) {
    shared = startServer(ctx, spec.server, `server-${spec.server}`);
    servers.set(spec.server, shared);
  }
  const server = await shared;
  const load = await startLoad(ctx, spec.load, server.port, `load-${spec.id}`);
  return { id: spec.id, label: spec.label, load, server: server.child, serving: [server.child] };
}

class Unavailability extends Error {
  constructor(
    readonly status: 'skipped' | 'failed',
    message: string,
  ) {
    super(message);
  }
}

/**
 * Starts every scenario's processes (in parallel). A scenario that cannot start is returned as
 * Unavailable with the reason; the others go on.
 */
export async function startTargets(ctx: BenchContext, all: TargetSpec[], filtered = true): Promise<(HttpTarget | Unavailable)[]> {
  const servers: ServerPool = new Map();
  const wanted = filtered ? ctx.options.scenarios : undefined;
  const specs = wanted ? all.filter((s) => wanted.has(s.id)) : all;
  return Promise.all(
    specs.map(async (spec): Promise<HttpTarget | Unavailable> => {
      try {
        return await setUp(ctx, spec, servers);
      } catch (err) {
        const status = err instanceof Unavailability ? err.status : 'failed';
        return { id: spec.id, label: spec.label, status, reason: (err as Error).message.split('\n').slice(0, 4).join(' | ') };
      }
    }),
  );
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
export async function measureOnce(target: HttpTarget, shape: LoadShape, warmupMs: number, measureMs: number, round: number): Promise<RunResult> {
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
