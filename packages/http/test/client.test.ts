import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pipeline as pipelineAsync } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { codes, isMeshlessError, staticSource } from '@meshless/core';
import { fetch, pipeline, request, stream } from 'undici';
import { createAgent, peerOfResponse, type MeshlessAgent } from '../src/index.js';
import { CLIENT_ID, SERVER_ID, clientTestEnv, rejectionOf } from '@meshless/fixtures/http-client';

describe('createAgent: requests through undici', function () {
  const env = clientTestEnv();
  let agent: MeshlessAgent;

  beforeEach(function () {
    agent = createAgent({ source: env.pki.client, allow: SERVER_ID, peerContext: true });
  });
  afterEach(async function () {
    await agent.close();
  });

  it('request(): the server sees our certificate, and peerOfResponse names the server', async function () {
    const res = await request(`${env.server.origin}/hello`, { dispatcher: agent });
    assert.equal(res.statusCode, 200);
    assert.equal(await res.body.text(), env.pki.client.identity.serialNumber);
    const peer = peerOfResponse(res);
    assert.equal(peer?.spiffeId, SERVER_ID);
    assert.equal(peer?.serialNumber, env.pki.server.identity.serialNumber);
    assert.equal(agent.peerOf(env.server.origin)?.spiffeId, SERVER_ID);
    assert.equal(agent.peerOf(`${env.server.origin}/any/path`)?.spiffeId, SERVER_ID);
  });

  it('agent.request(), fetch(), stream() and pipeline() all go through the verified connection', async function () {
    const viaMethod = await agent.request({ origin: env.server.origin, path: '/m', method: 'GET' });
    assert.equal(await viaMethod.body.text(), env.pki.client.identity.serialNumber);

    const viaFetch = await fetch(`${env.server.origin}/f`, { dispatcher: agent });
    assert.equal(viaFetch.status, 200);
    assert.equal(await viaFetch.text(), env.pki.client.identity.serialNumber);

    const chunks: Buffer[] = [];
    let streamPeer: string | undefined;
    await stream(`${env.server.origin}/s`, { dispatcher: agent, method: 'GET' }, (data) => {
      streamPeer = peerOfResponse(data)?.spiffeId;
      return new Writable({
        write(chunk: Buffer, _enc, cb) {
          chunks.push(chunk);
          cb();
        },
      });
    });
    assert.equal(Buffer.concat(chunks).toString(), env.pki.client.identity.serialNumber);
    assert.equal(streamPeer, SERVER_ID);

    let pipelinePeer: string | undefined;
    const out: Buffer[] = [];
    await pipelineAsync(
      Readable.from([]),
      pipeline(`${env.server.origin}/p`, { dispatcher: agent, method: 'GET' }, (data) => {
        pipelinePeer = peerOfResponse(data)?.spiffeId;
        return data.body;
      }),
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          out.push(chunk);
          cb();
        },
      }),
    );
    assert.equal(Buffer.concat(out).toString(), env.pki.client.identity.serialNumber);
    assert.equal(pipelinePeer, SERVER_ID);
    assert.deepEqual(
      env.server.requests.slice(-4).map((r) => r.url),
      ['/m', '/f', '/s', '/p'],
    );
  });

  it('keeps connections alive: with connections: 1, ten sequential requests use one connection', async function () {
    await agent.close();
    agent = createAgent({ source: env.pki.client, allow: SERVER_ID, connections: 1 });
    const before = env.server.connections.length;
    for (let i = 0; i < 10; i++) {
      const res = await request(`${env.server.origin}/k${i}`, { dispatcher: agent });
      await res.body.dump();
    }
    assert.equal(env.server.connections.length - before, 1);
    assert.equal(agent.stats[env.server.origin]?.connected, 1);
  });

  it('the shortcut to the last origin\'s pool never outlives it: after the server drops the connection a new one is made; after close() requests are refused', async function () {
    await agent.close();
    agent = createAgent({ source: env.pki.client, allow: SERVER_ID, connections: 1 });
    const before = env.server.connections.length;
    const first = await request(`${env.server.origin}/s1`, { dispatcher: agent });
    await first.body.dump();
    // The server ends the idle connection: undici's Agent lets that origin's pool go (and closes it).
    const disconnected = new Promise((resolve) => agent.once('disconnect', resolve));
    env.server.connections[before]!.socket.end();
    await disconnected;
    const second = await request(`${env.server.origin}/s2`, { dispatcher: agent });
    assert.equal(second.statusCode, 200);
    await second.body.dump();
    assert.equal(env.server.connections.length - before, 2, 'the second request went out on a new connection');
    await agent.close();
    await assert.rejects(request(`${env.server.origin}/s3`, { dispatcher: agent }), (err: Error) => err.name === 'ClientClosedError' || err.name === 'ClientDestroyedError');
    assert.equal(env.server.connections.length - before, 2);
  });

  it('accepts a Source as well as a Credential, and reports each verified connection', async function () {
    await agent.close();
    agent = createAgent({ source: staticSource(env.pki.client), allow: [SERVER_ID] });
    const seen: { origin: string; peer: string; resumed: boolean }[] = [];
    agent.on('peerAllowed', (e) => seen.push({ origin: e.origin, peer: String(e.peer), resumed: e.resumed }));
    const res = await request(`${env.server.origin}/`, { dispatcher: agent });
    await res.body.dump();
    assert.deepEqual(seen, [{ origin: env.server.origin, peer: SERVER_ID, resumed: false }]);
    assert.equal(agent.credential.identity.spiffeId, CLIENT_ID);
    assert.equal(agent.generation, 1);
  });

  it('refuses http:// origins with a coded error: the agent speaks TLS only', async function () {
    const err = await rejectionOf(request(`http://127.0.0.1:${env.server.port}/`, { dispatcher: agent }));
    assert.ok(isMeshlessError(err, codes.PLAINTEXT_REFUSED), String(err));
    assert.match(err.message, /TLS connections only/);
    assert.match(err.message, /plaintextOrigins/);
  });
});
