// An HTTP/1.1 server process for the bench: `--kind plaintext | mtls | meshless | meshless-permissive --certs <dir>`.
// Listens on 127.0.0.1 (port 0), answers GET / with 13 bytes and GET /64k with 64 KiB.
import diagnostics_channel from 'node:diagnostics_channel';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type { TLSSocket } from 'node:tls';
import { CLIENT_ID, certFiles } from '../lib/certs.js';
import { createServer, peerOf as meshlessPeerOf } from '@meshless/http';
import { BenchSource } from '../lib/meshless.js';
import { handle, onExit, ready } from './ipc.js';
import './profiler.js';

const { values } = parseArgs({ options: { kind: { type: 'string' }, certs: { type: 'string' }, 'keep-alive-ms': { type: 'string' } } });
const kind = values.kind ?? 'plaintext';
const small = Buffer.from('hello, world\n');
const big = Buffer.alloc(64 * 1024, 0x78);

let peerOf: ((req: http.IncomingMessage) => unknown) | undefined;
let peersSeen = 0;
function respond(req: http.IncomingMessage, res: http.ServerResponse): void {
  // The meshless server hands the application the caller's identity: read it, as an app would.
  if (peerOf && peerOf(req) !== undefined) peersSeen++;
  const body = req.url === '/64k' ? big : small;
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
  res.end(body);
}

let server: http.Server | https.Server;
let source: BenchSource | undefined;
const files = values.certs ? certFiles(values.certs) : undefined;

if (kind === 'plaintext') {
  server = http.createServer(respond);
} else if (kind === 'mtls') {
  if (!files) throw new Error('--certs is required');
  // What a careful hand-written service does: node:https with client certificates required.
  server = https.createServer(
    {
      cert: readFileSync(files.serverCert()),
      key: readFileSync(files.serverKey()),
      ca: readFileSync(files.ca),
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.3',
    },
    respond,
  );
} else if (kind === 'meshless' || kind === 'meshless-permissive') {
  if (!files) throw new Error('--certs is required');
  source = new BenchSource(files.dir, 'server');
  peerOf = meshlessPeerOf;
  // Permissive: the same server, also serving plaintext on its port (first-byte check per connection).
  const mode = kind === 'meshless-permissive' ? { mode: 'permissive' as const } : {};
  server = createServer({ source, allow: [CLIENT_ID], ...mode }, respond);
} else {
  throw new Error(`unknown --kind ${kind}`);
}

let connections = 0;
let openConnections = 0;
let tlsConnections = 0;
let resumed = 0;
server.on('connection', (socket) => {
  connections++;
  openConnections++;
  socket.once('close', () => openConnections--);
});
server.on('secureConnection', (socket: TLSSocket) => {
  tlsConnections++;
  if (socket.isSessionReused()) resumed++;
});
// The scale rows hold idle connections for minutes: they pass --keep-alive-ms 0 (no idle timeout).
server.keepAliveTimeout = values['keep-alive-ms'] === undefined ? 60_000 : Number(values['keep-alive-ms']);

await new Promise<void>((resolve, reject) => {
  server.once('error', reject);
  server.listen(0, '127.0.0.1', () => resolve());
});
onExit(
  () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
);

handle('stats', () => ({ connections, openConnections, tlsConnections, resumed, peersSeen }));
// The server's own handling of an update (setSecureContext, re-checking live connections after a
// trust change) runs synchronously inside the source's emit: timed between a listener that runs
// before the server's and one that runs after it.
let updateStarted = 0;
let lastSwapMs = NaN;
source?.prependListener('update', () => {
  updateStarted = performance.now();
});
source?.on('update', () => {
  lastSwapMs = performance.now() - updateStarted;
});
handle('rotate', (m) => {
  if (!source) throw new Error(`the ${kind} server does not rotate`);
  const count = Number(m.count ?? 1);
  const swaps: number[] = [];
  for (let i = 0; i < count; i++) {
    source.rotate(m.trustChange === true);
    swaps.push(lastSwapMs);
  }
  return { generation: source.current().generation, serial: source.current().identity.serialNumber, swapMs: Math.max(...swaps) };
});
// Event-loop delay: how long the process could not serve anything (e.g. during a rotation).
const loopDelay = monitorEventLoopDelay({ resolution: 5 });
loopDelay.enable();
// The meshless server re-checks live connections after a trust change in slices across turns:
// its report of each review (longest slice, synchronous time, duration), since the last reset.
let reviews: { maxSliceMs: number; maxSliceCpuMs: number; busyMs: number; durationMs: number; slices: number }[] = [];
diagnostics_channel.subscribe('meshless:connections:reviewed', (m) => reviews.push(m as (typeof reviews)[0]));
handle('loopDelay', (m) => {
  const reply = { maxMs: loopDelay.max / 1e6, p99Ms: loopDelay.percentile(99) / 1e6, reviews };
  if (m.reset === true) {
    loopDelay.reset();
    reviews = [];
  }
  return reply;
});

ready({ port: (server.address() as AddressInfo).port, kind });
