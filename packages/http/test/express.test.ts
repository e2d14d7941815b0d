import assert from 'node:assert/strict';
import https from 'node:https';
import express from 'express';
import { serverTlsOptions, staticSource, type Peer } from '@meshless/core';
import { createTestCA, recordingLogger } from '@meshless/testing';
import { createServer } from '@meshless/http';
import { healthHandler, mtls, requirePeer } from '@meshless/http/express';
import { BATCH_ID, FRONTEND_ID, TD, closeServer, createPki, get, keepAliveAgent, listen, type ClientCert, type Pki } from '@meshless/fixtures/http-server';

function app(log: (Peer | undefined)[]): express.Express {
  const a = express();
  a.use(mtls());
  a.get('/whoami', (req, res) => {
    log.push(req.peer);
    res.json({ peer: req.peer?.spiffeId ?? null });
  });
  a.get('/batch-only', requirePeer(`spiffe://${TD}/ns/batch/**`, { logger: recordingLogger() }), (req, res) => {
    res.json({ ok: true, peer: req.peer?.spiffeId });
  });
  a.get('/all-but-batch', requirePeer('*', { deny: BATCH_ID, logger: recordingLogger() }), (_req, res) => res.json({ ok: true }));
  return a;
}

describe('@meshless/http/express behind createServer', function () {
  let pki: Pki;
  let server: https.Server;
  let port: number;
  let seen: (Peer | undefined)[];
  before(async () => {
    pki = await createPki();
    seen = [];
    server = createServer({ source: pki.server, allow: [FRONTEND_ID, BATCH_ID], logger: recordingLogger() }, app(seen));
    port = await listen(server);
  });
  after(() => closeServer(server));

  it('sets req.peer on every request of a keep-alive connection', async () => {
    const agent = keepAliveAgent(pki.frontend);
    try {
      for (let i = 0; i < 5; i++) {
        const reply = await get(port, '/whoami', pki.frontend, agent);
        assert.equal(reply.status, 200);
        assert.deepEqual(JSON.parse(reply.body), { peer: FRONTEND_ID });
      }
    } finally {
      agent.destroy();
    }
    assert.equal(seen.length, 5);
    assert.ok(seen.every((p) => p === seen[0] && p?.spiffeId === FRONTEND_ID), 'one cached Peer for the connection');
  });

  it('requirePeer applies per-route policy: 403 with a small JSON body, naming no rule', async () => {
    const denied = await get(port, '/batch-only', pki.frontend);
    assert.equal(denied.status, 403);
    assert.match(String(denied.headers['content-type']), /^application\/json/);
    assert.deepEqual(JSON.parse(denied.body), { error: 'forbidden', code: 'MESHLESS_ERR_PEER_DENIED' });
    const allowed = await get(port, '/batch-only', pki.batch);
    assert.equal(allowed.status, 200);
    assert.deepEqual(JSON.parse(allowed.body), { ok: true, peer: BATCH_ID });
  });

  it('requirePeer honours deny rules', async () => {
    assert.equal((await get(port, '/all-but-batch', pki.frontend)).status, 200);
    const denied = await get(port, '/all-but-batch', pki.batch);
    assert.equal(denied.status, 403);
    assert.deepEqual(JSON.parse(denied.body), { error: 'forbidden', code: 'MESHLESS_ERR_PEER_DENIED' });
  });
});

describe('@meshless/http/express on a plain https server built with serverTlsOptions', function () {
  let pki: Pki;
  let stranger: ClientCert;
  let server: https.Server;
  let port: number;
  before(async () => {
    pki = await createPki();
    stranger = await (await createTestCA({ trustDomain: TD })).issue(FRONTEND_ID);
    const a = express();
    // requirePeer without mtls(): it looks the peer up itself.
    a.get('/frontend', requirePeer(FRONTEND_ID, { logger: recordingLogger() }), (req, res) => res.json({ peer: req.peer?.spiffeId }));
    a.use(mtls());
    a.get('/whoami', (req, res) => res.json({ peer: req.peer?.spiffeId ?? null }));
    a.get('/healthz', healthHandler(staticSource(pki.server)));
    // rejectUnauthorized: false only to show what the middleware does with an unverified client.
    server = https.createServer({ ...serverTlsOptions(pki.server), rejectUnauthorized: false }, a);
    port = await listen(server);
  });
  after(() => closeServer(server));

  it('mtls() computes req.peer from a verified socket', async () => {
    assert.deepEqual(JSON.parse((await get(port, '/whoami', pki.frontend)).body), { peer: FRONTEND_ID });
    assert.equal((await get(port, '/frontend', pki.frontend)).status, 200);
  });

  it('mtls() never sets a peer for a client whose certificate did not verify; requirePeer answers 401', async () => {
    const strangerClient = { ...stranger, ca: pki.ca.bundle };
    assert.deepEqual(JSON.parse((await get(port, '/whoami', strangerClient)).body), { peer: null });
    const refused = await get(port, '/frontend', strangerClient);
    assert.equal(refused.status, 401);
    assert.deepEqual(JSON.parse(refused.body), { error: 'unauthorized', code: 'MESHLESS_ERR_PEER_UNVERIFIED' });
    const anonymous = await get(port, '/frontend', { ca: pki.ca.bundle });
    assert.equal(anonymous.status, 401);
  });

  it('healthHandler works as Express middleware', async () => {
    const reply = await get(port, '/healthz', pki.frontend);
    assert.equal(reply.status, 200);
    assert.equal(JSON.parse(reply.body).state, 'fresh');
  });
});
