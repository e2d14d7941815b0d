#!/usr/bin/env node
// One footprint sample, in a fresh plain Node process (no tsx: what an application gets from the
// built packages). Run by bench/scenarios/footprint.ts from the repository root:
//   node --expose-gc bench/proc/import-cost.mjs <case> <certs dir>
// Cases: https | core | http | http-express | grpc | core-internal | http-fastify | workload-api | testing | nest (import only), https-server | http-server
// (import, then a server with client certificates required, listening), http-agent (import, then
// createAgent). Prints one JSON line: { ms, rssMB, heapMB, undiciLoaded }.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const [which, certs] = process.argv.slice(2);
const read = (name) => readFileSync(join(certs, name));
const MB = 1024 * 1024;

const t0 = performance.now();
let server;
let agent;
switch (which) {
  case 'https':
    await import('node:https');
    break;
  case 'core':
    await import('@meshless/core');
    break;
  case 'http':
    await import('@meshless/http');
    break;
  case 'http-express':
    await import('@meshless/http/express');
    break;
  case 'grpc':
    await import('@meshless/grpc');
    break;
  case 'core-internal':
    await import('@meshless/core/internal');
    break;
  case 'http-fastify':
    await import('@meshless/http/fastify');
    break;
  case 'workload-api':
    await import('@meshless/workload-api');
    break;
  case 'testing':
    await import('@meshless/testing');
    break;
  case 'nest':
    await import('@meshless/nest');
    break;
  case 'https-server': {
    const https = await import('node:https');
    server = https.createServer({ cert: read('server.g0.crt'), key: read('server.g0.key'), ca: read('ca.crt'), requestCert: true, minVersion: 'TLSv1.3' }, (_req, res) => res.end());
    break;
  }
  case 'http-server': {
    const { createServer } = await import('@meshless/http');
    const { loadCredential } = await import('@meshless/core');
    const source = loadCredential({ cert: read('server.g0.crt'), key: read('server.g0.key'), ca: read('ca.crt') });
    server = createServer({ source, allow: 'spiffe://bench.example/ns/bench/sa/client' }, (_req, res) => res.end());
    break;
  }
  case 'http-agent': {
    const { createAgent } = await import('@meshless/http');
    const { loadCredential } = await import('@meshless/core');
    const source = loadCredential({ cert: read('client.g0.crt'), key: read('client.g0.key'), ca: read('ca.crt') });
    agent = createAgent({ source, allow: 'spiffe://bench.example/ns/bench/sa/server' });
    break;
  }
  default:
    throw new Error(`unknown case ${which}`);
}
if (server) await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const ms = performance.now() - t0;
for (let i = 0; i < 3; i++) globalThis.gc();
const m = process.memoryUsage();
const undiciLoaded = Object.keys(createRequire(import.meta.url).cache).some((k) => /[\\/]undici[\\/]/.test(k));
console.log(JSON.stringify({ ms, rssMB: m.rss / MB, heapMB: m.heapUsed / MB, undiciLoaded }));
server?.close();
await agent?.close();
process.exit(0);
