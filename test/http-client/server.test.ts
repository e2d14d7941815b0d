// Both sides of meshless over HTTP: createAgent against createServer. Each side checks the other,
// on every connection, and each learns who the other is.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { silentLogger } from '@meshless/core';
import { request } from 'undici';
import { createAgent, createServer, peerOf, peerOfResponse, type MeshlessAgent, type MeshlessServer, type PeerRefusal, type ServerAllowed } from '@meshless/http';
import { CLIENT_ID, SERVER_ID, TD, closeServer, createClientPki, credentialFor, rejectionOf, type ClientPki } from '@meshless/fixtures/http-client';
import { manualSource, type ManualSource } from '@meshless/testing';

describe('http client against the meshless server (createServer)', function () {
  let pki: ClientPki;
  let server: MeshlessServer;
  let origin: string;
  let agent: MeshlessAgent | undefined;
  const seenBy: { peer: string | undefined; serial: string | undefined }[] = [];

  before(async function () {
    pki = await createClientPki();
    server = createServer({ source: pki.server, allow: CLIENT_ID, logger: silentLogger }, (req, res) => {
      const peer = peerOf(req);
      seenBy.push({ peer: peer?.spiffeId, serial: peer?.serialNumber });
      res.end(peer?.serialNumber ?? 'none');
    });
    server.keepAliveTimeout = 30_000;
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    origin = `https://localhost:${(server.address() as AddressInfo).port}`;
  });
  after(async function () {
    await closeServer(server);
  });
  afterEach(async function () {
    await agent?.close();
    agent = undefined;
  });

  it('each side verifies the other: the server knows our SPIFFE ID, we know its', async function () {
    agent = createAgent({ source: pki.client, allow: SERVER_ID, logger: silentLogger, peerContext: true });
    const res = await request(`${origin}/`, { dispatcher: agent });
    assert.equal(await res.body.text(), pki.client.identity.serialNumber);
    assert.equal(seenBy.at(-1)?.peer, CLIENT_ID);
    assert.equal(peerOfResponse(res)?.spiffeId, SERVER_ID);
  });

  it('sessions resume against createServer, and both sides check the resumed connection', async function () {
    agent = createAgent({ source: pki.client, allow: SERVER_ID, connections: 1, logger: silentLogger });
    const allowed: ServerAllowed[] = [];
    agent.on('peerAllowed', (e) => allowed.push(e));
    for (let i = 0; i < 2; i++) {
      const res = await request(`${origin}/r${i}`, { dispatcher: agent, reset: true });
      await res.body.dump();
    }
    assert.deepEqual(
      allowed.map((e) => e.resumed),
      [false, true],
    );
    assert.equal(seenBy.at(-1)?.peer, CLIENT_ID);
  });

  it('a client the server refuses: the request fails and the server reports our identity', async function () {
    const intruder = await credentialFor(pki.ca, `spiffe://${TD}/ns/batch/sa/job`);
    agent = createAgent({ source: intruder, allow: SERVER_ID, logger: silentLogger });
    const refusals: PeerRefusal[] = [];
    const onRefused = (r: PeerRefusal): void => void refusals.push(r);
    server.on('peerRefused', onRefused);
    try {
      const before = seenBy.length;
      const err = await rejectionOf(request(`${origin}/`, { dispatcher: agent }));
      assert.ok(err instanceof Error);
      assert.equal(seenBy.length, before, 'the refused client reached the request handler');
      assert.equal(refusals[0]?.peer?.spiffeId, `spiffe://${TD}/ns/batch/sa/job`);
    } finally {
      server.off('peerRefused', onRefused);
    }
  });

  it('a client rotation: the server sees the new certificate on the next request', async function () {
    const source = manualSource(pki.client);
    agent = createAgent({ source, allow: SERVER_ID, logger: silentLogger });
    const first = await request(`${origin}/`, { dispatcher: agent });
    assert.equal(await first.body.text(), pki.client.identity.serialNumber);
    const next = await credentialFor(pki.ca, CLIENT_ID, { generation: 2 });
    source.set(next);
    const second = await request(`${origin}/`, { dispatcher: agent });
    assert.equal(await second.body.text(), next.identity.serialNumber);
    assert.equal(seenBy.at(-1)?.serial, next.identity.serialNumber);
  });
});
