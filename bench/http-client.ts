// The meshless HTTP client against a hand-configured undici Agent, same certificates, same server.
//
//   node --conditions=source --import tsx bench/http-client.ts [durationMs]
//
// The server is a plain node:https server (requestCert, options from core's serverTlsOptions) in
// its own process, and each client runs in its own load process (so neither client shares a
// thread, a heap or JIT state with the other or with the server). Measured in interleaved rounds
// (A B, then B A, …) to cancel drift:
// - keep-alive requests/s at 32 requests in flight, and client CPU per request;
// - new connections/s (each request on a new connection: TCP + TLS + one request), full handshakes
//   (no session cache) and resumed ones (session cache on).
// Each ratio is the median of the per-round ratios (each round pairs a meshless and a baseline run
// next to each other in time), which is robust to a machine whose load changes under the bench.
// `runClientBench({ durationMs })` returns the figures; run directly, it prints them and the ratios.
import { spawn, type ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { loadCredential, privateKeyPem, serverTlsOptions, silentLogger } from '@meshless/core';
import { createAgent } from '@meshless/http';
import { createTestCA } from '@meshless/testing';
import { Agent, request, type Dispatcher } from 'undici';

const SERVER_ID = 'spiffe://bench.example/ns/bench/sa/server';
const CLIENT_ID = 'spiffe://bench.example/ns/bench/sa/client';

export interface ClientBenchOptions {
  /** Total measuring time per scenario and variant, in ms, split into rounds. Default 4000 (quick: 1000). */
  durationMs?: number;
  /** Rounds per variant. Default 8 (quick: 2). */
  rounds?: number;
  /** Requests in flight for keep-alive. Default 32. */
  concurrency?: number;
  /** Requests in flight for new connections. Default 8. */
  newConnectionConcurrency?: number;
  quick?: boolean;
}

export interface ClientBenchRow {
  scenario: 'keep-alive' | 'new-connections';
  variant: string;
  /** meshless createAgent. */
  meshlessPerSec: number;
  /** Hand-configured undici Agent with connect: { cert, key, ca }. */
  baselinePerSec: number;
  /** Median over rounds of meshless ÷ baseline (rounds run side by side). */
  ratio: number;
  /** Lowest and highest per-round ratio. */
  ratioMin: number;
  ratioMax: number;
  /** Client process CPU per request, µs. */
  meshlessCpuUsPerRequest: number;
  baselineCpuUsPerRequest: number;
  errors: number;
}

export interface ClientBenchResult {
  rows: ClientBenchRow[];
  /** Resumed ÷ full new connections per second, meshless. */
  meshlessResumedOverFull: number;
  /** Resumed ÷ full new connections per second, baseline. */
  baselineResumedOverFull: number;
  durationMs: number;
  rounds: number;
}

interface Measure {
  count: number;
  elapsedMs: number;
  cpuUs: number;
  errors: number;
}

const SERVER_SCRIPT = `
const https = require('node:https');
process.once('message', (tls) => {
  const server = https.createServer(tls, (req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  server.keepAliveTimeout = 60000;
  server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
  process.on('disconnect', () => process.exit(0));
});
`;

async function startServerProcess(tls: object): Promise<{ port: number; child: ChildProcess }> {
  const child = spawn(process.execPath, ['-e', SERVER_SCRIPT], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m: { port: number }) => resolve(m.port));
    child.once('exit', (code) => reject(new Error(`bench server exited with ${code}`)));
    child.send(tls);
  });
  return { port, child };
}

async function load(dispatcher: Dispatcher, url: string, concurrency: number, durationMs: number, reset: boolean): Promise<Measure> {
  let count = 0;
  let errors = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const end = t0 + durationMs;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        try {
          const res = await request(url, { dispatcher, reset });
          await res.body.dump();
          count++;
        } catch {
          errors++;
        }
      }
    }),
  );
  const elapsedMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { count, elapsedMs, cpuUs: cpu.user + cpu.system, errors };
}

function sum(ms: Measure[]): Measure {
  return ms.reduce((a, b) => ({ count: a.count + b.count, elapsedMs: a.elapsedMs + b.elapsedMs, cpuUs: a.cpuUs + b.cpuUs, errors: a.errors + b.errors }), { count: 0, elapsedMs: 0, cpuUs: 0, errors: 0 });
}

const perSec = (m: Measure): number => (m.count * 1000) / m.elapsedMs;
const cpuPerRequest = (m: Measure): number => (m.count === 0 ? 0 : m.cpuUs / m.count);

