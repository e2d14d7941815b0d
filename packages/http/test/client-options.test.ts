import assert from 'node:assert/strict';
import net from 'node:net';
import type { TLSSocket } from 'node:tls';
import { codes, isMeshlessError, silentLogger } from '@meshless/core';
import { getGlobalDispatcher, request, setGlobalDispatcher } from 'undici';
import { createAgent, type CreateAgentOptions, type MeshlessAgent } from '../src/index.js';
import { SERVER_ID, clientTestEnv, closeServer, listen, rejectionOf, startServer } from '@meshless/fixtures/http-client';

describe('createAgent: options, timeouts and the global dispatcher', function () {
  const env = clientTestEnv();

  it('refuses bad options at construction with coded errors', function () {
    const base = { source: env.pki.client, allow: SERVER_ID, logger: silentLogger };
    const cases: [Partial<CreateAgentOptions> & Record<string, unknown>, string, RegExp][] = [
      [{ allow: undefined }, codes.INVALID_OPTION, /needs \{ allow \}/],
      [{ source: undefined }, codes.INVALID_OPTION, /needs \{ source \}/],
      [{ allow: [] }, codes.EMPTY_ALLOW_LIST, /./],
      [{ allow: 'spiffe://Bad/x' }, codes.INVALID_RULE, /./],
      [{ allow: {} }, codes.EMPTY_ALLOW_LIST, /empty map/],
      [{ allow: { 'http://plain:80': SERVER_ID } }, codes.INVALID_OPTION, /not an https origin/],
      [{ allow: { 'https://a.example/path': SERVER_ID } }, codes.INVALID_OPTION, /more than an origin/],
      [{ allow: { 'https://a.example:443': SERVER_ID, 'https://a.example': SERVER_ID } }, codes.INVALID_OPTION, /twice/],
      [{ allow: { 'https://a.example': 'nonsense' } }, codes.INVALID_RULE, /https:\/\/a\.example/],
      [{ connect: { cert: 'x' } }, codes.INVALID_OPTION, /option `connect` is not accepted/],
      [{ factory: () => undefined }, codes.INVALID_OPTION, /option `factory` is not accepted/],
      [{ maxConnectionAgeMs: 0 }, codes.INVALID_OPTION, /maxConnectionAgeMs/],
      [{ maxCachedSessions: -1 }, codes.INVALID_OPTION, /maxCachedSessions/],
      [{ minVersion: 'TLSv1.1' }, codes.INVALID_OPTION, /minVersion/],
    ];
    for (const [patch, code, message] of cases) {
      assert.throws(
        () => createAgent({ ...base, ...patch } as CreateAgentOptions),
        (err: unknown) => isMeshlessError(err) && err.code === code && message.test(err.message),
        `expected ${code} for ${JSON.stringify(Object.keys(patch))}`,
      );
    }
  });

  it("maxVersion is applied: with minVersion and maxVersion 'TLSv1.2' the agent negotiates TLS 1.2", async function () {
    const tls12 = await startServer(env.pki.server, { minVersion: 'TLSv1.2' });
    tls12.handle((req, res) => res.end((req.socket as TLSSocket).getProtocol() ?? 'none'));
    const agent = createAgent({ source: env.pki.client, allow: SERVER_ID, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', logger: silentLogger });
    try {
      const res = await request(`${tls12.origin}/`, { dispatcher: agent });
      assert.equal(await res.body.text(), 'TLSv1.2');
    } finally {
      await agent.close();
      await tls12.close();
    }
  });

  it('a server that never finishes the handshake: HANDSHAKE_TIMEOUT after connectTimeout', async function () {
    const silent = net.createServer(() => {
      /* accepts TCP, never speaks TLS */
    });
    const port = await listen(silent);
    const agent = createAgent({ source: env.pki.client, allow: SERVER_ID, connectTimeout: 200, logger: silentLogger });
    try {
      const started = Date.now();
      const err = await rejectionOf(request(`https://localhost:${port}/`, { dispatcher: agent }));
      assert.ok(isMeshlessError(err, codes.HANDSHAKE_TIMEOUT), String(err));
      assert.ok(err.message.includes(`https://localhost:${port}`), err.message);
      assert.ok(Date.now() - started >= 190);
    } finally {
      await agent.close();
      silent.close();
      await closeServer(silent);
    }
  });

  it("a refused TCP connection is undici's own error, untouched", async function () {
    const probe = net.createServer();
    const port = await listen(probe);
    await closeServer(probe);
    const agent = createAgent({ source: env.pki.client, allow: SERVER_ID, logger: silentLogger });
    try {
      const err = await rejectionOf(request(`https://localhost:${port}/`, { dispatcher: agent }));
      assert.equal(err.code, 'ECONNREFUSED');
    } finally {
      await agent.close();
    }
  });

  it("setGlobalDispatcher(agent) drives undici's request and Node's built-in fetch", async function () {
    const previous = getGlobalDispatcher();
    const agent: MeshlessAgent = createAgent({ source: env.pki.client, allow: SERVER_ID, logger: silentLogger });
    setGlobalDispatcher(agent);
    try {
      const viaRequest = await request(`${env.server.origin}/global-request`);
      assert.equal(await viaRequest.body.text(), env.pki.client.identity.serialNumber);
      const viaFetch = await globalThis.fetch(`${env.server.origin}/global-fetch`);
      assert.equal(viaFetch.status, 200);
      assert.equal(await viaFetch.text(), env.pki.client.identity.serialNumber);
      assert.equal(env.server.requests.at(-1)!.url, '/global-fetch');
      assert.equal(agent.peerOf(env.server.origin)?.spiffeId, SERVER_ID);
    } finally {
      setGlobalDispatcher(previous);
      await agent.close();
    }
  });

  it("Node's built-in fetch through the agent refuses a denied server with the coded error as cause", async function () {
    const agent = createAgent({ source: env.pki.client, allow: 'spiffe://prod.example/ns/other/sa/x', logger: silentLogger });
    const previous = getGlobalDispatcher();
    setGlobalDispatcher(agent);
    try {
      const err = await rejectionOf(globalThis.fetch(`${env.server.origin}/denied`));
      assert.ok(err instanceof TypeError);
      assert.ok(isMeshlessError(err.cause, codes.PEER_DENIED), String(err.cause));
    } finally {
      setGlobalDispatcher(previous);
      await agent.close();
    }
  });
});
