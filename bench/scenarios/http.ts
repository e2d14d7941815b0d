import type { BenchContext } from '../lib/context.js';
import { startPairs, type PairSpec } from '../lib/pairs.js';
import type { Row } from '../lib/results.js';
import { runInterleaved, type Variant } from '../lib/rounds.js';

/** The keep-alive scenarios: what a user would run instead of meshless, and meshless. */
export const httpScenarios: PairSpec[] = [
  { id: 'plaintext', label: 'plaintext: node:http ← undici Pool', server: 'plaintext', load: 'plaintext' },
  { id: 'pool', label: 'hand-written mTLS, leanest: node:https requestCert ← bare undici Pool connect + checkServerIdentity', server: 'mtls', load: 'pool' },
  { id: 'mtls', label: 'hand-written mTLS: node:https requestCert ← undici Agent connect', server: 'mtls', load: 'mtls' },
  { id: 'meshless', label: 'meshless: createServer ← createAgent', server: 'meshless', load: 'meshless' },
  { id: 'meshless-permissive', label: "meshless: createServer mode 'permissive' (mTLS + plaintext on one port) ← createAgent", server: 'meshless-permissive', load: 'meshless' },
  { id: 'meshless-server', label: 'meshless createServer ← hand-written bare undici Pool (server side alone)', server: 'meshless', load: 'pool' },
  { id: 'stunnel', label: 'sidecar pair: undici → stunnel → stunnel → node:http', server: 'stunnel', load: 'sidecar' },
  { id: 'nginx', label: 'sidecar pair: undici → nginx → nginx (ssl_verify_client on) → node:http', server: 'nginx', load: 'sidecar' },
];

export const httpVariants: Variant[] = [
  { id: 'c1', concurrency: 1, path: '/', newConnection: false },
  { id: 'c32', concurrency: 32, path: '/', newConnection: false },
  { id: 'c32-64k', concurrency: 32, path: '/64k', newConnection: false },
];

/** HTTP/1.1 keep-alive: small responses at concurrency 1 and 32, and 64 KiB responses at 32. */
export async function runHttp(ctx: BenchContext): Promise<Row[]> {
  console.log('\n== HTTP/1.1 keep-alive ==');
  // Every process the group started stops when it ends (main.ts).
  return runInterleaved(ctx, 'http', await startPairs(ctx, httpScenarios), httpVariants, ctx.options.measureMs);
}

/** One new connection per request (undici `reset: true`): the cost of handshakes. */
export const newConnectionScenarios: PairSpec[] = [
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
  return runInterleaved(ctx, 'new-connections', await startPairs(ctx, newConnectionScenarios), newConnectionVariants, ctx.options.newConnectionMs);
}
