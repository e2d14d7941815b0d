// gRPC unary throughput: meshless credentials (serverCredentials + channelCredentials) against
// grpc-js's own createSsl with the same certificates (client certificates required on both),
// and insecure grpc-js as the ceiling.
//
//   node --conditions=source --import tsx bench/grpc.ts [--duration-ms 30000] [--rounds 5] [--in-flight 32]
//
// The servers run in a child process (one event loop, three ports; only one is busy at a time),
// the clients here: one channel (one HTTP/2 connection) per variant, `inFlight` unary calls
// outstanding at all times. Rounds are interleaved (insecure, createSsl, meshless, then rotated)
// so machine drift hits every variant alike; ratios are medians of per-round ratios. Besides
// calls/s, the CPU time per call of each process is reported: throughput is bounded by the
// busier process, so server-side overhead shows in the server's µs/call first.
import { fork, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import grpc from '@grpc/grpc-js';
import { loadCredential, privateKeyPem, silentLogger } from '@meshless/core';
import { channelCredentials, serverCredentials } from '@meshless/grpc';
import { createTestCA } from '@meshless/testing';

const SERVER_ID = 'spiffe://bench.example/ns/bench/sa/server';
const CLIENT_ID = 'spiffe://bench.example/ns/bench/sa/client';
const VARIANTS = ['insecure', 'createSsl', 'meshless'] as const;
type Variant = (typeof VARIANTS)[number];

const identity = (b: Buffer): Buffer => b;
const service = {
  echo: { path: '/meshless.bench.Echo/Echo', requestStream: false, responseStream: false, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity },
} as unknown as grpc.ServiceDefinition;

interface Pems {
  server: { cert: string; key: string; ca: string };
  client: { cert: string; key: string; ca: string };
}

export interface GrpcBenchOptions {
  /** Total measuring time over all rounds and variants, in ms. Default 30 000 (quick: 6 000). */
  durationMs?: number;
  /** Interleaved rounds. Default 5 (quick: 3). */
  rounds?: number;
  /** Unary calls outstanding at all times. Default 32. */
  inFlight?: number;
  /** Shorter defaults, for a smoke run. */
  quick?: boolean;
}

export interface GrpcBenchRow {
  scenario: Variant;
  variant: string;
  /** Median calls/s over the rounds. */
  callsPerSec: number;
  /** Median server CPU per call, µs. */
  serverCpuUsPerCall: number;
  /** Median client CPU per call, µs. */
  clientCpuUsPerCall: number;
  /** Median of per-round calls/s ratios to createSsl. */
  ratioToCreateSsl: number;
  /** Median of per-round calls/s ratios to insecure. */
  ratioToInsecure: number;
  /** createSsl's CPU per call (server + client) over this variant's, median of per-round ratios: 1 = same cost. */
  cpuEfficiencyToCreateSsl: number;
  perRound: number[];
}

export interface GrpcBenchResult {
  rows: GrpcBenchRow[];
  /** meshless / createSsl calls/s (median of per-round ratios): the target is ≥ 0.95. */
  meshlessToCreateSsl: number;
  /** createSsl / meshless CPU per call (server + client): less sensitive to a busy machine than calls/s. */
  meshlessCpuEfficiency: number;
  target: number;
  meetsTarget: boolean;
  inFlight: number;
  rounds: number;
  slotMs: number;
}

// ---------------------------------------------------------------- server process

const echoImpl = {
  echo(call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) {
    callback(null, call.request);
  },
};

function bind(credentials: grpc.ServerCredentials): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server();
  server.addService(service, echoImpl);
  return new Promise((res, rej) => server.bindAsync('localhost:0', credentials, (err, port) => (err ? rej(err) : res({ server, port }))));
}

async function serve(pems: Pems): Promise<Record<Variant, number>> {
  const credential = loadCredential(pems.server);
  const plain = grpc.ServerCredentials.createSsl(Buffer.from(credential.bundlePem), [{ cert_chain: Buffer.from(credential.certPem), private_key: Buffer.from(privateKeyPem(credential)) }], true);
  const [insecure, createSsl, meshless] = await Promise.all([
    bind(grpc.ServerCredentials.createInsecure()),
    bind(plain),
    bind(serverCredentials({ source: credential, allow: CLIENT_ID, logger: silentLogger })),
  ]);
  return { insecure: insecure.port, createSsl: createSsl.port, meshless: meshless.port };
}

