// An HTTP/1.1 server process for the bench: `--kind plaintext | mtls | meshless | meshless-permissive --certs <dir>`.
// Listens on 127.0.0.1 (port 0), answers GET / with 13 bytes and GET /64k with 64 KiB.
import diagnostics_channel from 'node:diagnostics_channel';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type { TLSSocket } from 'node:tls';
import { handle, ready } from './ipc.js';
import { httpServer, listen, peers } from './http-servers.js';
import './profiler.js';

const { values } = parseArgs({ options: { kind: { type: 'string' }, certs: { type: 'string' }, 'keep-alive-ms': { type: 'string' } } });
const kind = values.kind ?? 'plaintext';
const { server, source } = httpServer(kind, values.certs);

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

const port = await listen(server);

handle('stats', () => ({ connections, openConnections, tlsConnections, resumed, peersSeen: peers.seen }));
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

ready({ port, kind });
