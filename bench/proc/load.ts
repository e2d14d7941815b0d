// A load-generator process for the bench: undici against one server, driven over IPC.
//   --kind plaintext | sidecar   undici Pool, plain HTTP (to the server, or to the local sidecar)
//   --kind mtls                  undici Agent with `connect: { ca, cert, key, servername }`
//   --kind mtls-full             the same with undici's session cache off: a full handshake per connection
//   --kind pool                  the leanest hand-written client: a bare undici Pool for the one origin with
//                                `connect: { ca, cert, key, servername, checkServerIdentity }` (SPIFFE ID check)
//   --kind pool-full             the same with undici's session cache off: a full handshake per connection
//   --kind meshless              createAgent({ source, allow }) from @meshless/http
// Requests: `open`, `warm` and `measure` (time-bounded), `count` (count-bounded), `close`,
// `rotate`, `memory`.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Agent, Pool, type Dispatcher } from 'undici';
import type { PeerCertificate } from 'node:tls';
import { SERVER_ID, SERVER_NAME, certFiles } from '../lib/certs.js';
import { BenchSource, loadMeshlessHttp } from '../lib/meshless.js';
import { quantileSorted } from '../lib/stats.js';
import { handle, onExit, ready } from './ipc.js';
import { memoryReport } from './memory.js';
import './profiler.js';

const { values } = parseArgs({ options: { kind: { type: 'string' }, certs: { type: 'string' }, port: { type: 'string' } } });
const kind = values.kind ?? 'plaintext';
const port = Number(values.port);
const tls = kind === 'mtls' || kind === 'mtls-full' || kind === 'pool' || kind === 'pool-full' || kind === 'meshless';
const origin = `${tls ? 'https' : 'http'}://127.0.0.1:${port}`;
const files = values.certs ? certFiles(values.certs) : undefined;
/** Bounds on every request, so that a stuck server cannot hang a run. */
const timeouts = { headersTimeout: 10_000, bodyTimeout: 10_000, keepAliveTimeout: 60_000 };

let source: BenchSource | undefined;
const meshless = kind === 'meshless' ? await loadMeshlessHttp(['createAgent']) : undefined;
if (meshless && 'missing' in meshless) throw new Error(meshless.missing);

function newDispatcher(): Dispatcher {
  if (kind === 'plaintext' || kind === 'sidecar') return new Pool(origin, timeouts);
  if (!files) throw new Error('--certs is required');
  if (kind === 'mtls' || kind === 'mtls-full') {
    return new Agent({
      ...timeouts,
      connect: {
        ca: readFileSync(files.ca),
        cert: readFileSync(files.clientCert()),
        key: readFileSync(files.clientKey()),
        servername: SERVER_NAME,
        minVersion: 'TLSv1.3',
        ...(kind === 'mtls-full' ? { maxCachedSessions: 0 } : {}),
      },
    });
  }
  if (kind === 'pool' || kind === 'pool-full') {
    // What a careful engineer writes by hand: one Pool per origin, the SPIFFE ID checked in place
    // of the host name (exactly one URI SAN, equal to the expected ID).
    const checkServerIdentity = (_host: string, cert: PeerCertificate): Error | undefined => {
      const uris = (cert.subjectaltname ?? '').split(', ').filter((san) => san.startsWith('URI:'));
      return uris.length === 1 && uris[0] === `URI:${SERVER_ID}` ? undefined : new Error(`unexpected server identity: ${cert.subjectaltname}`);
    };
    return new Pool(origin, {
      ...timeouts,
      connect: {
        ca: readFileSync(files.ca),
        cert: readFileSync(files.clientCert()),
        key: readFileSync(files.clientKey()),
        servername: SERVER_NAME,
        minVersion: 'TLSv1.3',
        checkServerIdentity,
        ...(kind === 'pool-full' ? { maxCachedSessions: 0 } : {}),
      },
    });
  }
  if (meshless && 'mod' in meshless) {
    source ??= new BenchSource(files.dir, 'client');
    return meshless.mod.createAgent!({ ...timeouts, source, allow: [SERVER_ID] });
  }
  throw new Error(`unknown --kind ${kind}`);
}

let dispatcher: Dispatcher | undefined;
async function closeDispatcher(): Promise<void> {
  const d = dispatcher;
  dispatcher = undefined;
  if (d) await d.close();
}
onExit(closeDispatcher);

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
  if (!dispatcher) dispatcher = newDispatcher();
  const d = dispatcher;
  const expected = load.path === '/64k' ? 64 * 1024 : 13;
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
        const res = await d.request({ origin, path: load.path, method: 'GET', reset: load.newConnection });
        const body = await res.body.arrayBuffer();
        if (res.statusCode !== 200 || body.byteLength !== expected) {
          throw new Error(`status ${res.statusCode}, ${body.byteLength} bytes (expected 200, ${expected})`);
        }
        requests++;
        bytes += body.byteLength;
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
  await closeDispatcher();
  dispatcher = newDispatcher();
  return {};
});
handle('close', async () => {
  await closeDispatcher();
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
handle('rotate', (m) => {
  if (!source) throw new Error(`the ${kind} client does not rotate`);
  const count = Number(m.count ?? 1);
  for (let i = 0; i < count; i++) source.rotate();
  return { generation: source.current().generation };
});
handle('memory', () => memoryReport());

ready({ kind, origin });