function serverMain(): void {
  process.on('disconnect', () => process.exit(0));
  process.on('message', (m: { type: string; pems?: Pems }) => {
    if (m.type === 'start') {
      serve(m.pems!).then(
        (ports) => process.send!({ type: 'ports', ports }),
        (err: Error) => process.send!({ type: 'error', message: err.message }),
      );
    } else if (m.type === 'cpu') {
      process.send!({ type: 'cpu', usage: process.cpuUsage() });
    }
  });
  process.send!({ type: 'ready' });
}

// ---------------------------------------------------------------- client side

class ServerChild {
  readonly #proc: ChildProcess;
  #waiting: ((m: Record<string, unknown>) => void)[] = [];
  constructor() {
    this.#proc = fork(fileURLToPath(import.meta.url), ['--grpc-bench-server'], { execArgv: process.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.#proc.on('message', (m: Record<string, unknown>) => this.#waiting.shift()?.(m));
  }
  next(): Promise<Record<string, unknown>> {
    return new Promise((res, rej) => {
      const timer = setTimeout(() => rej(new Error('the gRPC bench server did not answer in 30 s')), 30_000);
      this.#waiting.push((m) => {
        clearTimeout(timer);
        res(m);
      });
    });
  }
  async ask(message: object): Promise<Record<string, unknown>> {
    const reply = this.next();
    this.#proc.send(message);
    return reply;
  }
  async cpuMicros(): Promise<number> {
    const { usage } = (await this.ask({ type: 'cpu' })) as { usage: NodeJS.CpuUsage };
    return usage.user + usage.system;
  }
  stop(): void {
    if (this.#proc.exitCode === null) this.#proc.kill();
  }
}

type Caller = grpc.Client & { echo: (req: Buffer, cb: (err: grpc.ServiceError | null) => void) => void };
const Client = grpc.makeGenericClientConstructor(service, 'Echo');

