// Issue 18: a trust change re-checks live connections in slices across event-loop turns. The
// guarantees of the synchronous review hold: every connection whose peer no longer verifies is
// refused on its next request (even before the sweep reaches it), none of the others is; a newer
// update supersedes a review in progress; requests on unaffected connections go on meanwhile.
// 300 real TLS connections on 127.0.0.1, each with its own client certificate (one verify each).
import assert from 'node:assert/strict';
import diagnostics_channel from 'node:diagnostics_channel';
import type { IncomingMessage, ServerResponse } from 'node:http';
import tls from 'node:tls';
import { channels, type Credential } from '@meshless/core';
import { createTestCA, manualSource, recordingLogger, type ManualSource, type TestCA, waitFor } from '@meshless/testing';
import { createServer, type MeshlessServer, type PeerRetirement } from '@meshless/http';
import { FRONTEND_ID, TD, closeServer, createPki, listen, nextEvent, serverCredential, type ClientCert, type Pki } from '@meshless/fixtures/http-server';

const PER_CA = 150;
const REQUEST = 'GET / HTTP/1.1\r\nHost: localhost\r\n\r\n';

/** A raw keep-alive TLS connection: send a request, read status lines as they come. */
interface Conn {
  socket: tls.TLSSocket;
  /** Which CA signed its client certificate. */
  ca: 'a' | 'b';
  statuses: number[];
  closed: boolean;
}

async function connect(port: number, client: ClientCert, ca: 'a' | 'b', serverCa: string): Promise<Conn> {
  const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', cert: client.cert, key: client.key, ca: serverCa, checkServerIdentity: () => undefined });
  const conn: Conn = { socket, ca, statuses: [], closed: false };
  let data = '';
  socket.setEncoding('utf8');
  socket.on('data', (d: string) => {
    data += d;
    for (const m of data.matchAll(/HTTP\/1\.1 (\d{3}) /g)) conn.statuses.push(Number(m[1]));
    // Keep only what follows the last status line (bodies are short and carry no status line).
    const last = data.lastIndexOf('HTTP/1.1 ');
    data = last >= 0 ? data.slice(last + 9) : data;
  });
  socket.on('error', () => {});
  socket.on('close', () => (conn.closed = true));
  await nextEvent(socket, 'secureConnect', 10_000);
  return conn;
}

/** Opens connections a few at a time (bounded concurrency). */
async function connectAll(port: number, clients: { client: ClientCert; ca: 'a' | 'b' }[], serverCa: string): Promise<Conn[]> {
  const out: Conn[] = [];
  for (let i = 0; i < clients.length; i += 25) {
    out.push(...(await Promise.all(clients.slice(i, i + 25).map((c) => connect(port, c.client, c.ca, serverCa)))));
  }
  return out;
}

interface Reviewed {
  connections: number;
  retired: number;
  slices: number;
  maxSliceMs: number;
  superseded: number;
}

