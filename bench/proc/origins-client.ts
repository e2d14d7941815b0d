// One client talking to many origins, for the scale rows: `--kind meshless` (one createAgent) or
// `--kind agent` (the hand-written equivalent: one undici Agent with `connect` options and a SPIFFE
// checkServerIdentity). Keep-alive 10 minutes: every origin's connection is still open when the
// pass ends; the servers then close them all, and the pools go away.
//   pass { origins, concurrency }   one GET / to every origin
//   pools {}                        how many origins have a pool now
//   memory {}                       heap and RSS after GC
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Agent, type Dispatcher } from 'undici';
import { SERVER_ID, SERVER_NAME, certFiles, checkSpiffeServer } from '../lib/certs.js';
import { createAgent } from '@meshless/http';
import { BenchSource } from '../lib/meshless.js';
import { handle, onExit, ready } from './ipc.js';

const { values } = parseArgs({ options: { kind: { type: 'string' }, certs: { type: 'string' } } });
const kind = values.kind ?? 'meshless';
const files = certFiles(values.certs!);
const common = { keepAliveTimeout: 600_000, keepAliveMaxTimeout: 600_000, headersTimeout: 10_000, bodyTimeout: 10_000 };

let agent: Dispatcher & { stats: Record<string, unknown> };
if (kind === 'meshless') {
  agent = createAgent({ ...common, source: new BenchSource(files.dir, 'client'), allow: [SERVER_ID] }) as typeof agent;
} else {
  agent = new Agent({
    ...common,
    connect: { ca: readFileSync(files.ca), cert: readFileSync(files.clientCert()), key: readFileSync(files.clientKey()), servername: SERVER_NAME, minVersion: 'TLSv1.3', checkServerIdentity: checkSpiffeServer },
  }) as unknown as typeof agent;
}
onExit(() => agent.close());

handle('pass', async (m) => {
  const origins = m.origins as string[];
  const concurrency = Number(m.concurrency ?? 16);
  let next = 0;
  let failed = 0;
  let firstError: string | undefined;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < origins.length) {
        const origin = origins[next++]!;
        try {
          const res = await agent.request({ origin, path: '/', method: 'GET' });
          await res.body.text();
          if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
        } catch (err) {
          failed++;
          firstError ??= (err as Error).message;
        }
      }
    }),
  );
  return { requests: origins.length - failed, failed, firstError, elapsedMs: performance.now() - t0 };
});
handle('pools', () => ({ pools: Object.keys(agent.stats).length }));
ready({ kind });
