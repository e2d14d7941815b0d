// Shared fixtures for the server and Express tests: a test PKI and small real-socket clients. No
// mocks of TLS. The hand-driven Source, waitFor and the recording logger are @meshless/testing's.
import { EventEmitter, once } from 'node:events';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import type { Server } from 'node:net';
import { loadCredential, type Credential } from '@meshless/core';
import { createTestCA, type TestCA } from '@meshless/testing';

export const TD = 'prod.example';
export const SERVER_ID = `spiffe://${TD}/ns/pay/sa/api`;
export const FRONTEND_ID = `spiffe://${TD}/ns/web/sa/frontend`;
export const BATCH_ID = `spiffe://${TD}/ns/batch/sa/job`;

export interface ClientCert {
  cert: string;
  key: string;
  ca: string;
  serialNumber: string;
}

/** A CA, a server credential for `localhost`, and client certificates. */
export interface Pki {
  ca: TestCA;
  server: Credential;
  frontend: ClientCert;
  batch: ClientCert;
}

export async function createPki(ca?: TestCA): Promise<Pki> {
  ca ??= await createTestCA({ trustDomain: TD });
  const [server, frontend, batch] = await Promise.all([
    ca.issue({ spiffeId: SERVER_ID, dnsNames: ['localhost'] }),
    ca.issue(FRONTEND_ID),
    ca.issue(BATCH_ID),
  ]);
  return { ca, server: loadCredential(server), frontend, batch };
}

/** Issues a fresh server credential from `ca`, trusting `bundle` (default: the CA's own). */
export async function serverCredential(ca: TestCA, bundle = ca.bundle, generation = 1): Promise<Credential> {
  const issued = await ca.issue({ spiffeId: SERVER_ID, dnsNames: ['localhost'] });
  return loadCredential({ cert: issued.cert, key: issued.key, ca: bundle }, { generation });
}

export async function listen(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** Closes a server, destroying whatever connections are left. */
export async function closeServer(server: https.Server): Promise<void> {
  if (!server.listening) return;
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** Resolves with the first emission of `event`, or rejects after `timeoutMs`. */
export async function nextEvent<T>(emitter: EventEmitter, event: string, timeoutMs: number): Promise<T> {
  const [value] = (await once(emitter, event, { signal: AbortSignal.timeout(timeoutMs) })) as [T];
  return value;
}

export interface Reply {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
  /** The client socket the response came on. */
  socket: tls.TLSSocket;
}

/** One HTTPS GET through `agent` (or a fresh connection), as a client with `client` material. */
export function get(port: number, path: string, client: Partial<ClientCert> & { ca: string }, agent?: https.Agent | false): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path,
        servername: 'localhost',
        cert: client.cert,
        key: client.key,
        ca: client.ca,
        agent: agent ?? false,
        checkServerIdentity: () => undefined,
      },
      (res) => {
        const socket = res.socket as tls.TLSSocket;
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers, socket }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** A keep-alive https.Agent with one socket, for a client with `client` material. */
export function keepAliveAgent(client: Partial<ClientCert> & { ca: string }): https.Agent {
  return new https.Agent({
    keepAlive: true,
    maxSockets: 1,
    cert: client.cert,
    key: client.key,
    ca: client.ca,
    servername: 'localhost',
    checkServerIdentity: () => undefined,
  });
}

/**
 * Opens a raw TLS connection and writes a request as soon as the handshake completes; resolves
 * with what came back before the socket closed (the empty string when refused).
 */
export function rawRequest(port: number, options: tls.ConnectionOptions, request = 'GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'): Promise<{ data: string; error?: string; socket: tls.TLSSocket }> {
  return new Promise((resolve) => {
    let data = '';
    let error: string | undefined;
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', checkServerIdentity: () => undefined, ...options }, () => {
      socket.write(request);
    });
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (data += d));
    socket.on('error', (e: Error & { code?: string }) => (error = e.code ?? e.message));
    socket.on('close', () => resolve(error === undefined ? { data, socket } : { data, error, socket }));
  });
}
