// Smoke test of the bench harness: `npm run bench -- --quick` with an even smaller budget must
// finish, write its JSON, and give every row either figures or a printed reason. It asserts no
// performance target: speed goals live in the bench output (docs/benchmarks.md), not here.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Row {
  group: string;
  scenario: string;
  variant: string;
  status: 'ok' | 'skipped' | 'failed';
  reason?: string;
  median?: Record<string, number | null>;
  ratios?: Record<string, number | null>;
}

function run(args: string[], timeoutMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(root, 'bench', 'run.mjs'), ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      reject(new Error(`bench did not finish within ${timeoutMs} ms:\n${output.slice(-3000)}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** Command lines of running processes that mention `text` (Linux /proc; empty elsewhere). */
function processesMentioning(text: string): string[] {
  if (!existsSync('/proc/self/cmdline')) return [];
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmd.includes(text)) found.push(`${pid}: ${cmd}`);
    } catch {
      /* exited meanwhile */
    }
  }
  return found;
}

describe('bench (quick mode)', function () {
  this.timeout(330_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(os.tmpdir(), 'meshless-bench-test-'));
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('completes, writes the JSON, and gives every row figures or a printed reason', async () => {
    const out = join(dir, 'quick.json');
    const { code, output } = await run(['--quick', '--warmup-ms', '100', '--measure-ms', '250', '--out', out, '--no-docs'], 300_000);
    assert.equal(code, 0, `bench exited with ${code}:\n${output.slice(-3000)}`);
    assert.ok(existsSync(out), 'the results JSON was not written');
    const results = JSON.parse(readFileSync(out, 'utf8')) as { mode: string; rows: Row[]; machine: { nproc: number; node: string }; targets: unknown[] };
    assert.equal(results.mode, 'quick');
    assert.ok(results.machine.nproc >= 1 && results.machine.node.startsWith('v'));
    assert.ok(Array.isArray(results.targets) && results.targets.length > 0, 'the targets were not checked');

    const groups = new Set(results.rows.map((r) => r.group));
    for (const g of ['http', 'new-connections', 'per-request', 'memory', 'rotation', 'grpc', 'http-client', 'profile', 'footprint', 'same-process', 'scale']) {
      assert.ok(groups.has(g), `no row for group ${g}`);
    }
    for (const row of results.rows) {
      const name = `${row.group} / ${row.scenario} / ${row.variant}`;
      if (row.status === 'ok') {
        const figures = Object.values(row.median ?? {}).filter((v) => typeof v === 'number' && Number.isFinite(v));
        assert.ok(figures.length > 0, `${name} is ok but has no figures`);
      } else {
        assert.ok(row.reason && row.reason.length > 0, `${name} is ${row.status} without a reason`);
        assert.ok(output.includes(row.reason.slice(0, 60)), `${name}: its reason was not printed`);
      }
    }
    // The baselines are the harness itself: if they do not run, the harness is broken.
    for (const [group, scenario, variant] of [
      ['http', 'plaintext', 'c1'],
      ['http', 'plaintext', 'c32'],
      ['http', 'mtls', 'c32'],
      ['per-request', 'allow-10k', 'ns/op'],
      ['http', 'pool', 'c32'],
      ['grpc', 'createSsl', 'unary, 32 in flight'],
      ['grpc', 'meshless', 'unary, 32 in flight'],
    ]) {
      const row = results.rows.find((r) => r.group === group && r.scenario === scenario && r.variant === variant);
      assert.equal(row?.status, 'ok', `baseline ${group} / ${scenario} / ${variant} did not run: ${row?.reason}`);
      assert.ok((row?.median?.rps ?? row?.median?.nsPerOp ?? row?.median?.callsPerSec ?? 0) > 0);
    }
    // The HTTP-client comparison and both rotation paths run on the same harness: they must measure.
    for (const [group, scenario, figure] of [
      ['http-client', 'keep-alive', 'ratio'],
      ['http-client', 'new-connections', 'ratio'],
      ['rotation', 'rotation', 'p99Ms'],
      ['rotation', 'workload-api', 'p99Ms'],
    ] as const) {
      const row = results.rows.find((r) => r.group === group && r.scenario === scenario);
      assert.equal(row?.status, 'ok', `${group} / ${scenario} did not run: ${row?.reason}`);
      assert.ok((row?.median?.[figure] ?? 0) > 0, `${group} / ${scenario} has no ${figure}`);
    }
    // Scale: the idle-connection rows of both servers and the rotation under them ran (or say
    // the time budget ran out), and the rotation lost no request.
    for (const scenario of ['idle hand-written node:https', 'idle meshless createServer', 'rotation with live connections', 'origins meshless createAgent']) {
      const row = results.rows.find((r) => r.group === 'scale' && r.scenario === scenario);
      if (row?.status !== 'ok') assert.match(row?.reason ?? '', /time budget/, `scale / ${scenario} did not run: ${row?.reason}`);
    }
    // Same process: meshless and the hand-written code side by side in one process, both sides of
    // HTTP and gRPC, with paired ratios (or the time budget ran out).
    for (const scenario of ['http client', 'http server', 'grpc client', 'grpc server']) {
      const row = results.rows.find((r) => r.group === 'same-process' && r.scenario === scenario);
      if (row?.status !== 'ok') assert.match(row?.reason ?? '', /time budget/, `same-process / ${scenario} did not run: ${row?.reason}`);
      else assert.ok((row.ratios?.rps ?? 0) > 0 && (row.ratios?.cpu ?? 0) > 0 && (row.median?.meshlessRps ?? 0) > 0, `same-process / ${scenario} has no ratios`);
    }
    // Profile: the meshless pair's server and client were profiled, with CPU per request.
    for (const scenario of ['meshless server', 'meshless client']) {
      const row = results.rows.find((r) => r.group === 'profile' && r.scenario === scenario && r.variant === 'c32');
      if (row?.status !== 'ok') assert.match(row?.reason ?? '', /time budget/, `profile / ${scenario} did not run: ${row?.reason}`);
      else assert.ok((row.median?.usPerRequest ?? 0) > 0);
    }
    // Footprint: node:https and the meshless server import are measured, and importing
    // @meshless/http does not load undici.
    for (const scenario of ['https', 'http', 'https-server', 'http-server']) {
      const row = results.rows.find((r) => r.group === 'footprint' && r.scenario === scenario);
      assert.equal(row?.status, 'ok', `footprint / ${scenario} did not run: ${row?.reason}`);
      assert.ok((row?.median?.rssMB ?? 0) > 0);
      if (scenario.startsWith('http')) assert.equal((row as { details?: { undiciLoaded?: boolean } }).details?.undiciLoaded, false, `footprint / ${scenario} loaded undici`);
    }
    // Every child process is gone (servers, load generators, sidecars all name the work directory).
    const workDir = /work directory: (\S+)/.exec(output)?.[1];
    assert.ok(workDir, 'the bench did not print its work directory');
    assert.deepEqual(processesMentioning(workDir), [], 'child processes outlived the bench');
    assert.ok(!existsSync(workDir), 'the work directory was not removed');
  });
});
