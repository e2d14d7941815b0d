import assert from 'node:assert/strict';
import diagnostics_channel from 'node:diagnostics_channel';
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { channels } from '@meshless/core';
import { meshless, requirePeer, serverFactory } from '@meshless/http/fastify';
import type { MeshlessServer, PeerRefusal } from '@meshless/http';
import { get, keepAliveAgent } from '@meshless/fixtures/http-server';
import { ADMIN_ALLOW, BATCH_ID, FRONTEND_ID, SERVER_ALLOW, conformance, createFrameworkPki, type Pkis } from './conformance.js';
import { recordingLogger } from '@meshless/testing';

async function startFastify(pki: Pkis, routes: 'config' | 'hook') {
  let handled = 0;
  const refusals: PeerRefusal[] = [];
  const logger = recordingLogger();
  const app = Fastify({ serverFactory: serverFactory({ source: pki.server, allow: SERVER_ALLOW, logger }) });
  (app.server as MeshlessServer).on('peerRefused', (r: PeerRefusal) => refusals.push(r));
  await app.register(meshless, { logger });
  app.get('/whoami', async (request) => {
    handled++;
    return { peer: request.peer?.spiffeId };
  });
  if (routes === 'config') {
    app.get('/admin', { config: { allow: ADMIN_ALLOW } }, async (request) => {
      handled++;
      return { peer: request.peer?.spiffeId };
    });
  } else {
    app.get('/admin', { onRequest: requirePeer(ADMIN_ALLOW, { logger }) }, async (request) => {
      handled++;
      return { peer: request.peer?.spiffeId };
    });
  }
  await app.listen({ port: 0, host: '127.0.0.1' });
  return {
    app,
    logger,
    port: (app.server.address() as AddressInfo).port,
    handled: () => handled,
    refusals: () => refusals,
    close: () => app.close(),
  };
}

conformance('Fastify 5 (route config)', (pki) => startFastify(pki, 'config'));
conformance('Fastify 5 (onRequest hook factory)', (pki) => startFastify(pki, 'hook'));

