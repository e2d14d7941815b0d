// An HTTP/1.1 server process for the bench: `--kind plaintext | mtls | meshless --certs <dir>`.
// Listens on 127.0.0.1 (port 0), answers GET / with 13 bytes and GET /64k with 64 KiB.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import type { TLSSocket } from 'node:tls';
import { CLIENT_ID, certFiles } from '../lib/certs.js';
import { BenchSource, loadMeshlessHttp } from '../lib/meshless.js';
import { handle, onExit, ready } from './ipc.js';
import { memoryReport } from './memory.js';

const { values } = parseArgs({ options: { kind: { type: 'string' }, certs: { type: 'string' } } });
const kind = values.kind ?? 'plaintext';
const small = Buffer.from('hello, world\n');
const big = Buffer.alloc(64 * 1024, 0x78);

let peerOf: ((req: unknown) => unknown) | undefined;
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
} else if (kind === 'meshless') {
  if (!files) throw new Error('--certs is required');
  const loaded = await loadMeshlessHttp(['createServer']);
  if ('missing' in loaded) throw new Error(loaded.missing);
  source = new BenchSource(files.dir, 'server');
  peerOf = loaded.mod.peerOf;
  server = loaded.mod.createServer!({ source, allow: [CLIENT_ID] }, respond);
} else {
  throw new Error(`unknown --kind ${kind}`);
}

let connections = 0;
let tlsConnections = 0;
let resumed = 0;
server.on('connection', () => connections++);
server.on('secureConnection', (socket: TLSSocket) => {
  tlsConnections++;
  if (socket.isSessionReused()) resumed++;
});
server.keepAliveTimeout = 60_000;

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

handle('stats', () => ({ connections, tlsConnections, resumed, peersSeen }));
handle('rotate', (m) => {
  if (!source) throw new Error(`the ${kind} server does not rotate`);
  const count = Number(m.count ?? 1);
  for (let i = 0; i < count; i++) source.rotate();
  return { generation: source.current().generation };
});
handle('memory', () => memoryReport());

ready({ port: (server.address() as AddressInfo).port, kind });
