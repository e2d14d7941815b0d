import assert from 'node:assert/strict';
import { silentLogger } from '@meshless/core';
import { request } from 'undici';
import { createAgent, type MeshlessAgent } from '../src/index.js';
import { SERVER_ID, createClientPki, credentialFor, startServer, type ClientPki, type TestServer } from '@meshless/fixtures/http-client';
import { waitFor } from '@meshless/testing';

describe('createAgent: connection lifetime', function () {
  let pki: ClientPki;
  let server: TestServer;
  let agent: MeshlessAgent | undefined;

  before(async function () {
    pki = await createClientPki();
    server = await startServer(pki.server);
  });
  after(async function () {
    await server.close();
  });
  afterEach(async function () {
    await agent?.close();
    agent = undefined;
  });

  it('maxConnectionAgeMs: an idle keep-alive connection is closed at its deadline, and the next request opens a new one', async function () {
    const maxAge = 300;
    agent = createAgent({ source: pki.client, allow: SERVER_ID, maxConnectionAgeMs: maxAge, logger: silentLogger });
    const before = server.connections.length;
    const res = await request(`${server.origin}/a`, { dispatcher: agent });
    await res.body.dump();
    const first = server.connections[before]!;
    await waitFor(() => first.closedAt !== undefined, 3000, 'the idle connection to close at its deadline');
    const age = first.closedAt! - first.openedAt;
    // Measured on the server, from its 'secureConnection' — which, under load, can fire tens of ms
    // after the client's 'secureConnect' that starts the deadline: allow that much slack.
    assert.ok(age >= maxAge - 100, `closed after ${age} ms, before its deadline of ${maxAge} ms`);
    assert.ok(age < maxAge + 1000, `closed after ${age} ms, long after its deadline of ${maxAge} ms`);
    const again = await request(`${server.origin}/b`, { dispatcher: agent });
    await again.body.dump();
    assert.equal(server.connections.length, before + 2);
    assert.equal(server.requests.at(-1)!.connection, server.connections[before + 1]);
  });

  it('maxConnectionAgeMs: a busy HTTP/1.1 connection finishes its request, and the queued one goes out on a new connection', async function () {
    const maxAge = 200;
    agent = createAgent({ source: pki.client, allow: SERVER_ID, maxConnectionAgeMs: maxAge, connections: 1, logger: silentLogger });
    let release: (() => void) | undefined;
    server.handle((req, res) => {
      if (req.url === '/slow') release = () => res.end('slow done');
      else res.end('fast');
    });
    try {
      const before = server.connections.length;
      const slow = request(`${server.origin}/slow`, { dispatcher: agent });
      await waitFor(() => release !== undefined, 3000, 'the slow request to reach the server');
      const conn = server.connections[before]!;
      // Past the deadline while the request runs; a second request queues behind it.
      await waitFor(() => Date.now() - conn.openedAt > maxAge + 50, 3000, 'the deadline to pass');
      const queued = request(`${server.origin}/queued`, { dispatcher: agent });
      release!();
      const slowRes = await slow;
      assert.equal(await slowRes.body.text(), 'slow done');
      const queuedRes = await queued;
      assert.equal(await queuedRes.body.text(), 'fast');
      const slowSeen = server.requests.find((r) => r.url === '/slow')!;
      const queuedSeen = server.requests.find((r) => r.url === '/queued')!;
      assert.equal(slowSeen.connection, conn);
      assert.notEqual(queuedSeen.connection, conn, 'no new request on a connection past its deadline');
      await waitFor(() => conn.closedAt !== undefined, 3000, 'the retired connection to close');
    } finally {
      server.handle((_req, res) => res.end('ok'));
    }
  });

  it("a connection does not outlive its server certificate's notAfter", async function () {
    const shortLived = await startServer(await credentialFor(pki.ca, SERVER_ID, { dnsNames: ['localhost'], ttlMs: 2000 }));
    try {
      agent = createAgent({ source: pki.client, allow: SERVER_ID, logger: silentLogger });
      const res = await request(`${shortLived.origin}/`, { dispatcher: agent });
      await res.body.dump();
      const notAfter = agent.peerOf(shortLived.origin)!.notAfter.getTime();
      const conn = shortLived.connections[0]!;
      await waitFor(() => conn.closedAt !== undefined, 4000, 'the connection to close at the server certificate notAfter');
      assert.ok(conn.closedAt! >= notAfter - 20, `closed ${notAfter - conn.closedAt!} ms before the certificate expired`);
      assert.ok(conn.closedAt! < notAfter + 1000, `closed ${conn.closedAt! - notAfter} ms after the certificate expired`);
    } finally {
      await shortLived.close();
    }
  });
});
