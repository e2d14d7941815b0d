// The bench's clients, by kind (used by proc/load.ts, one client per process, and by
// proc/ab-load.ts, two clients in one process). One `send` is one HTTP GET or one unary gRPC call.
//   plaintext | sidecar   undici Pool, plain HTTP (to the server, or to the local sidecar)
//   mtls                  undici Agent with `connect: { ca, cert, key, servername }`
//   mtls-full             the same with undici's session cache off: a full handshake per connection
//   pool                  the leanest hand-written client: a bare undici Pool for the one origin with
//                         `connect: { ca, cert, key, servername, checkServerIdentity }` (SPIFFE ID check)
//   pool-full             the same with undici's session cache off
//   meshless              createAgent({ source, allow }) from @meshless/http
//   meshless-full         the same with its session cache off (maxCachedSessions: 0)
//   grpc-insecure | grpc-createSsl | grpc-meshless   one grpc-js channel (one HTTP/2 connection),
//                         unary echo calls: insecure, createSsl, or meshless channelCredentials
import { readFileSync } from 'node:fs';
import { Agent, Pool, type Dispatcher } from 'undici';
import { silentLogger } from '@meshless/core';
import { createAgent } from '@meshless/http';
import { SERVER_ID, SERVER_NAME, certFiles, checkSpiffeServer } from '../lib/certs.js';
import { echoService } from '../lib/grpc-echo.js';
import { BenchSource } from '../lib/meshless.js';

/** One request (HTTP GET of `path`, or one unary gRPC call); resolves with the bytes received. */
export interface Client {
  send(path: string, newConnection: boolean): Promise<number>;
  close(): Promise<void>;
}

/** What a client of `kind` aimed at 127.0.0.1:`port` is made of; `source` is set once a meshless client is made (the load process rotates it). */
export interface ClientTarget {
  kind: string;
  port: number;
  certs: string;
  source?: BenchSource;
}

/** Bounds on every request, so that a stuck server cannot hang a run. */
const timeouts = { headersTimeout: 10_000, bodyTimeout: 10_000, keepAliveTimeout: 60_000 };

export function originOf(target: ClientTarget): string {
  return `${target.kind === 'plaintext' || target.kind === 'sidecar' ? 'http' : 'https'}://127.0.0.1:${target.port}`;
}

function httpClient(d: Dispatcher, origin: string): Client {
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

/** A new client of `target.kind` (a fresh pool or channel: no connection yet). */
export async function newClient(target: ClientTarget): Promise<Client> {
  const { kind, port } = target;
  const origin = originOf(target);
  const files = certFiles(target.certs);
  const noCache = kind.endsWith('-full') ? { maxCachedSessions: 0 } : {};
  const tls = () => ({ ca: readFileSync(files.ca), cert: readFileSync(files.clientCert()), key: readFileSync(files.clientKey()), servername: SERVER_NAME, minVersion: 'TLSv1.3' as const, ...noCache });
  if (kind === 'plaintext' || kind === 'sidecar') return httpClient(new Pool(origin, timeouts), origin);
  if (kind === 'mtls' || kind === 'mtls-full') return httpClient(new Agent({ ...timeouts, connect: tls() }), origin);
  // What a careful engineer writes by hand: one Pool per origin, the SPIFFE ID checked in place of the host name.
  if (kind === 'pool' || kind === 'pool-full') return httpClient(new Pool(origin, { ...timeouts, connect: { ...tls(), checkServerIdentity: checkSpiffeServer } }), origin);
  if (kind === 'meshless' || kind === 'meshless-full') {
    target.source ??= new BenchSource(files.dir, 'client');
    return httpClient(createAgent({ ...timeouts, ...noCache, source: target.source, allow: [SERVER_ID] }), origin);
  }
  if (kind.startsWith('grpc-')) {
    const grpc = await import('@grpc/grpc-js');
    const { channelCredentials } = await import('@meshless/grpc');
    const t = tls();
    const credentials =
      kind === 'grpc-insecure'
        ? grpc.credentials.createInsecure()
        : kind === 'grpc-createSsl'
          ? grpc.credentials.createSsl(t.ca, t.key, t.cert)
          : channelCredentials({ source: (target.source ??= new BenchSource(files.dir, 'client')), allow: SERVER_ID, logger: silentLogger });
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
  throw new Error(`unknown client kind ${kind}`);
}

/** Latencies in ms, in a growable typed array (no per-sample allocation). */
export class Latencies {
  // Empty until the first sample: a run that records nothing (warm-up, count) allocates nothing.
  #data = new Float64Array(0);
  length = 0;
  add(ms: number): void {
    if (this.length === this.#data.length) {
      const next = new Float64Array(Math.max(1 << 16, this.#data.length * 2));
      next.set(this.#data);
      this.#data = next;
    }
    this.#data[this.length++] = ms;
  }
  sorted(): Float64Array {
    return this.#data.slice(0, this.length).sort();
  }
}

export interface Load {
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

/** Runs `load.concurrency` request loops on `client` until the time or count is reached. */
export async function drive(client: Client, load: Load): Promise<{ requests: number; errors: number; firstError?: string; bytes: number; latencies: Latencies }> {
  const latencies = new Latencies();
  let requests = 0;
  let started = 0;
  let errors = 0;
  let bytes = 0;
  let firstError: string | undefined;
  const more = () => errors < MAX_ERRORS && (load.count !== undefined ? started < load.count : performance.now() < load.until!);
  const worker = async () => {
    while (more()) {
      started++;
      const t0 = performance.now();
      try {
        bytes += await client.send(load.path, load.newConnection);
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

/** The load shape of an IPC request (`concurrency`, `path`, `newConnection`, `durationMs` or `count`). */
export function loadOf(m: Record<string, unknown>, record: boolean): Load {
  return {
    concurrency: Number(m.concurrency ?? 1),
    path: String(m.path ?? '/'),
    newConnection: m.newConnection === true,
    record,
    ...(m.durationMs !== undefined ? { until: performance.now() + Number(m.durationMs) } : {}),
    ...(m.count !== undefined ? { count: Number(m.count) } : {}),
  };
}
