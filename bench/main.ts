// The bench orchestrator: `npm run bench [-- --quick]` (bench/run.mjs starts this through tsx).
// Starts every scenario's processes, runs the rounds, writes bench/results/*.json and
// docs/benchmarks.md, and stops every child process on every exit path.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { mintCertificates } from './lib/certs.js';
import { benchDir, childDefaults, killAllNow, stopAll } from './lib/children.js';
import { Budget, type BenchContext } from './lib/context.js';
import { procAvailable } from './lib/cpu.js';
import { describeMachine, findSystemTools } from './lib/machine.js';
import { parseOptions } from './lib/options.js';
import { renderMarkdown } from './lib/report.js';
import type { Results, Row } from './lib/results.js';
import type { Scenario } from './lib/scenario.js';
import { addRatios } from './lib/rounds.js';
import { checkTargets } from './lib/targets.js';
import { runHttp, runNewConnections } from './scenarios/http.js';
import { runPerRequest } from './scenarios/per-request.js';
import { runRotation } from './scenarios/rotation.js';
import { runGrpc } from './scenarios/grpc.js';
import { runHttpClient } from './scenarios/http-client.js';
import { runFootprint } from './scenarios/footprint.js';
import { runMemory } from './scenarios/memory.js';
import { runProfile } from './scenarios/profile.js';
import { runSameProcess } from './scenarios/same-process.js';
import { runScale } from './scenarios/scale.js';

/** Every scenario, in the order a complete run takes them. */
const scenarios: Scenario[] = [
  { group: 'http', needs: ['stunnel', 'nginx'], run: runHttp },
  { group: 'new-connections', run: runNewConnections },
  { group: 'per-request', run: runPerRequest },
  { group: 'rotation', run: runRotation },
  { group: 'grpc', run: runGrpc },
  { group: 'http-client', run: runHttpClient },
  { group: 'profile', run: runProfile },
  // Footprint is short: before memory, which takes whatever time is left.
  { group: 'footprint', run: runFootprint },
  { group: 'memory', run: runMemory },
  // Side-by-side in one process: explains the pair rows' small gaps; takes ~45 s of what is left.
  { group: 'same-process', run: runSameProcess },
  { group: 'scale', run: runScale },
];

