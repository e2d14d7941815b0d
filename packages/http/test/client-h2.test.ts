import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { serverTlsOptions, silentLogger } from '@meshless/core';
import { request } from 'undici';
import { createAgent, peerOfResponse, type MeshlessAgent } from '../src/index.js';
import { SERVER_ID, createClientPki, type ClientPki } from '@meshless/fixtures/http-client';
import { waitFor } from '@meshless/testing';

interface H2Server {
  server: http2.Http2SecureServer;
  origin: string;
  sessions: { socket: TLSSocket; openedAt: number; closedAt?: number }[];
  requests: { url: string; httpVersion: string; session: number }[];
  release: Map<string, () => void>;
}

async function startH2(pki: ClientPki): Promise<H2Server> {
  const state: Omit<H2Server, 'server' | 'origin'> = { sessions: [], requests: [], release: new Map() };
  const server = http2.createSecureServer({ ...serverTlsOptions(pki.server), allowHTTP1: true }, (req, res) => {
    const socket = req.socket as TLSSocket;
    const session = state.sessions.findIndex((s) => s.socket === socket || (req.stream?.session?.socket as unknown) === s.socket);
    state.requests.push({ url: req.url, httpVersion: req.httpVersion, session });
    const reply = () => res.end(`${req.httpVersion} ${socket.getPeerX509Certificate?.()?.serialNumber ?? ''}`);
    if (req.url.startsWith('/slow')) state.release.set(req.url, reply);
    else reply();
  });
  server.on('secureConnection', (socket: TLSSocket) => {
    const seen: H2Server['sessions'][number] = { socket, openedAt: Date.now() };
    state.sessions.push(seen);
    socket.once('close', () => (seen.closedAt = Date.now()));
  });
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  return { server, origin: `https://localhost:${(server.address() as AddressInfo).port}`, ...state };
}

describe('createAgent: HTTP/2', function () {
  let pki: ClientPki;
  let h2: H2Server;
  let agent: MeshlessAgent | undefined;

  before(async function () {
    pki = await createClientPki();
    h2 = await startH2(pki);
  });
  after(async function () {
    for (const s of h2.sessions) s.socket.destroy();
    await new Promise((r) => h2.server.close(r));
  });
  afterEach(async function () {
    await agent?.destroy();
    agent = undefined;
  });

  it('allowH2 reaches the connector: ALPN offers h2 and requests go over HTTP/2, verified', async function () {
    // undici runs one request per connection unless `pipelining` allows more streams.
    agent = createAgent({ source: pki.client, allow: SERVER_ID, allowH2: true, pipelining: 10, peerContext: true, logger: silentLogger });
    const res = await request(`${h2.origin}/h2`, { dispatcher: agent });
    const body = await res.body.text();
    assert.equal(body.split(' ')[0], '2.0');
    assert.equal(body.split(' ')[1], pki.client.identity.serialNumber);
    assert.equal(peerOfResponse(res)?.spiffeId, SERVER_ID);
    // Several concurrent requests share the one HTTP/2 connection (streams).
    const before = h2.sessions.length;
    await Promise.all(
      Array.from({ length: 5 }, async (_, i) => {
        const r = await request(`${h2.origin}/c${i}`, { dispatcher: agent });
        assert.equal((await r.body.text()).split(' ')[0], '2.0');
      }),
    );
    assert.equal(h2.sessions.length, before);
  });

  it('without allowH2 the same server answers over HTTP/1.1', async function () {
    agent = createAgent({ source: pki.client, allow: SERVER_ID, logger: silentLogger });
    const res = await request(`${h2.origin}/h1`, { dispatcher: agent });
    assert.equal((await res.body.text()).split(' ')[0], '1.1');
  });

  it('a busy HTTP/2 connection past maxConnectionAgeMs: new requests move to a new connection, its stream finishes, then it closes', async function () {
    const maxAge = 200;
    agent = createAgent({ source: pki.client, allow: SERVER_ID, allowH2: true, pipelining: 10, maxConnectionAgeMs: maxAge, logger: silentLogger });
    const before = h2.sessions.length;
    const slow = request(`${h2.origin}/slow-1`, { dispatcher: agent });
    await waitFor(() => h2.release.has('/slow-1'), 3000, 'the slow stream to reach the server');
    const first = h2.sessions[before]!;
    await waitFor(() => agent!.generation === 2, 3000, 'the agent to move new requests off the retiring HTTP/2 connection');
    const fresh = await request(`${h2.origin}/fresh`, { dispatcher: agent });
    assert.equal((await fresh.body.text()).split(' ')[0], '2.0');
    assert.equal(h2.sessions.length, before + 2, 'the new request opened a new connection');
    assert.equal(first.closedAt, undefined, 'the busy connection still serves its stream');
    h2.release.get('/slow-1')!();
    const slowRes = await slow;
    assert.equal(slowRes.statusCode, 200);
    assert.equal((await slowRes.body.text()).split(' ')[0], '2.0');
    await waitFor(() => first.closedAt !== undefined, 3000, 'the retired HTTP/2 connection to close once idle');
  });
});
