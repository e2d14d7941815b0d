// A measured pair: a server process (HTTP or gRPC, maybe behind a sidecar pair) and a load-generator
// process aimed at it; scenarios list them as PairSpecs, lib/rounds.ts measures them.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startTs, type BenchChild } from './children.js';
import type { BenchContext } from './context.js';
import { startNginxPair, startStunnelPair } from './sidecars.js';

/** A measurable scenario: a load generator aimed at a server (maybe through sidecars). */
export interface Pair {
  id: string;
  load: BenchChild;
  /** The server process (asked for connection counts). */
  server: BenchChild;
  /** Every process on the serving path (server, sidecars): their CPU is counted. */
  serving: BenchChild[];
}

/** A scenario that could not be set up, and why. */
export interface Unavailable {
  id: string;
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

export interface PairSpec {
  id: string;
  label: string;
  server: ServerKind | 'stunnel' | 'nginx';
  load: LoadKind;
}

/** Scenarios that can share one server process (same server kind, no sidecars). */
type ServerPool = Map<string, Promise<{ child: BenchChild; port: number }>>;

async function setUp(ctx: BenchContext, spec: PairSpec, servers: ServerPool): Promise<Pair | Unavailable> {
  if (spec.server === 'stunnel' || spec.server === 'nginx') {
    const binary = spec.server === 'stunnel' ? ctx.tools.stunnel : ctx.tools.nginx;
    if (!binary) return { id: spec.id, status: 'skipped', reason: `${spec.server} is not installed and scripts/setup-system.sh could not install it` };
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
        return { id: spec.id, load, server: app.child, serving: [app.child, ...pair.children] };
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
  return { id: spec.id, load, server: server.child, serving: [server.child] };
}

/**
 * Starts every scenario's processes (in parallel). A scenario that cannot start is returned as
 * Unavailable with the reason; the others go on.
 */
export async function startPairs(ctx: BenchContext, all: PairSpec[], filtered = true): Promise<(Pair | Unavailable)[]> {
  const servers: ServerPool = new Map();
  const wanted = filtered ? ctx.options.scenarios : undefined;
  const specs = wanted ? all.filter((s) => wanted.has(s.id)) : all;
  return Promise.all(
    specs.map(async (spec): Promise<Pair | Unavailable> => {
      try {
        return await setUp(ctx, spec, servers);
      } catch (err) {
        return { id: spec.id, status: 'failed', reason: (err as Error).message.split('\n').slice(0, 4).join(' | ') };
      }
    }),
  );
}