/** Runs `inFlight` calls at all times for `ms`; returns the number completed (a failed call throws). */
function drive(client: Caller, inFlight: number, ms: number): Promise<number> {
  const payload = Buffer.alloc(16, 7);
  return new Promise((res, rej) => {
    let done = 0;
    let outstanding = 0;
    let stopping = false;
    let failed: Error | undefined;
    const fire = (): void => {
      outstanding++;
      client.echo(payload, (err) => {
        outstanding--;
        if (err) failed ??= err;
        else done++;
        if (!stopping && !failed) fire();
        else if (outstanding === 0) (failed ? rej(failed) : res(done));
      });
    };
    for (let i = 0; i < inFlight; i++) fire();
    setTimeout(() => {
      stopping = true;
    }, ms);
  });
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const r3 = (x: number): number => Math.round(x * 1000) / 1000;

async function mintPems(): Promise<Pems> {
  const ca = await createTestCA({ trustDomain: 'bench.example' });
  const [server, client] = await Promise.all([ca.issue({ spiffeId: SERVER_ID, dnsNames: ['localhost'] }), ca.issue(CLIENT_ID)]);
  return { server: { cert: server.cert, key: server.key, ca: server.ca }, client: { cert: client.cert, key: client.key, ca: client.ca } };
}

/** Unary calls/s with `inFlight` outstanding: insecure, createSsl and meshless, interleaved rounds. */
export async function runGrpcBench(options: GrpcBenchOptions = {}): Promise<GrpcBenchResult> {
  const quick = options.quick === true;
  const rounds = options.rounds ?? (quick ? 3 : 5);
  const durationMs = options.durationMs ?? (quick ? 6_000 : 30_000);
  const inFlight = options.inFlight ?? 32;
  const slotMs = Math.max(200, Math.floor(durationMs / (rounds * VARIANTS.length)));
  const pems = await mintPems();
  const child = new ServerChild();
  const clients: Partial<Record<Variant, Caller>> = {};
  try {
    const ready = await child.next();
    if (ready.type !== 'ready') throw new Error(`unexpected message from the bench server: ${JSON.stringify(ready)}`);
    const started = await child.ask({ type: 'start', pems });
    if (started.type !== 'ports') throw new Error(`the bench server failed: ${String(started.message)}`);
    const ports = started.ports as Record<Variant, number>;
    const clientCredential = loadCredential(pems.client);
    const channelOf: Record<Variant, () => grpc.ChannelCredentials> = {
      insecure: () => grpc.credentials.createInsecure(),
      createSsl: () => grpc.credentials.createSsl(Buffer.from(clientCredential.bundlePem), Buffer.from(privateKeyPem(clientCredential)), Buffer.from(clientCredential.certPem)),
      meshless: () => channelCredentials({ source: clientCredential, allow: SERVER_ID, logger: silentLogger }),
    };
    for (const v of VARIANTS) {
      clients[v] = new Client(`localhost:${ports[v]}`, channelOf[v](), { 'grpc.use_local_subchannel_pool': 1 }) as unknown as Caller;
      await drive(clients[v]!, inFlight, Math.min(1000, slotMs)); // connect and warm up
    }
    const calls: Record<Variant, number[]> = { insecure: [], createSsl: [], meshless: [] };
    const serverCpu: Record<Variant, number[]> = { insecure: [], createSsl: [], meshless: [] };
    const clientCpu: Record<Variant, number[]> = { insecure: [], createSsl: [], meshless: [] };
    for (let round = 0; round < rounds; round++) {
      const order = VARIANTS.map((_, i) => VARIANTS[(i + round) % VARIANTS.length]!);
      for (const v of order) {
        const s0 = await child.cpuMicros();
        const c0 = process.cpuUsage();
        const t0 = process.hrtime.bigint();
        const n = await drive(clients[v]!, inFlight, slotMs);
        const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
        const c1 = process.cpuUsage(c0);
        const s1 = await child.cpuMicros();
        calls[v].push(n / seconds);
        serverCpu[v].push((s1 - s0) / n);
        clientCpu[v].push((c1.user + c1.system) / n);
      }
    }
    const pairedRatio = (a: number[], b: number[]): number => median(a.map((x, i) => x / b[i]!));
    const totalCpu = (n: number, v: Variant): number[] => Array.from({ length: n }, (_, i) => serverCpu[v][i]! + clientCpu[v][i]!);
    const rows: GrpcBenchRow[] = VARIANTS.map((v) => ({
      scenario: v,
      variant: `unary, ${inFlight} in flight`,
      callsPerSec: Math.round(median(calls[v])),
      serverCpuUsPerCall: Math.round(median(serverCpu[v]) * 10) / 10,
      clientCpuUsPerCall: Math.round(median(clientCpu[v]) * 10) / 10,
      ratioToCreateSsl: r3(pairedRatio(calls[v], calls.createSsl)),
      ratioToInsecure: r3(pairedRatio(calls[v], calls.insecure)),
      cpuEfficiencyToCreateSsl: r3(pairedRatio(totalCpu(calls.createSsl.length, 'createSsl'), totalCpu(calls[v].length, v))),
      perRound: calls[v].map((x) => Math.round(x)),
    }));
    const meshless = rows.find((r) => r.scenario === 'meshless')!;
    const meshlessToCreateSsl = meshless.ratioToCreateSsl;
    return { rows, meshlessToCreateSsl, meshlessCpuEfficiency: meshless.cpuEfficiencyToCreateSsl, target: 0.95, meetsTarget: meshlessToCreateSsl >= 0.95, inFlight, rounds, slotMs };
  } finally {
    for (const c of Object.values(clients)) c?.close();
    child.stop();
  }
}

function printResult(result: GrpcBenchResult): void {
  console.log(`gRPC unary, ${result.inFlight} in flight, ${result.rounds} interleaved rounds of ${result.slotMs} ms per variant`);
  console.log('variant     calls/s   server µs/call  client µs/call  ×createSsl  ×insecure');
  for (const r of result.rows) {
    console.log(
      `${r.scenario.padEnd(10)} ${String(r.callsPerSec).padStart(8)} ${r.serverCpuUsPerCall.toFixed(1).padStart(16)} ${r.clientCpuUsPerCall.toFixed(1).padStart(15)} ${r.ratioToCreateSsl.toFixed(3).padStart(11)} ${r.ratioToInsecure.toFixed(3).padStart(10)}`,
    );
  }
  console.log(`meshless / createSsl = ${result.meshlessToCreateSsl.toFixed(3)} calls/s (target ≥ ${result.target}): ${result.meetsTarget ? 'met' : 'NOT met'}`);
  console.log(`createSsl / meshless CPU per call = ${result.meshlessCpuEfficiency.toFixed(3)} (1 = same cost; per-round calls/s: ${result.rows.map((r) => `${r.scenario} ${r.perRound.join('/')}`).join('; ')})`);
}

const isMain = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain && process.argv.includes('--grpc-bench-server')) {
  serverMain();
} else if (isMain) {
  const { values } = parseArgs({ options: { 'duration-ms': { type: 'string' }, rounds: { type: 'string' }, 'in-flight': { type: 'string' }, quick: { type: 'boolean' } } });
  const opts: GrpcBenchOptions = { quick: values.quick === true };
  if (values['duration-ms']) opts.durationMs = Number(values['duration-ms']);
  if (values.rounds) opts.rounds = Number(values.rounds);
  if (values['in-flight']) opts.inFlight = Number(values['in-flight']);
  printResult(await runGrpcBench(opts));
}