/** What a load process is asked to run. */
interface LoadJob {
  scenario: Scenario;
  durationMs: number;
  concurrency: number;
}

type Scenario = 'keep-alive' | 'full' | 'resumed';
type Variant = 'meshless' | 'baseline';

/** A load process: one client variant, its dispatchers kept warm between rounds. */
interface LoadProcess {
  run(job: LoadJob): Promise<Measure>;
  stop(): void;
}

async function startLoadProcess(variant: Variant, setup: LoadSetup): Promise<LoadProcess> {
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), LOAD_CHILD_FLAG], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let pending: { resolve: (m: Measure) => void; reject: (e: Error) => void } | undefined;
  child.on('message', (m: { measure?: Measure; error?: string }) => {
    const p = pending;
    pending = undefined;
    if (m.error !== undefined) p?.reject(new Error(m.error));
    else if (m.measure !== undefined) p?.resolve(m.measure);
  });
  child.once('exit', (code) => pending?.reject(new Error(`${variant} load process exited with ${code}`)));
  const ask = (message: unknown): Promise<Measure> =>
    new Promise((resolve, reject) => {
      pending = { resolve, reject };
      child.send(message as object);
    });
  await ask({ setup: { ...setup, variant } });
  return { run: (job) => ask({ job }), stop: () => child.kill() };
}

/** Runs one scenario in interleaved rounds: A B, B A, A B… */
async function interleaved(clients: Record<Variant, LoadProcess>, scenario: Scenario, concurrency: number, durationMs: number, rounds: number): Promise<Paired> {
  // Warm-up: connections, sessions, JIT.
  const warm = { scenario, concurrency, durationMs: Math.max(500, durationMs) };
  await clients.meshless.run(warm);
  await clients.baseline.run(warm);
  const job = { scenario, concurrency, durationMs };
  const meshless: Measure[] = [];
  const baseline: Measure[] = [];
  for (let r = 0; r < rounds; r++) {
    if (r % 2 === 0) {
      meshless.push(await clients.meshless.run(job));
      baseline.push(await clients.baseline.run(job));
    } else {
      baseline.push(await clients.baseline.run(job));
      meshless.push(await clients.meshless.run(job));
    }
  }
  const ratios = meshless.map((m, i) => perSec(m) / perSec(baseline[i]!)).sort((a, b) => a - b);
  return { meshless: sum(meshless), baseline: sum(baseline), ratios };
}

interface Paired {
  meshless: Measure;
  baseline: Measure;
  /** Per-round meshless ÷ baseline, sorted. */
  ratios: number[];
}