const options = parseOptions(process.argv.slice(2));
const budget = new Budget(options.budgetMs);
// Children end themselves a little after the budget, whatever happens to this process.
childDefaults.maxLifetimeMs = options.budgetMs + 120_000;
if (options.cpuProfDir) {
  mkdirSync(options.cpuProfDir, { recursive: true });
  childDefaults.nodeFlags = ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfDir}`];
}
removeStaleWorkDirs();
const workDir = mkdtempSync(join(os.tmpdir(), 'meshless-bench-'));
writeFileSync(join(workDir, 'owner.pid'), String(process.pid));

/** Work directories of earlier runs that were killed (their owner process is gone): remove them. */
function removeStaleWorkDirs(): void {
  for (const name of readdirSync(os.tmpdir())) {
    if (!/^meshless-bench-[A-Za-z0-9]{6}$/.test(name)) continue;
    const dir = join(os.tmpdir(), name);
    try {
      const owner = Number(readFileSync(join(dir, 'owner.pid'), 'utf8'));
      if (Number.isInteger(owner) && owner > 0 && !existsSync(`/proc/${owner}`)) rmSync(dir, { recursive: true, force: true });
    } catch {
      /* not ours, or already gone */
    }
  }
}

let cleanedUp = false;
function cleanupNow(): void {
  if (cleanedUp) return;
  cleanedUp = true;
  killAllNow();
  rmSync(workDir, { recursive: true, force: true });
}
process.on('exit', cleanupNow);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    console.error(`\nbench: ${signal}: stopping every child process`);
    void stopAll().finally(() => {
      cleanupNow();
      process.exit(130);
    });
  });
}
// A hard stop well past the budget: nothing may keep the bench running forever.
setTimeout(() => {
  console.error('bench: hard time limit reached: stopping');
  cleanupNow();
  process.exit(3);
}, options.budgetMs + 90_000).unref();

const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
console.log(`${command}: ${options.mode} mode, ${options.rounds} round(s), groups ${[...options.only].join(', ')}`);
console.log(`work directory: ${workDir}`);

async function main(): Promise<number> {
  const notes: string[] = [];
  if (!procAvailable()) notes.push('/proc is not readable: server-side CPU cannot be measured on this system');
  const selected = scenarios.filter((s) => options.only.has(s.group));
  const tools = selected.some((s) => s.needs?.length) ? findSystemTools() : { notes: [] };
  notes.push(...tools.notes);
  const machine = describeMachine(tools);
  console.log(`machine: ${machine.nproc} CPUs, ${machine.cpuModel}, Node ${machine.node}, load ${machine.loadAverageAtStart.join(' ')}`);
  const certs = await mintCertificates(join(workDir, 'certs'));
  const ctx: BenchContext = { options, budget, certs, workDir, tools, notes };
  const rows: Row[] = [];
  for (const { group, run } of selected) {
    const groupStart = Date.now();
    try {
      rows.push(...(await run(ctx)));
      console.log(`  (${group}: ${((Date.now() - groupStart) / 1000).toFixed(1)} s)`);
    } catch (err) {
      console.error(`bench: ${group} failed: ${(err as Error).stack}`);
      rows.push({ group, scenario: group, variant: '', status: 'failed', reason: (err as Error).message.split('\n')[0] });
    } finally {
      await stopAll();
    }
  }

  const results: Results = {
    date: new Date().toISOString(),
    command,
    mode: options.mode,
    settings: {
      ...Object.fromEntries((['rounds', 'warmupMs', 'measureMs', 'newConnectionMs', 'memoryRequests', 'memoryRotations', 'scaleConnections', 'scaleOrigins', 'rotations'] as const).map((k) => [k, options[k]])),
      groups: [...options.only],
    },
    machine,
    notes,
    durationSeconds: Math.round(budget.elapsedSeconds()),
    rows,
    targets: checkTargets(rows),
  };
  mkdirSync(dirname(options.out), { recursive: true });
  writeFileSync(options.out, JSON.stringify(results, null, 2) + '\n');
  console.log(`\nresults: ${options.out}`);
  const markdown = renderMarkdown(results, readResults(join(dirname(options.out), 'memory.json')), readResults(join(dirname(options.out), 'scale.json')));
  if (options.docs) {
    writeFileSync(options.docs, markdown);
    console.log(`report: ${options.docs}`);
  }
  console.log('\n== targets ==');
  for (const t of results.targets) console.log(`  ${t.met === undefined ? 'n/a ' : t.met ? 'met ' : 'MISS'}  ${t.target}: ${t.value === undefined ? t.note : `${t.value}${t.note ? ` (${t.note})` : ''}`}`);
  const skipped = rows.filter((r) => r.status !== 'ok');
  if (skipped.length) {
    console.log('\n== skipped or failed ==');
    for (const r of skipped) console.log(`  ${r.status}: ${r.group} ${r.scenario} ${r.variant}: ${r.reason}`);
  }
  console.log(`\nbench finished in ${Math.round(budget.elapsedSeconds())} s`);
  return 0;
}

/** Results of an earlier run, or undefined. */
function readResults(file: string): Results | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Results;
  } catch {
    return undefined;
  }
}

/** `--render`: recomputes ratios and targets in bench/results/latest.json and rewrites the report, without running. */
function renderOnly(): number {
  const file = join(benchDir, 'results', 'latest.json');
  const results = readResults(file);
  if (!results) {
    console.error(`bench --render: ${file} is missing or unreadable: run npm run bench first`);
    return 1;
  }
  // Ratios and targets are recomputed from the stored rounds, so a report always follows the current rules.
  addRatios(results.rows.filter((r) => r.group === 'http' || r.group === 'new-connections'));
  results.targets = checkTargets(results.rows);
  // Derived figures only (ratios, targets): the measured rounds are left as they were.
  writeFileSync(file, JSON.stringify(results, null, 2) + '\n');
  const docs = options.docs ?? join(benchDir, '..', 'docs', 'benchmarks.md');
  writeFileSync(docs, renderMarkdown(results, readResults(join(benchDir, 'results', 'memory.json')), readResults(join(benchDir, 'results', 'scale.json'))));
  console.log(`report: ${docs} (from ${file})`);
  return 0;
}

let code = 1;
try {
  code = options.renderOnly ? renderOnly() : await main();
} catch (err) {
  console.error(`bench: ${(err as Error).stack}`);
} finally {
  await stopAll();
  cleanupNow();
}
process.exit(code);