describe('@meshless/http/fastify details', function () {
  let pki: Pkis;
  before(async () => {
    pki = await createFrameworkPki();
  });

  it('config.deny refuses a peer that config.allow admits; the refusal is logged with the rule', async () => {
    const logger = recordingLogger();
    const app = Fastify({ serverFactory: serverFactory({ source: pki.server, allow: SERVER_ALLOW, logger }) });
    await app.register(meshless, { logger });
    app.get('/all-but-batch', { config: { allow: '*', deny: BATCH_ID } }, async (request) => ({ peer: request.peer?.spiffeId }));
    await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const port = (app.server.address() as AddressInfo).port;
      assert.equal((await get(port, '/all-but-batch', pki.frontend)).status, 200);
      const denied = await get(port, '/all-but-batch', pki.batch);
      assert.equal(denied.status, 403);
      assert.deepEqual(JSON.parse(denied.body), { error: 'forbidden', code: 'MESHLESS_ERR_PEER_DENIED' });
      const line = logger.entries.find((e) => e.obj.failure === 'denied');
      assert.equal(line?.obj.peer, BATCH_ID);
      assert.equal(line?.obj.path, '/all-but-batch');
    } finally {
      await app.close();
    }
  });

  it('with { dryRun: true }, a route rule lets a denied peer through and reports the would-be refusal', async () => {
    const logger = recordingLogger();
    const wouldDeny: unknown[] = [];
    const onWouldDeny = (message: unknown) => wouldDeny.push(message);
    diagnostics_channel.subscribe(channels.policyWouldDeny.name, onWouldDeny);
    const app = Fastify({ serverFactory: serverFactory({ source: pki.server, allow: SERVER_ALLOW, logger }) });
    await app.register(meshless, { logger, dryRun: true });
    app.get('/admin', { config: { allow: ADMIN_ALLOW } }, async (request) => ({ peer: request.peer?.spiffeId }));
    await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const reply = await get((app.server.address() as AddressInfo).port, '/admin', pki.batch);
      assert.equal(reply.status, 200, reply.body);
      assert.deepEqual(JSON.parse(reply.body), { peer: BATCH_ID });
      assert.equal((wouldDeny[0] as { scope?: string } | undefined)?.scope, 'route');
      assert.ok(logger.entries.some((e) => e.obj.dryRun === true && e.obj.peer === BATCH_ID), JSON.stringify(logger.entries));
    } finally {
      diagnostics_channel.unsubscribe(channels.policyWouldDeny.name, onWouldDeny);
      await app.close();
    }
  });

  it("requirePeer as a plugin-scope hook (app.addHook('onRequest', …)) guards only that scope's routes", async () => {
    const logger = recordingLogger();
    const app = Fastify({ serverFactory: serverFactory({ source: pki.server, allow: SERVER_ALLOW, logger }) });
    await app.register(meshless);
    app.get('/open', async (request) => ({ peer: request.peer?.spiffeId }));
    await app.register(async (scope) => {
      scope.addHook('onRequest', requirePeer(ADMIN_ALLOW, { logger }));
      scope.get('/ops/status', async (request) => ({ peer: request.peer?.spiffeId }));
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const port = (app.server.address() as AddressInfo).port;
      assert.equal((await get(port, '/open', pki.batch)).status, 200);
      assert.equal((await get(port, '/ops/status', pki.frontend)).status, 200);
      const denied = await get(port, '/ops/status', pki.batch);
      assert.equal(denied.status, 403);
      assert.deepEqual(JSON.parse(denied.body), { error: 'forbidden', code: 'MESHLESS_ERR_PEER_DENIED' });
    } finally {
      await app.close();
    }
  });

  it('an invalid route rule fails the route registration, naming the rule', async () => {
    const app = Fastify({ serverFactory: serverFactory({ source: pki.server, allow: SERVER_ALLOW }) });
    await app.register(meshless);
    assert.throws(() => app.get('/x', { config: { allow: 'spiffe://Bad Domain/x' } }, async () => 'x'), /MESHLESS_ERR|Bad Domain/);
    assert.throws(() => app.get('/y', { config: { deny: FRONTEND_ID } }, async () => 'y'), /config.deny needs config.allow/);
    await app.close();
  });

  it('without the meshless server (plain http), a route rule fails closed with 401', async () => {
    const app = Fastify();
    await app.register(meshless, { logger: recordingLogger() });
    app.get('/admin', { config: { allow: ADMIN_ALLOW } }, async () => 'secret');
    const reply = await app.inject({ method: 'GET', url: '/admin' });
    assert.equal(reply.statusCode, 401);
    assert.deepEqual(reply.json(), { error: 'unauthorized', code: 'MESHLESS_ERR_PEER_UNVERIFIED' });
    await app.close();
  });

  it('request.peer is the Peer cached on the connection (one object per keep-alive connection)', async () => {
    const seen: unknown[] = [];
    const app = Fastify({ serverFactory: serverFactory({ source: pki.server, allow: SERVER_ALLOW, logger: recordingLogger() }) });
    await app.register(meshless);
    app.get('/whoami', async (request) => {
      seen.push(request.peer);
      return { peer: request.peer?.spiffeId };
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const agent = keepAliveAgent(pki.frontend);
    try {
      const port = (app.server.address() as AddressInfo).port;
      for (let i = 0; i < 3; i++) assert.deepEqual(JSON.parse((await get(port, '/whoami', pki.frontend, agent)).body), { peer: FRONTEND_ID });
      assert.equal(seen.length, 3);
      assert.ok(seen.every((p) => p === seen[0]), 'the same frozen Peer object');
    } finally {
      agent.destroy();
      await app.close();
    }
  });
});
