import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { benchDir } from './children.js';

export const groups = ['http', 'new-connections', 'per-request', 'memory', 'rotation', 'grpc', 'same-process', 'http-client', 'profile', 'footprint', 'scale'] as const;
export type Group = (typeof groups)[number];

/** Everything that sizes a run (parsed by parseOptions). Full defaults fit in < 10 minutes on 2 cores. */
export type BenchOptions = ReturnType<typeof parseOptions>;

const usage = `usage: npm run bench [-- options]
  --quick                 ~1-minute smoke run (1 round, short windows, small memory run)
  --rounds N              interleaved rounds per scenario (full 5, quick 1)
  --warmup-ms N           warm-up before each measured window
  --measure-ms N          measured window per scenario, variant and round
  --only a,b              groups: ${groups.join(', ')}
  --scenarios a,b         HTTP scenarios only: plaintext, pool, pool-full, mtls, mtls-full, meshless, meshless-permissive, meshless-server, stunnel, nginx
  --memory-requests N     requests of the memory run (full 1,000,000)
  --memory-rotations N    rotations of the memory run, spread over the requests (full 1,000)
  --rotations N           certificate swaps (and Workload API pushes) of the rotation rows (full 100, quick 10)
  --scale-connections N   idle keep-alive connections of the scale rows (full 10,000; capped by ulimit -n)
  --scale-origins N       origins one client talks to in the scale rows (full 1,000)
  --out FILE              results JSON (full: bench/results/latest.json; quick: quick.json; --only memory:
                          memory.json; --only scale: scale.json; other partial runs: partial.json)
  --docs FILE | --no-docs markdown report (complete full run: docs/benchmarks.md; otherwise none)
  --verbose               show the children's output
  --render                only rewrite docs/benchmarks.md from bench/results/latest.json (+ memory.json)
  --cpu-prof              write a V8 CPU profile of every server and load generator
                          into bench/results/profiles (or --cpu-prof-dir DIR); open in Chrome DevTools`;

function int(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} takes a number (got ${JSON.stringify(value)})\n${usage}`);
  return n;
}

function partial(only: Set<Group>, filtered: boolean): boolean {
  return filtered || only.size < groups.length;
}

/**
 * latest.json for a complete full run, quick.json for quick runs, memory.json for `--only memory`
 * (the full 1,000,000-request run, shown in the report next to the capped one), partial.json
 * otherwise: a partial run never overwrites the complete results.
 */
function defaultOutName(quick: boolean, only: Set<Group>, filtered: boolean): string {
  if (quick) return 'quick.json';
  if (only.size === 1 && only.has('memory')) return 'memory.json';
  if (only.size === 1 && only.has('scale')) return 'scale.json';
  return partial(only, filtered) ? 'partial.json' : 'latest.json';
}

/** Parses `npm run bench -- …` arguments. */
export function parseOptions(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean' },
      rounds: { type: 'string' },
      'warmup-ms': { type: 'string' },
      'measure-ms': { type: 'string' },
      only: { type: 'string' },
      scenarios: { type: 'string' },
      out: { type: 'string' },
      docs: { type: 'string' },
      'no-docs': { type: 'boolean' },
      verbose: { type: 'boolean' },
      'cpu-prof': { type: 'boolean' },
      render: { type: 'boolean' },
      'memory-requests': { type: 'string' },
      'memory-rotations': { type: 'string' },
      rotations: { type: 'string' },
      'scale-connections': { type: 'string' },
      'scale-origins': { type: 'string' },
      'cpu-prof-dir': { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    console.log(usage);
    process.exit(0);
  }
  const quick = values.quick === true;
  const measureMs = int(values['measure-ms'], quick ? 1000 : 1500, 'measure-ms');
  const only = new Set<Group>();
  for (const g of (values.only ?? groups.join(',')).split(',').map((s) => s.trim()).filter(Boolean)) {
    if (!(groups as readonly string[]).includes(g)) throw new Error(`--only: unknown group ${JSON.stringify(g)}\n${usage}`);
    only.add(g as Group);
  }
  const root = join(benchDir, '..');
  return {
    mode: quick ? ('quick' as const) : ('full' as const),
    rounds: Math.max(1, int(values.rounds, quick ? 1 : 5, 'rounds')),
    warmupMs: int(values['warmup-ms'], quick ? 200 : 300, 'warmup-ms'),
    measureMs,
    newConnectionMs: measureMs,
    memoryRequests: int(values['memory-requests'], quick ? Math.max(2000, Math.round(measureMs * 20)) : 1_000_000, 'memory-requests'),
    memoryRotations: Math.max(1, int(values['memory-rotations'], quick ? 20 : 1000, 'memory-rotations')),
    // The memory run gets whatever is left of the budget when it runs alone (--only memory).
    memoryCapMs: quick ? 20_000 : only.size === 1 && only.has('memory') ? 8 * 60_000 : 170_000,
    rotations: Math.max(1, int(values.rotations, quick ? 10 : 100, 'rotations')),
    microBatches: quick ? 5 : 15,
    // Idle keep-alive connections held open, and origins one client talks to, in the scale rows.
    scaleConnections: Math.max(10, int(values['scale-connections'], quick ? 100 : 10_000, 'scale-connections')),
    scaleOrigins: Math.max(2, int(values['scale-origins'], quick ? 20 : 1_000, 'scale-origins')),
    // The whole run stops starting new work after this (rows left are skipped, saying so).
    budgetMs: quick ? 4 * 60_000 : 9 * 60_000 + 45_000,
    only,
    // HTTP and new-connection scenario ids to run (all when undefined).
    scenarios: values.scenarios ? new Set(values.scenarios.split(',').map((x) => x.trim())) : undefined,
    out: values.out ?? join(benchDir, 'results', defaultOutName(quick, only, values.scenarios !== undefined)),
    // Only a complete full run rewrites docs/benchmarks.md (unless --docs says where).
    docs: values['no-docs'] ? undefined : (values.docs ?? (quick || partial(only, values.scenarios !== undefined) ? undefined : join(root, 'docs', 'benchmarks.md'))),
    verbose: values.verbose === true,
    renderOnly: values.render === true,
    // Directory for V8 CPU profiles of every child (`--cpu-prof`), or undefined.
    cpuProfDir: values['cpu-prof'] || values['cpu-prof-dir'] ? (values['cpu-prof-dir'] ?? join(benchDir, 'results', 'profiles')) : undefined,
  };
}
