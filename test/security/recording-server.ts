// The HTTP side of the security tests: a meshless server that records what it served, refused
// and retired, and a raw TLS client (node:tls, no HTTP library) that can offer a session.
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { createServer, type MeshlessServer, type PeerRefusal, type PeerRetirement, type ServerOptions } from '@meshless/http';

/** A meshless server on 127.0.0.1 whose handler answers `body`, recording every request and event. */
export interface RecordingServer {
  readonly server: MeshlessServer;
  readonly port: number;
  /** The URL of every request the handler ran for. */
  readonly handled: string[];
  readonly refusals: PeerRefusal[];
  readonly retired: PeerRetirement[];
  /** Stops listening and drops every connection. */
  close(): void;
}

export async function startRecordingServer(options: ServerOptions, body = 'ok'): Promise<RecordingServer> {
  const handled: string[] = [];
  const refusals: PeerRefusal[] = [];
  const retired: PeerRetirement[] = [];
  const server = createServer(options, (req, res) => {
    handled.push(req.url ?? '');
    res.end(body);
  });
  server.on('peerRefused', (r) => refusals.push(r));
  server.on('peerRetired', (r) => retired.push(r));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    server,
    port: (server.address() as AddressInfo).port,
    handled,
    refusals,
    retired,
    close() {
      server.close();
      server.closeAllConnections();
    },
  };
}

export interface RawCall {
  /** The status line (`HTTP/1.1 200`), or `''` when no response came back. */
  status: string;
  resumed: boolean;
  /** The newest session ticket the server sent, to offer on a later call. */
  session?: Buffer;
  socket: tls.TLSSocket;
}

/**
 * One GET of `url` on a fresh raw TLS connection to `port` as `client`, offering `session`.
 * Resolves when the socket closes (`connection: close`), or with `keepOpen` as soon as the `ok`
 * body arrives, the connection left open (keep-alive) for the test to use.
 */
export function rawCall(port: number, client: { cert: string; key: string; ca: string }, url = '/', options: { session?: Buffer | undefined; keepOpen?: boolean } = {}): Promise<RawCall> {
  const { session, keepOpen = false } = options;
  return new Promise((resolve) => {
    let latest: Buffer | undefined;
    let resumed = false;
    let response = '';
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', cert: client.cert, key: client.key, ca: client.ca, rejectUnauthorized: false, ...(session ? { session } : {}) });
    const done = (): void => resolve({ status: response.slice(0, 12), resumed, socket, ...(latest ? { session: latest } : {}) });
    socket.on('session', (s: Buffer) => (latest = s));
    socket.on('secureConnect', () => {
      resumed = socket.isSessionReused();
      socket.write(`GET ${url} HTTP/1.1\r\nhost: localhost\r\nconnection: ${keepOpen ? 'keep-alive' : 'close'}\r\n\r\n`);
    });
    socket.on('data', (d: Buffer) => {
      response += d.toString();
      if (keepOpen && response.includes('\r\n\r\nok')) done();
    });
    socket.on('error', () => {});
    socket.on('close', done);
  });
}
