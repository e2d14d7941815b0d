// Issue 12, finding 1: a connection retired because its peer is no longer trusted (allow-list
// narrowed, bundle rotated so the client no longer verifies, client certificate past notAfter)
// gets no further request handled, and its in-flight response is cut after retireGraceMs.
// Attacks are HTTP/1.1 requests pipelined on a raw TLS socket behind a slow in-flight request.
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import tls from 'node:tls';
import express from 'express';
import { createTestCA, manualSource, type ManualSource, recordingLogger, type TestCA, waitFor } from '@meshless/testing';
import { createServer, type MeshlessServer, type PeerRetirement, type ServerOptions } from '@meshless/http';
import { mtls } from '@meshless/http/express';
import {
  BATCH_ID,
  FRONTEND_ID,
  TD,
  closeServer,
  createPki,
  listen,
  nextEvent,
  serverCredential,
  type ClientCert,
  type Pki,
} from '@meshless/fixtures/http-server';

const PIPELINED = 'POST /transfer?to=evil HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\nGET /secret HTTP/1.1\r\nHost: localhost\r\n\r\n';

/** A raw TLS connection that records everything the server sends. */
interface RawConnection {
  socket: tls.TLSSocket;
  data(): string;
  closed: Promise<void>;
}

async function rawConnection(port: number, client: ClientCert): Promise<RawConnection> {
  const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ...client, checkServerIdentity: () => undefined });
  let data = '';
  socket.setEncoding('utf8');
  socket.on('data', (d: string) => (data += d));
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await nextEvent(socket, 'secureConnect', 3000);
  return { socket, data: () => data, closed };
}

