import assert from 'node:assert/strict';
import { codes, isMeshlessError, loadCredential, silentLogger, type Peer } from '@meshless/core';
import { createTestCA, manualSource, type ManualSource } from '@meshless/testing';
import { request } from 'undici';
import { createAgent, type MeshlessAgent, type ServerAllowed, type ServerRefused } from '../src/index.js';
import { OTHER_SERVER_ID, SERVER_ID, TD, clientTestEnv, rejectionOf, type TestServer } from '@meshless/fixtures/http-client';

/** One request on a fresh connection (`reset: true` makes undici close it after the response). */
async function oneConnection(agent: MeshlessAgent, server: TestServer): Promise<void> {
  const res = await request(`${server.origin}/`, { dispatcher: agent, reset: true });
  await res.body.dump();
}

describe('createAgent: TLS session resumption', function () {
  const env = clientTestEnv<MeshlessAgent>();
  let allowed: ServerAllowed[];
  let refused: ServerRefused[];

  const track = (a: MeshlessAgent): MeshlessAgent => {
    allowed = [];
    refused = [];
    a.on('peerAllowed', (e) => allowed.push(e));
    a.on('peerRefused', (e) => refused.push(e));
    return a;
  };

  it('the first connection is a full handshake, the next ones resume, and each one is verified', async function () {
    env.agent = track(createAgent({ source: env.pki.client, allow: SERVER_ID, connections: 1, logger: silentLogger }));
    const first = env.server.connections.length;
    for (let i = 0; i < 3; i++) await oneConnection(env.agent, env.server);
    const seen = env.server.connections.slice(first);
    assert.deepEqual(
      seen.map((c) => c.resumed),
      [false, true, true],
    );
    // Our verification ran on every connection, resumed ones included, with the Peer kept with the session.
    assert.deepEqual(
      allowed.map((e) => [e.resumed, e.peer.spiffeId]),
      [
        [false, SERVER_ID],
        [true, SERVER_ID],
        [true, SERVER_ID],
      ],
    );
    // The server saw our certificate on the resumed connections too.
    assert.ok(seen.every((c) => c.clientSerial === env.pki.client.identity.serialNumber));
  });

  it('a resumed session is re-checked against the rules: a rule that turns to deny refuses the resumed connection', async function () {
    let open = true;
    const gate = (peer: Peer): boolean => open && peer.spiffeId === SERVER_ID;
    env.agent = track(createAgent({ source: env.pki.client, allow: [gate], connections: 1, logger: silentLogger }));
    await oneConnection(env.agent, env.server);
    open = false;
    const before = env.server.requests.length;
    const err = await rejectionOf(oneConnection(env.agent, env.server));
    assert.ok(isMeshlessError(err, codes.PEER_DENIED), String(err));
    assert.ok(err.message.includes(SERVER_ID) && err.message.includes(env.server.origin), err.message);
    assert.equal(refused.length, 1);
    assert.equal(env.server.requests.length, before, 'no request reached the server on the refused resumed connection');
    // It was the resumed path that refused.
    assert.equal(refused[0]!.resumed, true);
    assert.equal(refused[0]!.peer?.spiffeId, SERVER_ID);
  });

  it('after setAllow no session resumes: the next connection is a full handshake, checked under the new rules', async function () {
    env.agent = track(createAgent({ source: env.pki.client, allow: SERVER_ID, connections: 1, logger: silentLogger }));
    await oneConnection(env.agent, env.server);
    await oneConnection(env.agent, env.server);
    assert.deepEqual(
      allowed.map((e) => e.resumed),
      [false, true],
    );
    env.agent.setAllow([SERVER_ID, OTHER_SERVER_ID]);
    assert.equal(env.agent.policyVersion, 2);
    const before = env.server.connections.length;
    await oneConnection(env.agent, env.server);
    assert.equal(env.server.connections[before]!.resumed, false, 'a session made under the old rules must not resume');
    assert.deepEqual(
      allowed.map((e) => e.resumed),
      [false, true, false],
    );

    env.agent.setAllow(OTHER_SERVER_ID);
    const err = await rejectionOf(oneConnection(env.agent, env.server));
    assert.ok(isMeshlessError(err, codes.PEER_DENIED), String(err));
    assert.equal(refused.at(-1)!.resumed, false, 'checked on a full handshake, not a resumed one');
  });

  it('after a trust bundle rotation no session resumes', async function () {
    const nextCa = await createTestCA({ trustDomain: TD });
    const issued = await env.pki.ca.issue(`spiffe://${TD}/ns/web/sa/frontend`);
    const source = manualSource(env.pki.client);
    env.agent = track(createAgent({ source, allow: SERVER_ID, connections: 1, logger: silentLogger }));
    await oneConnection(env.agent, env.server);
    await oneConnection(env.agent, env.server);
    // Same CA for the leaf, and the next CA's root added to the bundle (a CA rotation under way).
    source.set(loadCredential({ cert: issued.cert, key: issued.key, ca: env.pki.ca.bundle + nextCa.bundle }, { generation: 2 }));
    assert.equal(env.agent.generation, 2);
    const before = env.server.connections.length;
    await oneConnection(env.agent, env.server);
    assert.equal(env.server.connections[before]!.resumed, false);
    assert.equal(env.server.connections[before]!.clientSerial, issued.serialNumber);
    assert.deepEqual(
      allowed.map((e) => [e.resumed, e.generation]),
      [
        [false, 1],
        [true, 1],
        [false, 2],
      ],
    );
  });

  it('maxCachedSessions: 0 turns resumption off', async function () {
    env.agent = track(createAgent({ source: env.pki.client, allow: SERVER_ID, connections: 1, maxCachedSessions: 0, logger: silentLogger }));
    const before = env.server.connections.length;
    await oneConnection(env.agent, env.server);
    await oneConnection(env.agent, env.server);
    assert.deepEqual(
      env.server.connections.slice(before).map((c) => c.resumed),
      [false, false],
    );
  });
});
