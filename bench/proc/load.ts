// A load-generator process for the bench, against one server, driven over IPC.
//   --kind <client kind> (proc/clients.ts: plaintext, sidecar, mtls, mtls-full, pool, pool-full, meshless,
//   meshless-full, grpc-insecure, grpc-createSsl, grpc-meshless) --port <server port> --certs <dir>
// Requests: `open`, `warm` and `measure` (time-bounded), `count` (count-bounded), `close`,
// `rotate`.
import { parseArgs } from 'node:util';
import { quantileSorted } from '../lib/stats.js';
import { drive, loadOf, newClient, originOf, type Client, type ClientTarget } from './clients.js';
import { handle, onExit, ready } from './ipc.js';
import './profiler.js';

const { values } = parseArgs({ options: { kind: { type: 'string' }, certs: { type: 'string' }, port: { type: 'string' } } });
const kind = values.kind ?? 'plaintext';
const target: ClientTarget = { kind, port: Number(values.port), certs: values.certs ?? '' };
const origin = originOf(target);

let client: Client | undefined;
async function closeClient(): Promise<void> {
  const c = client;
  client = undefined;
  if (c) await c.close();
}
onExit(closeClient);

handle('open', async () => {
  await closeClient();
  client = await newClient(target);
  return {};
});
handle('close', async () => {
  await closeClient();
  return {};
});
handle('warm', async (m) => {
  const r = await drive((client ??= await newClient(target)), loadOf(m, false));
  return { requests: r.requests, errors: r.errors, firstError: r.firstError };
});
handle('measure', async (m) => {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await drive((client ??= await newClient(target)), loadOf(m, true));
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
  const r = await drive((client ??= await newClient(target)), loadOf(m, false));
  return { requests: r.requests, errors: r.errors, firstError: r.firstError, elapsedMs: performance.now() - t0 };
});
handle('rotate', () => {
  if (!target.source) throw new Error(`the ${kind} client does not rotate`);
  return { generation: target.source.rotate().generation };
});

ready({ kind, origin });
