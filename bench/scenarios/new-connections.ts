import { stopAll } from '../lib/children.js';
import type { BenchContext } from '../lib/context.js';
import { startTargets, type TargetSpec } from '../lib/http-targets.js';
import type { Row } from '../lib/results.js';
import { runInterleaved, type Variant } from '../lib/rounds.js';

/** One new connection per request (undici `reset: true`): the cost of handshakes. */
export const newConnectionScenarios: TargetSpec[] = [
  { id: 'plaintext', label: 'plaintext TCP connection per request', server: 'plaintext', load: 'plaintext' },
  { id: 'pool-full', label: 'hand-written: bare undici Pool connect {ca,cert,key,checkServerIdentity}, session cache off: full mTLS handshake', server: 'mtls', load: 'pool-full' },
  { id: 'pool', label: "hand-written: bare undici Pool connect {ca,cert,key,checkServerIdentity}, undici's default session cache", server: 'mtls', load: 'pool' },
  { id: 'mtls-full', label: 'hand-written: undici connect {ca,cert,key}, session cache off: full mTLS handshake', server: 'mtls', load: 'mtls-full' },
  { id: 'mtls', label: "hand-written: undici connect {ca,cert,key}, undici's default session cache", server: 'mtls', load: 'mtls' },
  { id: 'meshless', label: 'meshless createAgent → createServer (its session resumption)', server: 'meshless', load: 'meshless' },
];

export const newConnectionVariants: Variant[] = [{ id: 'c8-new', concurrency: 8, path: '/', newConnection: true }];

export async function runNewConnections(ctx: BenchContext): Promise<Row[]> {
  console.log('\n== new connection per request ==');
  const targets = await startTargets(ctx, newConnectionScenarios);
  try {
    return await runInterleaved(ctx, 'new-connections', targets, newConnectionVariants, ctx.options.newConnectionMs);
  } finally {
    await stopAll();
  }
}
