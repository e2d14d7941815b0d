// A man in the middle between the meshless client and its server: a TLS-terminating proxy on
// loopback. Presenting a certificate from another CA, or a valid certificate of the same CA with
// another identity, it must be refused with a coded error, and must never receive one byte of the
// request (headers or body).
import assert from 'node:assert/strict';
import { codes, isMeshlessError, privateKeyPem, silentLogger } from '@meshless/core';
import { createTestCA, waitFor } from '@meshless/testing';
import { request } from 'undici';
import { createAgent, type MeshlessAgent, type ServerRefused } from '@meshless/http';
import { SERVER_ID, TD, clientTestEnv, rejectionOf } from '@meshless/fixtures/http-client';
import { startTlsProxy, type TlsProxy } from './fixtures.js';

const BODY = 'card=4111111111111111&amount=100';

describe('http client against a man in the middle', function () {
  const env = clientTestEnv();
  let agent: MeshlessAgent;
  let proxy: TlsProxy | undefined;
  let refused: ServerRefused[];

  beforeEach(function () {
    agent = createAgent({ source: env.pki.client, allow: SERVER_ID, logger: silentLogger });
    refused = [];
    agent.on('peerRefused', (e) => refused.push(e));
  });
  afterEach(async function () {
    await agent.close();
    await proxy?.close();
    proxy = undefined;
  });

  /** The proxy forwards to the real server as a legitimate client would (it holds a client cert). */
  const upstreamClient = () => ({ cert: env.pki.client.certPem, key: privateKeyPem(env.pki.client), ca: env.pki.client.bundlePem, checkServerIdentity: () => undefined });

  async function postThroughProxy(): Promise<Error & { code?: string }> {
    const requestsBefore = env.server.requests.length;
    const err = await rejectionOf(request(`https://localhost:${proxy!.port}/charge`, { dispatcher: agent, method: 'POST', body: BODY }));
    await waitFor(() => proxy!.connections() > 0 && proxy!.closed() === proxy!.connections(), 3000, 'the proxy connection to close');
    assert.equal(proxy!.bytesFromClients(), 0, 'the man in the middle received request bytes');
    assert.equal(env.server.requests.length, requestsBefore, 'the real server received a request');
    return err;
  }

  it('a proxy with a certificate from another CA, claiming the server identity: PEER_UNVERIFIED, no byte sent', async function () {
    const rogueCa = await createTestCA({ trustDomain: TD });
    const forged = await rogueCa.issue({ spiffeId: SERVER_ID, dnsNames: ['localhost'] });
    proxy = await startTlsProxy({ cert: forged.cert, key: forged.key, upstreamPort: env.server.port, upstreamClient: upstreamClient() });
    const err = await postThroughProxy();
    assert.ok(isMeshlessError(err, codes.PEER_UNVERIFIED), String(err));
    assert.ok(err.message.includes(SERVER_ID), err.message);
    assert.ok(err.message.includes(`https://localhost:${proxy.port}`), err.message);
    assert.equal(refused.length, 1);
    assert.equal(refused[0]!.failure, 'unverified');
  });

  it('a proxy with a valid certificate of the same CA but another identity: PEER_DENIED, no byte sent', async function () {
    const mitmId = `spiffe://${TD}/ns/edge/sa/proxy`;
    const valid = await env.pki.ca.issue({ spiffeId: mitmId, dnsNames: ['localhost'] });
    proxy = await startTlsProxy({ cert: valid.cert, key: valid.key, upstreamPort: env.server.port, upstreamClient: upstreamClient() });
    const err = await postThroughProxy();
    assert.ok(isMeshlessError(err, codes.PEER_DENIED), String(err));
    assert.ok(err.message.includes(mitmId), err.message);
    assert.ok(err.message.includes(`https://localhost:${proxy.port}`), err.message);
    assert.equal((err as { peer?: string }).peer, mitmId);
    assert.equal(refused[0]?.peer?.spiffeId, mitmId);
  });

  it('control: a proxy the rules allow does receive the request, so the byte count above is meaningful', async function () {
    const trusted = await env.pki.ca.issue({ spiffeId: SERVER_ID, dnsNames: ['localhost'] });
    proxy = await startTlsProxy({ cert: trusted.cert, key: trusted.key, upstreamPort: env.server.port, upstreamClient: upstreamClient() });
    const res = await request(`https://localhost:${proxy.port}/charge`, { dispatcher: agent, method: 'POST', body: BODY });
    await res.body.dump();
    assert.equal(res.statusCode, 200);
    assert.ok(proxy.bytesFromClients() > BODY.length, `the proxy saw ${proxy.bytesFromClients()} bytes`);
  });
});
