// Fixtures for the client (createAgent) tests: a test PKI, plain Node https servers built from
// core's serverTlsOptions that record what they see per connection. Real sockets on 127.0.0.1,
// nothing mocked. The hand-driven Source, waitFor and the recording logger are @meshless/testing's.
import { once } from 'node:events';
import https from 'node:https';
import type { AddressInfo, Server } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { loadCredential, serverTlsOptions, type Credential } from '@meshless/core';
import { createTestCA, type TestCA } from '@meshless/testing';

export const TD = 'prod.example';
export const SERVER_ID = `spiffe://${TD}/ns/pay/sa/api`;
export const OTHER_SERVER_ID = `spiffe://${TD}/ns/ledger/sa/api`;
export const CLIENT_ID = `spiffe://${TD}/ns/web/sa/frontend`;

export interface ClientPki {
  ca: TestCA;
  server: Credential;
  client: Credential;
}

/** A CA, a server credential (SPIFFE ID + DNS `localhost`) and a client credential. */
export async function createClientPki(ca?: TestCA): Promise<ClientPki> {
  ca ??= await createTestCA({ trustDomain: TD });
  const [server, client] = await Promise.all([ca.issue({ spiffeId: SERVER_ID, dnsNames: ['localhost'] }), ca.issue(CLIENT_ID)]);
  return { ca, server: loadCredential(server), client: loadCredential(client) };
}

/** A fresh credential for `id` from `ca`, trusting `bundle` (default: the CA's). */
export async function credentialFor(ca: TestCA, id: string, options: { bundle?: string; generation?: number; ttlMs?: number; dnsNames?: string[] } = {}): Promise<Credential> {
  const issued = await ca.issue({ spiffeId: id, ...(options.dnsNames ? { dnsNames: options.dnsNames } : {}), ...(options.ttlMs ? { ttlMs: options.ttlMs } : {}) });
  return loadCredential({ cert: issued.cert, key: issued.key, ca: options.bundle ?? issued.ca }, { generation: options.generation ?? 1 });
}

/** One TLS connection as the test server saw it. */
export interface SeenConnection {
  readonly socket: TLSSocket;
  readonly resumed: boolean;
  /** Serial of the client certificate presented on this connection. */
  readonly clientSerial: string | undefined;
  readonly openedAt: number;
  closedAt?: number;
}

/** One request as the test server saw it. */
export interface SeenRequest {
  readonly at: number;
  readonly method: string;
  readonly url: string;
  readonly httpVersion: string;
  readonly clientSerial: string | undefined;
  readonly connection: SeenConnection;
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** An https server with mTLS from `serverTlsOptions`, recording every connection and request. */
export interface TestServer {
  readonly server: https.Server;
  readonly port: number;
  /** `https://localhost:<port>` */
  readonly origin: string;
  readonly connections: SeenConnection[];
  readonly requests: SeenRequest[];
  /** Replaces the request handler (default: 200 with the client serial as body). */
  handle(handler: Handler): void;
  close(): Promise<void>;
}

const defaultHandler: Handler = (req, res) => {
  const socket = req.socket as TLSSocket;
  res.setHeader('content-type', 'text/plain');
  res.end(socket.getPeerX509Certificate()?.serialNumber ?? 'none');
};

export async function startServer(credential: Credential, options: https.ServerOptions = {}): Promise<TestServer> {
  const connections: SeenConnection[] = [];
  const requests: SeenRequest[] = [];
  const bySocket = new WeakMap<TLSSocket, SeenConnection>();
  let handler: Handler = defaultHandler;
  const server = https.createServer({ ...serverTlsOptions(credential), ...options }, (req, res) => {
    const socket = req.socket as TLSSocket;
    const connection = bySocket.get(socket)!;
    requests.push({ at: Date.now(), method: req.method ?? '', url: req.url ?? '', httpVersion: req.httpVersion, clientSerial: connection?.clientSerial, connection });
    handler(req, res);
  });
  server.keepAliveTimeout = 30_000;
  server.on('secureConnection', (socket: TLSSocket) => {
    const seen: SeenConnection = { socket, resumed: socket.isSessionReused(), clientSerial: socket.getPeerX509Certificate()?.serialNumber, openedAt: Date.now() };
    connections.push(seen);
    bySocket.set(socket, seen);
    socket.once('close', () => (seen.closedAt = Date.now()));
  });
  const port = await listen(server);
  return {
    server,
    port,
    origin: `https://localhost:${port}`,
    connections,
    requests,
    handle(h) {
      handler = h;
    },
    close: () => closeServer(server),
  };
}

export async function listen(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** Closes a server, destroying whatever connections are left. */
export async function closeServer(server: Server & { closeAllConnections?: () => void }): Promise<void> {
  if (!server.listening) return;
  server.closeAllConnections?.();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** Resolves with the rejection of `promise`; fails the test if it resolves. */
export async function rejectionOf(promise: Promise<unknown>): Promise<Error & { code?: string; cause?: unknown }> {
  try {
    await promise;
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected a rejection, but the promise resolved');
}

