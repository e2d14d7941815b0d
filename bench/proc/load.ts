// A load-generator process for the bench, against one server, driven over IPC.
//   --kind plaintext | sidecar   undici Pool, plain HTTP (to the server, or to the local sidecar)
//   --kind mtls                  undici Agent with `connect: { ca, cert, key, servername }`
//   --kind mtls-full             the same with undici's session cache off: a full handshake per connection
//   --kind pool                  the leanest hand-written client: a bare undici Pool for the one origin with
//                                `connect: { ca, cert, key, servername, checkServerIdentity }` (SPIFFE ID check)
//   --kind pool-full             the same with undici's session cache off: a full handshake per connection
//   --kind meshless              createAgent({ source, allow }) from @meshless/http
//   --kind meshless-full         the same with its session cache off (maxCachedSessions: 0)
//   --kind grpc-insecure | grpc-createSsl | grpc-meshless   one grpc-js channel (one HTTP/2 connection),
//                                unary echo calls: insecure, createSsl, or meshless channelCredentials
// Requests: `open`, `warm` and `measure` (time-bounded), `count` (count-bounded), `close`,
// `rotate`, `memory`.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Agent, Pool, type Dispatcher } from 'undici';
import { silentLogger } from '@meshless/core';
import { createAgent } from '@meshless/http';
import { SERVER_ID, SERVER_NAME, certFiles, checkSpiffeServer } from '../lib/certs.js';
import { echoService } from '../lib/grpc-echo.js';
import { BenchSource } from '../lib/meshless.js';
import { quantileSorted } from '../lib/stats.js';
import { handle, onExit, ready } from './ipc.js';
import './profiler.js';

const { values } = parseArgs({ options: { kind: { type: 'string' }, certs: { type: 'string' }, port: { type: 'string' } } });
const kind = values.kind ?? 'plaintext';
const port = Number(values.port);
const origin = `${kind === 'plaintext' || kind === 'sidecar' ? 'http' : 'https'}://127.0.0.1:${port}`;
const files = certFiles(values.certs ?? '');
/** Bounds on every request, so that a stuck server cannot hang a run. */
const timeouts = { headersTimeout: 10_000, bodyTimeout: 10_000, keepAliveTimeout: 60_000 };
const noCache = kind.endsWith('-full') ? { maxCachedSessions: 0 } : {};
const tls = () => ({ ca: readFileSync(files.ca), cert: readFileSync(files.clientCert()), key: readFileSync(files.clientKey()), servername: SERVER_NAME, minVersion: 'TLSv1.3' as const, ...noCache });

/** One request (HTTP GET of `path`, or one unary gRPC call); resolves with the bytes received. */
interface Client {
  send(path: string, newConnection: boolean): Promise<number>;
  close(): Promise<void>;
}

function httpClient(d: Dispatcher): Client {
  return {
    async send(path, reset) {
      const expected = path === '/64k' ? 64 * 1024 : 13;
      const res = await d.request({ origin, path, method: 'GET', reset });
      const body = await res.body.arrayBuffer();
      if (res.statusCode !== 200 || body.byteLength !== expected) throw new Error(`status ${res.statusCode}, ${body.byteLength} bytes (expected 200, ${expected})`);
      return body.byteLength;
    },
    close: () => d.close(),
  };
}

let source: BenchSource | undefined;
const grpc = kind.startsWith('grpc-') ? await import('@grpc/grpc-js') : undefined;

async function newClient(): Promise<Client> {
  if (kind === 'plaintext' || kind === 'sidecar') return httpClient(new Pool(origin, timeouts));
  if (kind === 'mtls' || kind === 'mtls-full') return httpClient(new Agent({ ...timeouts, connect: tls() }));
  // What a careful engineer writes by hand: one Pool per origin, the SPIFFE ID checked in place of the host name.
  if (kind === 'pool' || kind === 'pool-full') return httpClient(new Pool(origin, { ...timeouts, connect: { ...tls(), checkServerIdentity: checkSpiffeServer } }));
  if (kind === 'meshless' || kind === 'meshless-full') {
    source ??= new BenchSource(files.dir, 'client');
    return httpClient(createAgent({ ...timeouts, ...noCache, source, allow: [SERVER_ID] }));
  }
  if (grpc) {
    const { channelCredentials } = await import('@meshless/grpc');
    const t = tls();
    const credentials =
      kind === 'grpc-insecure'
        ? grpc.credentials.createInsecure()
        : kind === 'grpc-createSsl'
          ? grpc.credentials.createSsl(t.ca, t.key, t.cert)
          : channelCredentials({ source: (source ??= new BenchSource(files.dir, 'client')), allow: SERVER_ID, logger: silentLogger });
    const Echo = grpc.makeGenericClientConstructor(echoService, 'Echo');
    const client = new Echo(`127.0.0.1:${port}`, credentials, { 'grpc.use_local_subchannel_pool': 1, 'grpc.ssl_target_name_override': SERVER_NAME }) as InstanceType<typeof Echo> & {
      echo(req: Buffer, cb: (err: Error | null) => void): void;
    };
    const payload = Buffer.alloc(16, 7);
    return {
      send: () => new Promise((resolve, reject) => client.echo(payload, (err) => (err ? reject(err) : resolve(payload.length)))),
      close: async () => client.close(),
    };
  }
  throw new Error(`unknown --kind ${kind}`);
}