describe('createServer: a trust change reviews live connections in slices (issue 18)', function () {
  this.timeout(60_000);
  let pki: Pki;
  let caB: TestCA;
  let clients: { client: ClientCert; ca: 'a' | 'b' }[];
  before(async () => {
    pki = await createPki();
    caB = await createTestCA({ trustDomain: TD });
    clients = [];
    for (let i = 0; i < PER_CA; i++) {
      const [a, b] = await Promise.all([pki.ca.issue(FRONTEND_ID), caB.issue(FRONTEND_ID)]);
      clients.push({ client: a, ca: 'a' }, { client: b, ca: 'b' });
    }
  });

  let source: ManualSource;
  let server: MeshlessServer;
  let port: number;
  let conns: Conn[];
  /** Remote ports of the connections whose requests reached the handler. */
  let handledFrom: Set<number>;
  let retirements: PeerRetirement[];
  let reviews: Reviewed[];
  const onReviewed = (message: unknown): void => {
    reviews.push(message as Reviewed);
  };
  beforeEach(async () => {
    conns = [];
    handledFrom = new Set();
    retirements = [];
    reviews = [];
    diagnostics_channel.subscribe(channels.connectionsReviewed.name, onReviewed);
    source = manualSource(await serverCredential(pki.ca, pki.ca.bundle + caB.bundle));
    server = createServer({ source, allow: [FRONTEND_ID], logger: recordingLogger() }, (req: IncomingMessage, res: ServerResponse) => {
      handledFrom.add(req.socket.remotePort!);
      res.end('ok');
    });
    server.on('peerRetired', (r) => retirements.push(r));
    let accepted = 0;
    server.on('secureConnection', () => accepted++);
    port = await listen(server);
    conns = await connectAll(port, clients, pki.ca.bundle);
    assert.equal(conns.length, 2 * PER_CA);
    // A TLS 1.3 client is connected before the server has its Finished: wait for the server's side.
    await waitFor(() => accepted === 2 * PER_CA, 10_000, 'the server to accept every connection');
  });
  afterEach(async () => {
    diagnostics_channel.unsubscribe(channels.connectionsReviewed.name, onReviewed);
    for (const c of conns) c.socket.destroy();
    await closeServer(server);
  });

  async function rotate(bundle: string): Promise<Credential> {
    const next = await serverCredential(pki.ca, bundle, source.current().generation + 1);
    source.set(next);
    return next;
  }

  /** Sends one request on every open connection; waits until each has an answer or closed. */
  async function requestOnAll(): Promise<void> {
    const before = new Map(conns.map((c) => [c, c.statuses.length]));
    for (const c of conns) if (!c.closed) c.socket.write(REQUEST);
    await waitFor(() => conns.every((c) => c.closed || c.statuses.length > before.get(c)!), 20_000, 'an answer (or a close) on every connection');
  }

  async function assertOnlyBRefused(): Promise<void> {
    // A refused connection may have its 401 before its close (the server ends it after the answer).
    await waitFor(() => conns.every((c) => c.ca === 'a' || c.closed), 5000, 'the connections of the removed CA to close');
    for (const c of conns) {
      if (c.ca === 'a') {
        assert.equal(c.closed, false, 'a connection whose peer still verifies stays open');
        assert.ok(c.statuses.every((s) => s === 200), `still-trusted connection answered ${c.statuses.join(',')}`);
      } else {
        assert.ok(c.closed, 'a connection whose peer no longer verifies is closed');
        assert.ok(c.statuses.slice(1).every((s) => s === 401), `refused with 401, got ${c.statuses.join(',')}`);
      }
    }
    assert.equal(retirements.length, PER_CA, 'exactly the connections signed by the removed CA are retired');
    assert.ok(retirements.every((r) => r.reason === 'trust-changed'));
  }

  it('retires every connection of the removed CA and no other, across several slices; requests sent at once are refused or served by the verdict under the new trust', async () => {
    await requestOnAll();
    assert.ok(conns.every((c) => c.statuses.join() === '200'), 'every connection served before the change');
    handledFrom.clear();
    await rotate(pki.ca.bundle);
    // Requests written right after the update reach the server before the sweep reaches most of
    // their connections: each is re-checked on the spot.
    await requestOnAll();
    await waitFor(() => reviews.length === 1, 20_000, 'the review to complete');
    await assertOnlyBRefused();
    for (const c of conns) if (c.ca === 'b') assert.ok(!handledFrom.has(c.socket.localPort!), 'a request on a connection of the removed CA reached the handler');
    const review = reviews[0]!;
    assert.equal(review.retired, PER_CA);
    assert.ok(review.connections <= 2 * PER_CA);
    console.log(`      review: ${review.connections} connections visited by the sweep in ${review.slices} slices, longest ${review.maxSliceMs.toFixed(2)} ms`);
    // One request more on the survivors: still served.
    await requestOnAll();
    for (const c of conns) if (c.ca === 'a') assert.equal(c.statuses.at(-1), 200);
  });

  it('serves requests on unaffected connections while a review is in progress', async () => {
    // The sweep yields between slices: keep one request at a time in flight on every CA-A
    // connection until the review completes, and count those answered before it did.
    let answeredDuring = 0;
    let reviewing = true;
    const survivors = conns.filter((c) => c.ca === 'a');
    const loops = survivors.map(async (c) => {
      for (let i = 0; i < 1_000 && reviewing; i++) {
        const n = c.statuses.length;
        c.socket.write(REQUEST);
        await waitFor(() => c.statuses.length > n || c.closed, 10_000, 'an answer');
        if (reviewing && c.statuses.at(-1) === 200) answeredDuring++;
      }
    });
    await rotate(pki.ca.bundle);
    await waitFor(() => reviews.length === 1, 20_000, 'the review to complete');
    reviewing = false;
    await Promise.all(loops);
    assert.ok(survivors.every((c) => !c.closed && c.statuses.every((s) => s === 200)), 'unaffected connections keep succeeding');
    await waitFor(() => conns.every((c) => c.ca === 'a' || c.closed), 10_000, 'the revoked idle connections to close');
    assert.equal(retirements.length, PER_CA);
    const review = reviews[0]!;
    console.log(`      ${answeredDuring} requests answered during the review (${review.slices} slices, longest ${review.maxSliceMs.toFixed(2)} ms)`);
    if (review.slices > 1) assert.ok(answeredDuring > 0, 'requests were answered between slices');
  });

  it('a second update during a review in progress wins: no verdict of the older trust is applied after it', async () => {
    // Trust change 1 drops CA B; as soon as it has retired one connection (mid-slice), trust
    // change 2 restores CA B. Only that one connection is retired; the other CA-B connections
    // are checked under the newest trust and keep being served.
    const next = await serverCredential(pki.ca, pki.ca.bundle + caB.bundle, source.current().generation + 2);
    let restored = false;
    server.once('peerRetired', () => {
      source.set(next);
      restored = true;
    });
    await rotate(pki.ca.bundle);
    await waitFor(() => restored && reviews.length === 1, 20_000, 'the newer review to complete');
    assert.equal(retirements.length, 1, `only the connection retired before the newer update is retired (got ${retirements.length})`);
    assert.equal(reviews[0]!.retired, 0, 'the newer review retires nothing');
    assert.ok(reviews[0]!.superseded >= 1, 'the older review was superseded');
    await requestOnAll();
    const closed = conns.filter((c) => c.closed);
    assert.equal(closed.length, 1);
    assert.equal(closed[0]!.ca, 'b');
    for (const c of conns) if (!c.closed) assert.equal(c.statuses.at(-1), 200);
  });

  it('a narrower update during a review in progress retires under the newest trust (no stale "still verifies")', async () => {
    // Review 1: CA A + B + an unrelated root (everyone still verifies). Review 2, one turn later
    // (after review 1's first slice): CA A only. Every CA-B connection is retired, no CA-A one.
    const other = await createTestCA({ trustDomain: TD });
    await rotate(pki.ca.bundle + caB.bundle + other.bundle);
    const narrower = await serverCredential(pki.ca, pki.ca.bundle, source.current().generation + 1);
    await new Promise<void>((resolve) => setImmediate(() => (source.set(narrower), resolve())));
    await waitFor(() => reviews.length >= 1 && retirements.length === PER_CA, 20_000, 'the CA-B connections to be retired');
    await requestOnAll();
    await assertOnlyBRefused();
  });
});
