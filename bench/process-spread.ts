// How much of a gap between two rows is the processes themselves: measures pairs of server and
// load-generator processes, fresh ones for every "generation", in interleaved rounds, and prints
// each round's ratio of every pair to the first one, so that the spread between process
// generations can be read next to the gap. `npm run bench` keeps one process per scenario for a
// whole run: a gap smaller than this spread can be where its processes happened to land.
//
//   cd bench && node --conditions=source --import tsx process-spread.ts [--generations 4] [--rounds 3]
//     [--concurrency 1] [--pairs mtls:pool,meshless:meshless,meshless:pool,mtls:pool#again]
// Pairs are server-kind:load-kind (bench/lib/pairs.ts; grpc-* kinds start the gRPC server); a
// `#tag` suffix runs a pair once more, in processes of its own.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { mintCertificates } from './lib/certs.js';
import { startTs, stopAll } from './lib/children.js';
import type { Pair } from './lib/pairs.js';
import { measureOnce, type RunResult } from './lib/rounds.js';
import { median, ratioInterval } from './lib/stats.js';

const { values } = parseArgs({
  options: {
    generations: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '1' },
    pairs: { type: 'string', default: 'mtls:pool,meshless:meshless,meshless:pool' },
  },
});
const generations = Number(values.generations);
const rounds = Number(values.rounds);
const concurrency = Number(values.concurrency);
const specs = values.pairs.split(',').map((p) => {
  // A '#tag' suffix runs the same pair twice (e.g. mtls:pool,mtls:pool#again: the spread of one code).
  const [server, load] = p.split('#')[0]!.split(':');
  if (!server || !load) throw new Error(`--pairs takes server-kind:load-kind, got ${JSON.stringify(p)}`);
  return { id: p, server, load };
});

const dir = mkdtempSync(join(tmpdir(), 'meshless-spread-'));
try {
  await mintCertificates(dir);
  /** Per pair: each measured window, by generation. */
  const runs = new Map<string, { generation: number; run: RunResult }[]>(specs.map((s) => [s.id, []]));
  for (let g = 0; g < generations; g++) {
    const pairs: Pair[] = [];
    for (const spec of specs) {
      const file = spec.server.startsWith('grpc-') ? 'proc/grpc-server.ts' : 'proc/http-server.ts';
      const server = await startTs(`server-${spec.id}`, file, ['--kind', spec.server, '--certs', dir]);
      const load = await startTs(`load-${spec.id}`, 'proc/load.ts', ['--kind', spec.load, '--port', String(server.ready.port), '--certs', dir]);
      pairs.push({ id: spec.id, load: load.child, server: server.child, serving: [server.child] });
    }
    // Fresh processes: the first window of every generation warms up longer, as round 1 of the bench does.
    for (let r = 0; r < rounds; r++) {
      // The order rotates every round and generation (as in the bench): a fixed order puts whatever
      // one window leaves behind on the next pair every time (it moved a ratio by 10 % here).
      const order = pairs.map((_, i) => pairs[(i + r + g) % pairs.length]!);
      for (const pair of order) {
        const run = await measureOnce(pair, { concurrency, path: '/', newConnection: false }, r === 0 ? 1_300 : 300, 1_500, r + 1);
        runs.get(pair.id)!.push({ generation: g, run });
        console.log(`generation ${g} round ${r + 1} ${pair.id.padEnd(28)} ${run.rps.toFixed(0).padStart(6)} req/s  CPU s/10k ${run.serverCpuSecPer10k.toFixed(3)} server + ${run.clientCpuSecPer10k.toFixed(3)} client  (others busy: ${run.otherCoresBusy.toFixed(1)} cores)`);
      }
    }
    await stopAll();
  }
  const [base, ...others] = specs;
  const baseRuns = runs.get(base!.id)!;
  for (const spec of others) {
    const mine = runs.get(spec.id)!;
    const ratios = mine.map((m, i) => m.run.rps / baseRuns[i]!.run.rps);
    const byGeneration = Array.from({ length: generations }, (_, g) => median(ratios.filter((_, i) => mine[i]!.generation === g))!);
    // Generations are independent draws of process placement: the interval is over them (the windows of one generation are not).
    const interval = ratioInterval(byGeneration);
    const across = interval === undefined ? '' : `; across generations geometric mean ${interval.mean.toFixed(3)}, 95 % interval ${interval.low.toFixed(3)}–${interval.high.toFixed(3)}`;
    console.log(
      `${spec.id} ÷ ${base!.id} req/s: median ${median(ratios)!.toFixed(3)}; by process generation ${byGeneration.map((x) => x.toFixed(3)).join(', ')}${across}; every window ${ratios.map((x) => x.toFixed(2)).join(' ')}`,
    );
  }
} finally {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
}
