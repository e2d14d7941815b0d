// Footprint: what importing each entry point costs (time, RSS, heap after GC), in fresh plain Node
// processes on the built packages, against node:https; and a listening server with client
// certificates required, meshless createServer against https.createServer. Samples of all cases
// are interleaved (case A B C … A B C …) so that drift on the machine lands on every case alike.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { benchDir } from '../lib/children.js';
import type { BenchContext } from '../lib/context.js';
import { skippedRow, type Row } from '../lib/results.js';
import { median, round } from '../lib/stats.js';

interface Case {
  id: string;
  label: string;
  /** The case it is compared with (its `node:https` counterpart). */
  baseline?: string;
}

export const footprintCases: Case[] = [
  { id: 'https', label: "import 'node:https'" },
  { id: 'core', label: "import '@meshless/core'", baseline: 'https' },
  { id: 'http', label: "import '@meshless/http' (createServer, createAgent, peerOf…; undici not loaded)", baseline: 'https' },
  { id: 'http-express', label: "import '@meshless/http/express'", baseline: 'https' },
  { id: 'grpc', label: "import '@meshless/grpc' (loads @grpc/grpc-js)", baseline: 'https' },
  { id: 'core-internal', label: "import '@meshless/core/internal'", baseline: 'https' },
  { id: 'http-fastify', label: "import '@meshless/http/fastify'", baseline: 'https' },
  { id: 'workload-api', label: "import '@meshless/workload-api' (loads @grpc/grpc-js)", baseline: 'https' },
  { id: 'testing', label: "import '@meshless/testing' (loads @peculiar/x509)", baseline: 'https' },
  { id: 'nest', label: "import '@meshless/nest' (loads @nestjs/common and @nestjs/core)", baseline: 'https' },
  { id: 'https-server', label: 'node:https: https.createServer({ requestCert, ca, … }) listening' },
  { id: 'http-server', label: 'meshless: createServer({ source: loadCredential(…), allow }) listening', baseline: 'https-server' },
  { id: 'http-agent', label: 'meshless client: import, then createAgent (loads undici)', baseline: 'https' },
];

interface Sample {
  ms: number;
  rssMB: number;
  heapMB: number;
  undiciLoaded: boolean;
}

const run = promisify(execFile);

async function sample(id: string, certsDir: string): Promise<Sample> {
  const { stdout } = await run(process.execPath, ['--expose-gc', join(benchDir, 'proc', 'import-cost.mjs'), id, certsDir], { cwd: join(benchDir, '..'), timeout: 30_000 });
  return JSON.parse(stdout.trim().split('\n').pop()!) as Sample;
}

export async function runFootprint(ctx: BenchContext): Promise<Row[]> {
  console.log('\n== footprint: import cost and an idle server, fresh processes, built packages ==');
  const samples = ctx.options.mode === 'quick' ? 1 : 5;
  const results = new Map<string, Sample[]>();
  const failures = new Map<string, string>();
  let skippedForTime = false;
  for (let r = 0; r < samples; r++) {
    for (const c of footprintCases) {
      if (failures.has(c.id)) continue;
      if (ctx.budget.cannotFit(5_000)) {
        skippedForTime = true;
        continue;
      }
      try {
        const s = await sample(c.id, ctx.certs.dir);
        if (!results.has(c.id)) results.set(c.id, []);
        results.get(c.id)!.push(s);
      } catch (err) {
        failures.set(c.id, `${(err as Error).message.split('\n').slice(0, 3).join(' | ')} (the bench measures the built packages: run tsc -b, as npm run bench does)`);
      }
    }
  }
  const med = (id: string, k: 'ms' | 'rssMB' | 'heapMB') => median((results.get(id) ?? []).map((s) => s[k]));
  const rows: Row[] = [];
  for (const c of footprintCases) {
    const got = results.get(c.id);
    if (!got?.length) {
      rows.push(skippedRow('footprint', c.id, c.label, failures.get(c.id) ?? (skippedForTime ? 'time budget exhausted before this row ran' : 'no sample'), failures.has(c.id) ? 'failed' : 'skipped'));
      continue;
    }
    const m: Record<string, number | undefined> = {
      importMs: round(med(c.id, 'ms'), 3),
      rssMB: round(med(c.id, 'rssMB'), 4),
      heapMB: round(med(c.id, 'heapMB'), 3),
    };
    if (c.baseline && results.get(c.baseline)?.length) {
      // Differences of medians over interleaved samples.
      m.rssOverBaselineMB = round(med(c.id, 'rssMB')! - med(c.baseline, 'rssMB')!, 3);
      m.heapOverBaselineMB = round(med(c.id, 'heapMB')! - med(c.baseline, 'heapMB')!, 3);
      m.msOverBaseline = round(med(c.id, 'ms')! - med(c.baseline, 'ms')!, 3);
    }
    const rss = got.map((s) => s.rssMB);
    rows.push({
      group: 'footprint',
      scenario: c.id,
      variant: c.label,
      status: 'ok',
      median: m,
      rounds: got.map((s) => ({ ...s })),
      details: { samples: got.length, rssRangeMB: [round(Math.min(...rss), 4), round(Math.max(...rss), 4)], undiciLoaded: got.some((s) => s.undiciLoaded), baseline: c.baseline },
    });
    console.log(
      `  ${c.id.padEnd(13)} ${String(m.importMs).padStart(7)} ms  RSS ${String(m.rssMB).padStart(6)} MB${m.rssOverBaselineMB === undefined ? '' : ` (+${m.rssOverBaselineMB} over ${c.baseline})`}  heap ${m.heapMB} MB${got.some((s) => s.undiciLoaded) ? '  undici loaded' : ''}`,
    );
  }
  return rows;
}
