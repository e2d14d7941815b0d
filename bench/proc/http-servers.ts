// The bench's HTTP servers, by kind (proc/http-server.ts: one per process; proc/two-servers.ts: two
// in one process), not listening yet: plaintext | mtls (node:https, client certificates required) |
// meshless | meshless-permissive.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { createServer, peerOf } from '@meshless/http';
import { CLIENT_ID, certFiles } from '../lib/certs.js';
import { BenchSource } from '../lib/meshless.js';
import { onExit } from './ipc.js';

const small = Buffer.from('hello, world\n');
const big = Buffer.alloc(64 * 1024, 0x78);

/** Counts requests whose caller's identity the application read (meshless servers). */
export const peers = { seen: 0 };

function respond(req: http.IncomingMessage, res: http.ServerResponse): void {
  const body = req.url === '/64k' ? big : small;
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
  res.end(body);
}

function respondWithPeer(req: http.IncomingMessage, res: http.ServerResponse): void {
  // The meshless server hands the application the caller's identity: read it, as an app would.
  if (peerOf(req) !== undefined) peers.seen++;
  respond(req, res);
}

/** An HTTP server of `kind` answering GET / with 13 bytes and GET /64k with 64 KiB; `source` for the meshless kinds. */
export function httpServer(kind: string, certs: string | undefined): { server: http.Server | https.Server; source?: BenchSource } {
  if (kind === 'plaintext') return { server: http.createServer(respond) };
  if (!certs) throw new Error('--certs is required');
  const files = certFiles(certs);
  if (kind === 'mtls') {
    // What a careful hand-written service does: node:https with client certificates required.
    const options = { cert: readFileSync(files.serverCert()), key: readFileSync(files.serverKey()), ca: readFileSync(files.ca), requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' as const };
    return { server: https.createServer(options, respond) };
  }
  if (kind === 'meshless' || kind === 'meshless-permissive') {
    const source = new BenchSource(files.dir, 'server');
    // Permissive: the same server, also serving plaintext on its port (first-byte check per connection).
    const mode = kind === 'meshless-permissive' ? { mode: 'permissive' as const } : {};
    return { server: createServer({ source, allow: [CLIENT_ID], ...mode }, respondWithPeer), source };
  }
  throw new Error(`unknown --kind ${kind}`);
}

/** Listens on 127.0.0.1 (port 0) and closes the server, and every connection, when the process exits; resolves with the port. */
export async function listen(server: http.Server | https.Server): Promise<number> {
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
  return (server.address() as AddressInfo).port;
}
