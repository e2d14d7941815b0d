import assert from 'node:assert/strict';
import { silentLogger } from '@meshless/core';
import { request } from 'undici';
import { createAgent, type MeshlessAgent } from '../src/index.js';
import { SERVER_ID, clientTestEnv, credentialFor, startServer } from '@meshless/fixtures/http-client';
import { waitFor } from '@meshless/testing';

describe('createAgent: connection lifetime', function () {
  const env = clientTestEnv<MeshlessAgent>();

  it('maxConnectionAgeMs: an idle keep-alive connection is closed at its deadline, and the next request opens a new one', async function () {
    const maxAge = 300;
    env.agent = createAgent({ source: env.pki.client, allow: SERVER_ID, maxConnectionAgeMs: maxAge, logger: silentLogger });
    const before = env.server.connections.length;
    const res = await request(`${env.server.origin}/a`, { dispatcher: env.agent });
    await res.body.dump();
    const first = env.server.connections[before]!;
    await waitFor(() => first.closedAt !== undefined, 3000, 'the idle connection to close at its deadline');
    const age = first.closedAt! - first.openedAt;
    // Measured on the server, from its 'secureConnection' — which, under load, can fire tens of ms
    // after the client's 'secureConnect' that starts the deadline: allow that much slack.
    assert.ok(age >= maxAge - 100, `closed after ${age} ms, before its deadline of ${maxAge} ms`);
    assert.ok(age < maxAge + 1000, `closed after ${age} ms, long after its deadline of ${maxAge} ms`);
    const again = await request(`${env.server.origin}/b`, { dispatcher: env.agent });
    await again.body.dump();
    assert.equal(env.server.connections.length, before + 2);
    assert.equal(env.server.requests.at(-1)!.connection, env.server.connections[before + 1]);
  });

  it('maxConnectionAgeMs: a busy HTTP/1.1 connection finishes its request, and the queued one goes out on a new connection', async function () {
    const maxAge = 200;
    env.agent = createAgent({ source: env.pki.client, allow: SERVER_ID, maxConnectionAgeMs: maxAge, connections: 1, logger: silentLogger });
    let release: (() => void) | undefined;
    env.server.handle((req, res) => {
      if (req.url === '/slow') release = () => res.end('slow done');
      else res.end('fast');
    });
    try {
      const before = env.server.connections.length;
      const slow = request(`${env.server.origin}/slow`, { dispatcher: env.agent });
      await waitFor(() => release !== undefined, 3000, 'the slow request to reach the server');
      const conn = env.server.connections[before]!;
      // Past the deadline while the request runs; a second request queues behind it.
      await waitFor(() => Date.now() - conn.openedAt > maxAge + 50, 3000, 'the deadline to pass');
      const queued = request(`${env.server.origin}/queued`, { dispatcher: env.agent });
      release!();
      const slowRes = await slow;
      assert.equal(await slowRes.body.text(), 'slow done');
      const queuedRes = await queued;
      assert.equal(await queuedRes.body.text(), 'fast');
      const slowSeen = env.server.requests.find((r) => r.url === '/slow')!;
      const queuedSeen = env.server.requests.find((r) => r.url === '/queued')!;
      assert.equal(slowSeen.connection, conn);
      assert.notEqual(queuedSeen.connection, conn, 'no new request on a connection past its deadline');
      await waitFor(() => conn.closedAt !== undefined, 3000, 'the retired connection to close');
    } finally {
      env.server.handle((_req, res) => res.end('ok'));
    }
  });

  it("a connection does not outlive its server certificate's notAfter", async function () {
    const shortLived = await startServer(await credentialFor(env.pki.ca, SERVER_ID, { dnsNames: ['localhost'], ttlMs: 4000 })); // whole seconds: 3–4 s of life
    try {
      env.agent = createAgent({ source: env.pki.client, allow: SERVER_ID, logger: silentLogger });
      const res = await request(`${shortLived.origin}/`, { dispatcher: env.agent });
      await res.body.dump();
      const notAfter = env.agent.peerOf(shortLived.origin)!.notAfter.getTime();
      const conn = shortLived.connections[0]!;
      await waitFor(() => conn.closedAt !== undefined, 8000, 'the connection to close at the server certificate notAfter');
      assert.ok(conn.closedAt! >= notAfter - 20, `closed ${notAfter - conn.closedAt!} ms before the certificate expired`);
      assert.ok(conn.closedAt! < notAfter + 1000, `closed ${conn.closedAt! - notAfter} ms after the certificate expired`);
    } finally {
      await shortLived.close();
    }
  });
});