function median(sorted: number[]): number {
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function row(scenario: ClientBenchRow['scenario'], variant: string, m: Paired): ClientBenchRow {
  const meshlessPerSec = perSec(m.meshless);
  const baselinePerSec = perSec(m.baseline);
  return {
    scenario,
    variant,
    meshlessPerSec: Math.round(meshlessPerSec),
    baselinePerSec: Math.round(baselinePerSec),
    ratio: Number(median(m.ratios).toFixed(3)),
    ratioMin: Number(m.ratios[0]!.toFixed(3)),
    ratioMax: Number(m.ratios.at(-1)!.toFixed(3)),
    meshlessCpuUsPerRequest: Math.round(cpuPerRequest(m.meshless)),
    baselineCpuUsPerRequest: Math.round(cpuPerRequest(m.baseline)),
    errors: m.meshless.errors + m.baseline.errors,
  };
}

/** Measures createAgent against a hand-configured undici Agent; see the file comment. */
export async function runClientBench(options: ClientBenchOptions = {}): Promise<ClientBenchResult> {
  const quick = options.quick === true;
  const totalMs = options.durationMs ?? (quick ? 1000 : 4000);
  const rounds = options.rounds ?? (quick ? 2 : 8);
  const durationMs = Math.max(100, Math.round(totalMs / rounds));
  const concurrency = options.concurrency ?? 32;
  const newConnectionConcurrency = options.newConnectionConcurrency ?? 8;

  const ca = await createTestCA({ trustDomain: 'bench.example' });
  const server = loadCredential(await ca.issue({ spiffeId: SERVER_ID, dnsNames: ['localhost'] }));
  const client = await ca.issue(CLIENT_ID);
  const { port, child } = await startServerProcess(serverTlsOptions(server));
  const started: LoadProcess[] = [];
  try {
    // An IP address: no DNS lookup (nor IPv6-first fallback for "localhost") in the figures. The
    // baseline sends SNI "localhost" and checks that host name; meshless checks the SPIFFE ID.
    const setup: LoadSetup = { url: `https://127.0.0.1:${port}/`, cert: client.cert, key: client.key, ca: client.ca };
    const meshless = await startLoadProcess('meshless', setup);
    started.push(meshless);
    const baseline = await startLoadProcess('baseline', setup);
    started.push(baseline);
    const clients = { meshless, baseline };
    const keepAlive = await interleaved(clients, 'keep-alive', concurrency, durationMs, rounds);
    const full = await interleaved(clients, 'full', newConnectionConcurrency, durationMs, rounds);
    const resumed = await interleaved(clients, 'resumed', newConnectionConcurrency, durationMs, rounds);
    const rows = [row('keep-alive', `c${concurrency}`, keepAlive), row('new-connections', 'full', full), row('new-connections', 'resumed', resumed)];
    return {
      rows,
      meshlessResumedOverFull: Number((perSec(resumed.meshless) / perSec(full.meshless)).toFixed(3)),
      baselineResumedOverFull: Number((perSec(resumed.baseline) / perSec(full.baseline)).toFixed(3)),
      durationMs,
      rounds,
    };
  } finally {
    for (const p of started) p.stop();
    child.kill();
  }
}

/** What a load process needs: the server URL and the client's PEM material (a bench-only key). */
interface LoadSetup {
  url: string;
  cert: string;
  key: string;
  ca: string;
  variant?: Variant;
}

const LOAD_CHILD_FLAG = '--http-client-bench-load';

/** The load process: builds its variant's dispatchers once, then runs jobs on request. */
function runLoadChild(): void {
  let setup: Required<LoadSetup> | undefined;
  const dispatchers = new Map<Scenario, Dispatcher>();
  const dispatcherFor = (scenario: Scenario): Dispatcher => {
    let d = dispatchers.get(scenario);
    if (d !== undefined) return d;
    const { variant, cert, key, ca } = setup!;
    const credential = loadCredential({ cert, key, ca });
    const noCache = scenario === 'full';
    if (variant === 'meshless') {
      d = createAgent({ source: credential, allow: SERVER_ID, logger: silentLogger, ...(noCache ? { maxCachedSessions: 0 } : {}) });
    } else {
      d = new Agent({ connect: { cert, key: privateKeyPem(credential), ca, servername: 'localhost', ...(noCache ? { maxCachedSessions: 0 } : {}) } });
    }
    dispatchers.set(scenario, d);
    return d;
  };
  process.on('message', (m: { setup?: Required<LoadSetup>; job?: LoadJob }) => {
    void (async () => {
      try {
        if (m.setup !== undefined) {
          setup = m.setup;
          process.send!({ measure: { count: 0, elapsedMs: 0, cpuUs: 0, errors: 0 } });
          return;
        }
        const job = m.job!;
        const measure = await load(dispatcherFor(job.scenario), setup!.url, job.concurrency, job.durationMs, job.scenario !== 'keep-alive');
        process.send!({ measure });
      } catch (err) {
        process.send!({ error: (err as Error).stack ?? String(err) });
      }
    })();
  });
  process.on('disconnect', () => process.exit(0));
}

function print(result: ClientBenchResult): void {
  console.log(`meshless createAgent vs hand-configured undici Agent (${result.rounds} interleaved rounds of ${result.durationMs} ms each)`);
  for (const r of result.rows) {
    const unit = r.scenario === 'keep-alive' ? 'req/s' : 'conn/s';
    console.log(
      `  ${`${r.scenario} ${r.variant}`.padEnd(24)} meshless ${String(r.meshlessPerSec).padStart(6)} ${unit}  baseline ${String(r.baselinePerSec).padStart(6)} ${unit}` +
        `  ratio ${r.ratio.toFixed(3)} (rounds ${r.ratioMin.toFixed(2)}–${r.ratioMax.toFixed(2)})` +
        `  client CPU ${r.meshlessCpuUsPerRequest} vs ${r.baselineCpuUsPerRequest} µs/req${r.errors ? `  errors ${r.errors}` : ''}`,
    );
  }
  console.log(`  resumed ÷ full new connections/s: meshless ${result.meshlessResumedOverFull.toFixed(2)}×, baseline ${result.baselineResumedOverFull.toFixed(2)}×`);
}

if (process.argv.includes(LOAD_CHILD_FLAG)) {
  runLoadChild();
} else if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const durationMs = process.argv[2] === undefined ? undefined : Number(process.argv[2]);
  print(await runClientBench(durationMs === undefined ? {} : { durationMs }));
}