let client: Client | undefined;
async function closeClient(): Promise<void> {
  const c = client;
  client = undefined;
  if (c) await c.close();
}
onExit(closeClient);

/** Latencies in ms, in a growable typed array (no per-sample allocation). */
class Latencies {
  #data = new Float64Array(1 << 16);
  length = 0;
  add(ms: number): void {
    if (this.length === this.#data.length) {
      const next = new Float64Array(this.#data.length * 2);
      next.set(this.#data);
      this.#data = next;
    }
    this.#data[this.length++] = ms;
  }
  sorted(): Float64Array {
    return this.#data.slice(0, this.length).sort();
  }
}

interface Load {
  concurrency: number;
  path: string;
  /** Close the connection after each request (`reset`): one new connection per request. */
  newConnection: boolean;
  /** Stop at this time (performance.now()), or after this many requests. */
  until?: number;
  count?: number;
  record: boolean;
}

const MAX_ERRORS = 1000;

async function drive(load: Load): Promise<{ requests: number; errors: number; firstError?: string; bytes: number; latencies: Latencies }> {
  client ??= await newClient();
  const c = client;
  const latencies = new Latencies();
  let requests = 0;
  let started = 0;
  let errors = 0;
  let bytes = 0;
  let firstError: string | undefined;
  const more = () =>
    errors < MAX_ERRORS && (load.count !== undefined ? started < load.count : performance.now() < load.until!);
  const worker = async () => {
    while (more()) {
      started++;
      const t0 = performance.now();
      try {
        bytes += await c.send(load.path, load.newConnection);
        requests++;
        if (load.record) latencies.add(performance.now() - t0);
      } catch (err) {
        errors++;
        firstError ??= (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: load.concurrency }, worker));
  return { requests, errors, bytes, latencies, ...(firstError ? { firstError } : {}) };
}

function loadOf(m: Record<string, unknown>, record: boolean): Load {
  return {
    concurrency: Number(m.concurrency ?? 1),
    path: String(m.path ?? '/'),
    newConnection: m.newConnection === true,
    record,
    ...(m.durationMs !== undefined ? { until: performance.now() + Number(m.durationMs) } : {}),
    ...(m.count !== undefined ? { count: Number(m.count) } : {}),
  };
}

handle('open', async () => {
  await closeClient();
  client = await newClient();
  return {};
});
handle('close', async () => {
  await closeClient();
  return {};
});
handle('warm', async (m) => {
  const r = await drive(loadOf(m, false));
  return { requests: r.requests, errors: r.errors, firstError: r.firstError };
});
handle('measure', async (m) => {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await drive(loadOf(m, true));
  const elapsedMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const sorted = r.latencies.sorted();
  return {
    requests: r.requests,
    errors: r.errors,
    firstError: r.firstError,
    bytes: r.bytes,
    elapsedMs,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    p50Ms: quantileSorted(sorted, 0.5),
    p90Ms: quantileSorted(sorted, 0.9),
    p99Ms: quantileSorted(sorted, 0.99),
    maxMs: sorted.length ? sorted[sorted.length - 1] : NaN,
  };
});
handle('count', async (m) => {
  const t0 = performance.now();
  const r = await drive(loadOf(m, false));
  return { requests: r.requests, errors: r.errors, firstError: r.firstError, elapsedMs: performance.now() - t0 };
});
handle('rotate', () => {
  if (!source) throw new Error(`the ${kind} client does not rotate`);
  return { generation: source.rotate().generation };
});

ready({ kind, origin });
