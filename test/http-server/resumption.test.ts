import assert from 'node:assert/strict';
import tls from 'node:tls';
import { createTestCA, manualSource, type ManualSource, recordingLogger, waitFor } from '@meshless/testing';
import { createServer, type MeshlessServer, type PeerRefusal, type PeerRetirement } from '@meshless/http';
import { FRONTEND_ID, TD, closeServer, createPki, listen, nextEvent, serverCredential, type Pki } from '@meshless/fixtures/http-server';

/**
 * A minimal keep-alive HTTP/1.1 client on one TLS connection (Node's tls client, session reuse
 * under our control): `get()` sends a request and resolves with the status line.
 */
class KeepAliveConnection {
  readonly socket: tls.TLSSocket;
  #buffer = '';
  #waiting: ((line: string) => void) | undefined;
  ticket: Buffer | undefined;
  constructor(socket: tls.TLSSocket) {
    this.socket = socket;
    socket.setEncoding('utf8');
    socket.on('session', (s: Buffer) => (this.ticket ??= s));
    socket.on('data', (d: string) => {
      this.#buffer += d;
      const end = this.#buffer.indexOf('\r\n\r\n');
      if (end === -1) return;
      const head = this.#buffer.slice(0, end);
      const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
      if (this.#buffer.length < end + 4 + length) return;
      this.#buffer = this.#buffer.slice(end + 4 + length);
      this.#waiting?.(head.split('\r\n')[0]!);
    });
  }
  static open(port: number, client: { cert: string; key: string; ca: string }, session?: Buffer): Promise<KeepAliveConnection> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ...client, ...(session ? { session } : {}) }, () => resolve(new KeepAliveConnection(socket)));
      socket.once('error', reject);
    });
  }
  get(): Promise<string> {
    return new Promise((resolve, reject) => {
      this.#waiting = resolve;
      this.socket.once('close', () => reject(new Error('connection closed before a response')));
      this.socket.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
    });
  }
}

describe('createServer: TLS session resumption across a CA rotation (Node tls client)', function () {
  let pki: Pki;
  let source: ManualSource;
  let server: MeshlessServer;
  let port: number;
  let handled: number;
  let refusals: PeerRefusal[];
  let retirements: PeerRetirement[];
  before(async () => {
    pki = await createPki();
    handled = 0;
    refusals = [];
    retirements = [];
    source = manualSource(pki.server);
    server = createServer({ source, allow: FRONTEND_ID, logger: recordingLogger() }, (_req, res) => {
      handled++;
      res.end('ok');
    });
    server.on('peerRefused', (r) => refusals.push(r));
    server.on('peerRetired', (r) => retirements.push(r));
    port = await listen(server);
  });
  after(() => closeServer(server));

  it('resumes, then after the bundle rotates to a new CA the next resumption fails and the live connections are retired', async () => {
    const newCa = await createTestCA({ trustDomain: TD });
    // The client trusts both roots, so any failure below is the server's doing.
    const client = { ...pki.frontend, ca: pki.ca.bundle + newCa.bundle };

    const full = await KeepAliveConnection.open(port, client);
    assert.equal(full.socket.isSessionReused(), false);
    assert.equal(await full.get(), 'HTTP/1.1 200 OK');
    await waitFor(() => full.ticket !== undefined, 3000, 'a session ticket');

    const resumed = await KeepAliveConnection.open(port, client, full.ticket);
    assert.equal(resumed.socket.isSessionReused(), true, 'the client resumes its session');
    assert.equal(await resumed.get(), 'HTTP/1.1 200 OK');
    assert.equal(await full.get(), 'HTTP/1.1 200 OK', 'keep-alive: the first connection is still serving');

    const bothClosed = Promise.all([nextEvent(full.socket, 'close', 5000), nextEvent(resumed.socket, 'close', 5000)]);
    source.set(await serverCredential(newCa, newCa.bundle, 2));
    await bothClosed;
    assert.equal(retirements.length, 2);
    assert.ok(retirements.every((r) => r.reason === 'trust-changed' && r.peer.spiffeId === FRONTEND_ID));

    const refusedBefore = refusals.length;
    const handledBefore = handled;
    const again = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ...client, session: full.ticket! });
    again.on('error', () => {});
    await nextEvent(again, 'secureConnect', 3000);
    assert.equal(again.isSessionReused(), false, 'the old ticket no longer resumes');
    again.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
    await nextEvent(again, 'close', 3000);
    await waitFor(() => refusals.length === refusedBefore + 1, 3000, 'the refusal');
    assert.equal(refusals[refusedBefore]!.failure, 'unverified', 'a full handshake with the old-CA certificate fails');
    assert.equal(handled, handledBefore);
  });
});
