// Two clients in one load-generator process, for the same-process comparison
// (scenarios/same-process.ts): `--clients kind@port,kind@port --certs <dir>` (kinds of
// proc/clients.ts). Each client keeps its connection for the whole run. Requests: `warm` and
// `measure` with `which` (0 or 1), `concurrency` and `durationMs`.
import { parseArgs } from 'node:util';
import { drive, loadOf, newClient, type Client } from './clients.js';
import { handle, onExit, ready } from './ipc.js';
import './profiler.js';

const { values } = parseArgs({ options: { clients: { type: 'string' }, certs: { type: 'string' } } });
const clients: Client[] = [];
for (const spec of (values.clients ?? '').split(',')) {
  const [kind, port] = spec.split('@');
  clients.push(await newClient({ kind: kind!, port: Number(port), certs: values.certs ?? '' }));
}
onExit(async () => {
  await Promise.all(clients.map((c) => c.close()));
});

function clientOf(m: Record<string, unknown>): Client {
  const client = clients[Number(m.which)];
  if (!client) throw new Error(`no client ${String(m.which)}`);
  return client;
}

handle('warm', async (m) => {
  const r = await drive(clientOf(m), loadOf(m, false));
  return { requests: r.requests, errors: r.errors, firstError: r.firstError };
});
handle('measure', async (m) => {
  const client = clientOf(m);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await drive(client, loadOf(m, false));
  const elapsedMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { requests: r.requests, errors: r.errors, firstError: r.firstError, elapsedMs, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
});

ready({ clients: clients.length });