/** Status codes of the responses in a raw HTTP/1.1 byte stream, in order. */
function statuses(data: string): number[] {
  return [...data.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
}

/** Waits for a promise, failing after `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe('createServer: a retired connection gets no further request handled (issue 12.1)', function () {
  this.timeout(15_000);
  let pki: Pki;
  let newCa: TestCA;
  before(async () => {
    pki = await createPki();
    newCa = await createTestCA({ trustDomain: TD });
  });

  let servers: MeshlessServer[];
  beforeEach(() => (servers = []));
  afterEach(async () => {
    for (const s of servers) await closeServer(s);
  });

  /** Paths whose handler ran, a gate holding `/slow`, and retirements. */
  interface Harness {
    server: MeshlessServer;
    port: number;
    source: ManualSource;
    handled: string[];
    retirements: PeerRetirement[];
    release(): void;
  }

  async function start(options: Partial<ServerOptions> = {}, attach: 'listener' | 'later' | 'express' = 'listener'): Promise<Harness> {
    const source = manualSource(pki.server);
    const handled: string[] = [];
    let release!: () => void;
    const hold = new Promise<void>((resolve) => (release = resolve));
    const handler = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
      handled.push(req.url ?? '');
      if (req.url === '/slow') await hold;
      res.end('ok');
    };
    let listener: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
    if (attach === 'listener') listener = handler;
    if (attach === 'express') {
      const app = express();
      app.use(mtls());
      app.use((req, res) => void handler(req, res));
      listener = app;
    }
    const server = createServer({ source, allow: [FRONTEND_ID, BATCH_ID], logger: recordingLogger(), ...options }, listener);
    // A listener added after construction is gated too.
    if (attach === 'later') server.on('request', handler);
    servers.push(server);
    const retirements: PeerRetirement[] = [];
    server.on('peerRetired', (r) => retirements.push(r));
    return { server, port: await listen(server), source, handled, retirements, release };
  }

  /**
   * A slow request in flight, then `retire()`, then two pipelined requests on the same
   * connection. Returns the raw connection (closed) and what the server answered.
   */
  async function attack(h: Harness, client: ClientCert, retire: () => Promise<void> | void): Promise<{ conn: RawConnection; statuses: number[] }> {
    const conn = await rawConnection(h.port, client);
    conn.socket.write('GET /slow HTTP/1.1\r\nHost: localhost\r\n\r\n');
    await waitFor(() => h.handled.includes('/slow'), 3000, 'the slow request to reach its handler');
    await retire();
    await waitFor(() => h.retirements.length === 1, 3000, 'the retirement');
    conn.socket.write(PIPELINED);
    // Let the server see the pipelined bytes while /slow is still in flight, then finish /slow.
    await new Promise((r) => setImmediate(r));
    h.release();
    await within(conn.closed, 5000, 'the retired connection to close');
    return { conn, statuses: statuses(conn.data()) };
  }

  function assertRefused(h: Harness, result: { conn: RawConnection; statuses: number[] }, status: number, code: string): void {
    assert.deepEqual(h.handled, ['/slow'], 'no request after the retirement reached a handler');
    assert.equal(result.statuses[0], 200, 'the in-flight request finished within the grace');
    for (const s of result.statuses.slice(1)) assert.equal(s, status, `pipelined requests are refused, got ${result.statuses.join(',')}`);
    if (result.statuses.length > 1) {
      assert.match(result.conn.data(), new RegExp(`"code":"${code}"`));
      assert.match(result.conn.data(), /connection: close/i);
    }
  }

  it('setAllow narrowing: pipelined requests behind a slow one get 403, never a handler', async () => {
    const h = await start();
    const result = await attack(h, pki.batch, () => h.server.setAllow(FRONTEND_ID));
    assert.equal(h.retirements[0]!.reason, 'policy-changed');
    assert.equal(h.retirements[0]!.inFlight, 1);
    assertRefused(h, result, 403, 'MESHLESS_ERR_PEER_DENIED');
  });

  it('bundle rotation so the client no longer verifies: 401, also for a request listener added later', async () => {
    const h = await start({}, 'later');
    const result = await attack(h, pki.batch, async () => void h.source.set(await serverCredential(newCa, newCa.bundle, 2)));
    assert.equal(h.retirements[0]!.reason, 'trust-changed');
    assertRefused(h, result, 401, 'MESHLESS_ERR_PEER_UNVERIFIED');
  });

  it('Express (mtls() app) behind createServer: no route runs after setAllow refuses the peer', async () => {
    const h = await start({}, 'express');
    const result = await attack(h, pki.batch, () => h.server.setAllow(FRONTEND_ID));
    assertRefused(h, result, 403, 'MESHLESS_ERR_PEER_DENIED');
  });

  it('client certificate past notAfter: requests at or after notAfter get 401 MESHLESS_ERR_CERT_EXPIRED', async () => {
    const shortLived = await pki.ca.issue({ spiffeId: BATCH_ID, notAfter: new Date(Date.now() + 4000) }); // whole seconds: 3–4 s of life
    const h = await start();
    const result = await attack(h, shortLived, async () => {
      // The drain window starts before notAfter (graceful); wait for the clock to pass notAfter.
      await waitFor(() => h.retirements.length === 1, 5000, 'the planned retirement');
      const deadline = h.retirements[0]!.peer.notAfter.getTime();
      await waitFor(() => Date.now() > deadline + 20, 5000, 'notAfter to pass');
    });
    assert.equal(h.retirements[0]!.reason, 'certificate-expired');
    assertRefused(h, result, 401, 'MESHLESS_ERR_CERT_EXPIRED');
  });

  it('an upload in flight may finish: requests parsed behind it are refused by meshless (logged 403), not handled', async () => {
    const source = manualSource(pki.server);
    const handled: string[] = [];
    const logger = recordingLogger();
    const server = createServer({ source, allow: [FRONTEND_ID, BATCH_ID], logger }, (req, res) => {
      handled.push(req.url ?? '');
      let size = 0;
      req.on('data', (d: Buffer) => (size += d.length));
      req.on('end', () => res.end(`got ${size}`));
    });
    servers.push(server);
    const retirements: PeerRetirement[] = [];
    server.on('peerRetired', (r) => retirements.push(r));
    const port = await listen(server);
    const conn = await rawConnection(port, pki.batch);
    conn.socket.write('POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\n12345');
    await waitFor(() => handled.length === 1, 3000, 'the upload to reach its handler');
    server.setAllow(FRONTEND_ID);
    await waitFor(() => retirements.length === 1, 3000, 'the retirement');
    conn.socket.write('67890' + PIPELINED);
    await within(conn.closed, 5000, 'the retired connection to close');
    assert.deepEqual(handled, ['/upload']);
    const refused = logger.entries.filter((e) => e.msg === 'meshless server: refused a request on a retired connection');
    assert.deepEqual(refused.map((e) => [e.obj.path, e.obj.status, e.obj.code]), [
      ['/transfer?to=evil', 403, 'MESHLESS_ERR_PEER_DENIED'],
      ['/secret', 403, 'MESHLESS_ERR_PEER_DENIED'],
    ]);
    const seen = statuses(conn.data());
    assert.equal(seen[0], 200);
    assert.match(conn.data(), /got 10/);
    assert.deepEqual(seen.slice(1), seen.slice(1).map(() => 403));
    if (seen.length > 1) assert.match(conn.data(), /"code":"MESHLESS_ERR_PEER_DENIED"/);
  });

  it('an Upgrade request behind a slow one on a revoked connection never reaches an upgrade listener', async () => {
    const h = await start();
    let upgrades = 0;
    h.server.on('upgrade', (_req, socket) => {
      upgrades++;
      (socket as tls.TLSSocket).end('HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n');
    });
    const conn = await rawConnection(h.port, pki.batch);
    conn.socket.write('GET /slow HTTP/1.1\r\nHost: localhost\r\n\r\n');
    await waitFor(() => h.handled.includes('/slow'), 3000, 'the slow request to reach its handler');
    h.server.setAllow(FRONTEND_ID);
    await waitFor(() => h.retirements.length === 1, 3000, 'the retirement');
    conn.socket.write('GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n');
    await new Promise((r) => setImmediate(r));
    h.release();
    await within(conn.closed, 5000, 'the retired connection to close');
    assert.equal(upgrades, 0);
    assert.deepEqual(h.handled, ['/slow']);
    assert.doesNotMatch(conn.data(), /101 Switching/);
  });

  it('the in-flight response of a revoked connection is cut after retireGraceMs (a stream stops flowing)', async () => {
    const source = manualSource(pki.server);
    let chunks = 0;
    const server = createServer({ source, allow: [FRONTEND_ID, BATCH_ID], retireGraceMs: 300, logger: recordingLogger() }, (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      // A stream that would run for 20 s: bounded, and stopped when the response closes.
      const timer = setInterval(() => {
        if (++chunks >= 400 || res.destroyed) {
          clearInterval(timer);
          res.end();
        } else res.write('secret chunk\n');
      }, 50);
      res.on('close', () => clearInterval(timer));
    });
    servers.push(server);
    const port = await listen(server);
    const conn = await rawConnection(port, pki.batch);
    conn.socket.write('GET /stream HTTP/1.1\r\nHost: localhost\r\n\r\n');
    await waitFor(() => conn.data().includes('secret chunk'), 3000, 'the stream to start');
    const retiredAt = Date.now();
    server.setAllow(FRONTEND_ID);
    await within(conn.closed, 3000, 'the stream to be cut');
    const after = Date.now() - retiredAt;
    assert.ok(after >= 250, `cut after ${after} ms, not before the grace`);
    assert.ok(chunks < 400, 'the stream did not run to its end');
  });

  it('max-age stays graceful: a request during the drain is still handled, with Connection: close', async () => {
    const h = await start({ maxConnectionAgeMs: 1500 });
    const conn = await rawConnection(h.port, pki.frontend);
    conn.socket.write('GET /a HTTP/1.1\r\nHost: localhost\r\n\r\n');
    await waitFor(() => statuses(conn.data()).length === 1, 3000, 'the first response');
    await waitFor(() => h.retirements.length === 1, 3000, 'the drain to start');
    assert.equal(h.retirements[0]!.reason, 'max-age');
    conn.socket.write('GET /b HTTP/1.1\r\nHost: localhost\r\n\r\n');
    await within(conn.closed, 3000, 'the connection to close');
    assert.deepEqual(statuses(conn.data()), [200, 200]);
    assert.deepEqual(h.handled, ['/a', '/b']);
  });

  it('refuses retireGraceMs that is not a number of milliseconds ≥ 0', () => {
    assert.throws(() => createServer({ source: pki.server, allow: FRONTEND_ID, retireGraceMs: -1 }), { code: 'MESHLESS_ERR_INVALID_OPTION' });
  });
});
