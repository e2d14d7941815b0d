import assert from 'node:assert/strict';
import diagnostics_channel from 'node:diagnostics_channel';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { channels, codes, isMeshlessError, staticSource, type Peer } from '@meshless/core';
import { createTestCA, recordingLogger, type TestCA, waitFor } from '@meshless/testing';
import { createServer, peerOf, type MeshlessServer, type PeerRefusal } from '@meshless/http';
import { BATCH_ID, FRONTEND_ID, TD, closeServer, createPki, get, listen, nextEvent, rawRequest, type ClientCert, type Pki } from '@meshless/fixtures/http-server';

describe('createServer: only allowed peers reach the handler', function () {
  let pki: Pki;
  let other: TestCA;
  let otherClient: ClientCert;
  let expired: ClientCert;
  before(async () => {
    pki = await createPki();
    other = await createTestCA({ trustDomain: TD });
    otherClient = await other.issue(FRONTEND_ID);
    expired = await pki.ca.issue({ spiffeId: FRONTEND_ID, notBefore: new Date(Date.now() - 7_200_000), notAfter: new Date(Date.now() - 3_600_000) });
  });

  let server: MeshlessServer;
  let port: number;
  let handled: number;
  let peers: (Peer | undefined)[];
  let refusals: PeerRefusal[];
  let logger: ReturnType<typeof recordingLogger>;
  beforeEach(async () => {
    handled = 0;
    peers = [];
    refusals = [];
    logger = recordingLogger();
    server = createServer({ source: pki.server, allow: FRONTEND_ID, logger }, (req, res) => {
      handled++;
      peers.push(peerOf(req));
      res.end(`hello ${String(peerOf(req))}`);
    });
    server.on('peerRefused', (r) => refusals.push(r));
    port = await listen(server);
  });
  afterEach(() => closeServer(server));

  it('is a real https.Server serving an allowed client, with its peer cached on the socket', async () => {
    assert.ok(server instanceof https.Server);
    const reply = await get(port, '/', pki.frontend);
    assert.equal(reply.status, 200);
    assert.equal(reply.body, `hello ${FRONTEND_ID}`);
    assert.equal(reply.socket.getProtocol(), 'TLSv1.3');
    assert.equal(handled, 1);
    assert.equal(peers[0]?.spiffeId, FRONTEND_ID);
    assert.equal(peers[0]?.serialNumber, pki.frontend.serialNumber.toUpperCase());
    assert.equal(refusals.length, 0);
  });

  it('returns the same Peer object for every request on a connection (cached, not recomputed)', async () => {
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ...pki.frontend, servername: 'localhost', checkServerIdentity: () => undefined });
    try {
      for (let i = 0; i < 3; i++) assert.equal((await get(port, '/', pki.frontend, agent)).status, 200);
    } finally {
      agent.destroy();
    }
    assert.equal(handled, 3);
    assert.ok(peers[0] !== undefined && peers[0] === peers[1] && peers[1] === peers[2]);
  });

  it('closes a denied client before any request is parsed, and reports why', async () => {
    const seen: unknown[] = [];
    const onRefused = (message: unknown) => seen.push(message);
    diagnostics_channel.subscribe(channels.peerRefused.name, onRefused);
    try {
      const result = await rawRequest(port, { ...pki.batch });
      assert.equal(result.data, '', 'a denied client gets no HTTP response');
      await waitFor(() => refusals.length === 1, 2000, 'the peerRefused event');
    } finally {
      diagnostics_channel.unsubscribe(channels.peerRefused.name, onRefused);
    }
    assert.equal(handled, 0);
    const refusal = refusals[0]!;
    assert.equal(refusal.failure, 'denied');
    assert.equal(refusal.peer?.spiffeId, BATCH_ID);
    assert.equal(refusal.remoteAddress, '127.0.0.1');
    assert.ok(isMeshlessError(refusal.error, codes.PEER_DENIED));
    assert.match(refusal.reason, /matches no allow rule/);
    const log = logger.entries.find((e) => e.level === 'warn' && e.obj.failure === 'denied');
    assert.equal(log?.obj.peer, BATCH_ID);
    assert.equal(log?.obj.code, codes.PEER_DENIED);
    assert.equal(seen.length, 1);
    assert.equal((seen[0] as { failure: string }).failure, 'denied');
    assert.equal((seen[0] as { side: string }).side, 'server');
  });

  it('never runs the handler for denied clients that write their request with the handshake (40 tries)', async () => {
    for (let i = 0; i < 40; i++) {
      const result = await rawRequest(port, { ...pki.batch });
      assert.equal(result.data, '');
    }
    await waitFor(() => refusals.length === 40, 5000, '40 refusals');
    assert.equal(handled, 0);
  });

  it('names the presented identity of a client from another CA, and refuses it unverified', async () => {
    const result = await rawRequest(port, { ...otherClient, ca: pki.ca.bundle });
    assert.equal(result.data, '');
    await waitFor(() => refusals.length === 1, 2000, 'the refusal');
    assert.equal(handled, 0);
    assert.equal(refusals[0]!.failure, 'unverified');
    assert.equal(refusals[0]!.peer?.spiffeId, FRONTEND_ID);
    assert.match(refusals[0]!.reason, /does not verify/);
    assert.ok(isMeshlessError(refusals[0]!.error, codes.PEER_UNVERIFIED));
  });

  it('refuses an expired client certificate and a client without one', async () => {
    assert.equal((await rawRequest(port, { ...expired, ca: pki.ca.bundle })).data, '');
    assert.equal((await rawRequest(port, { ca: pki.ca.bundle })).data, '');
    await waitFor(() => refusals.length === 2, 2000, 'two refusals');
    assert.equal(handled, 0);
    assert.equal(refusals[0]!.failure, 'unverified');
    assert.match(refusals[0]!.reason, /CERT_HAS_EXPIRED/);
    assert.equal(refusals[1]!.failure, 'unverified');
    assert.equal(refusals[1]!.peer, undefined);
    assert.match(refusals[1]!.reason, /certificate/);
  });

  it('refuses a TLS 1.2-only client by default, during the handshake', async () => {
    const result = await rawRequest(port, { ...pki.frontend, maxVersion: 'TLSv1.2' });
    assert.equal(result.data, '');
    assert.match(result.error ?? '', /PROTOCOL_VERSION/);
    await waitFor(() => refusals.length === 1, 2000, 'the refusal');
    assert.equal(refusals[0]!.failure, 'handshake');
    assert.match(refusals[0]!.reason, /TLS version/);
    assert.equal(handled, 0);
  });

  it('cuts a handshake that never finishes (handshakeTimeoutMs)', async () => {
    const slow = createServer({ source: pki.server, allow: '*', handshakeTimeoutMs: 150, logger: recordingLogger() }, () => assert.fail('no request'));
    const slowRefusals: PeerRefusal[] = [];
    slow.on('peerRefused', (r) => slowRefusals.push(r));
    const slowPort = await listen(slow);
    try {
      const socket = net.connect(slowPort, '127.0.0.1');
      socket.on('error', () => {});
      const started = Date.now();
      await nextEvent(socket, 'close', 3000);
      assert.ok(Date.now() - started < 2000, 'closed by the handshake timeout');
      await waitFor(() => slowRefusals.length === 1, 2000, 'the timeout refusal');
      assert.equal(slowRefusals[0]!.failure, 'handshake-timeout');
      assert.ok(isMeshlessError(slowRefusals[0]!.error, codes.HANDSHAKE_TIMEOUT));
    } finally {
      await closeServer(slow);
    }
  });

  it('does not count a client that goes away before its handshake as a refusal', async () => {
    const socket = net.connect(port, '127.0.0.1', () => socket.destroy());
    await nextEvent(socket, 'close', 2000);
    await waitFor(() => logger.entries.some((e) => e.level === 'debug' && /went away/.test(e.msg ?? '')), 2000, 'the debug line');
    assert.equal(refusals.length, 0);
  });
});

describe('createServer: options', function () {
  let pki: Pki;
  before(async () => {
    pki = await createPki();
  });

  it('refuses options that would bypass the client check, naming the option', () => {
    for (const name of ['cert', 'key', 'ca', 'requestCert', 'rejectUnauthorized', 'SNICallback', 'pskCallback', 'ticketKeys', 'secureContext']) {
      assert.throws(
        () => createServer({ source: pki.server, allow: '*', [name]: name === 'rejectUnauthorized' ? false : 'x' } as never),
        (e: unknown) => isMeshlessError(e, codes.INVALID_OPTION) && e.field === name && e.message.includes(name),
        name,
      );
    }
  });

  it('requires source and allow; an empty allow-list is an error, not "allow all"', () => {
    assert.throws(() => createServer({ allow: '*' } as never), (e: unknown) => isMeshlessError(e, codes.INVALID_OPTION) && e.field === 'source');
    assert.throws(() => createServer({ source: pki.server } as never), (e: unknown) => isMeshlessError(e, codes.INVALID_OPTION) && e.field === 'allow');
    assert.throws(() => createServer({ source: pki.server, allow: [] }), (e: unknown) => isMeshlessError(e, codes.EMPTY_ALLOW_LIST));
    assert.throws(() => createServer({ source: pki.server, allow: '*', maxConnectionAgeMs: -1 }), (e: unknown) => isMeshlessError(e, codes.INVALID_OPTION) && e.field === 'maxConnectionAgeMs');
    assert.throws(() => createServer({ source: pki.server, allow: '*', minVersion: 'TLSv1.1' }), (e: unknown) => isMeshlessError(e, codes.INVALID_OPTION));
  });

  it('refuses ALPNProtocols offering h2 or anything but HTTP/1.x (an https server cannot speak it; h2 clients would fail), in every form', () => {
    const refused = (ALPNProtocols: unknown, name: string) =>
      assert.throws(
        () => createServer({ source: pki.server, allow: '*', ALPNProtocols } as never),
        (e: unknown) => isMeshlessError(e, codes.INVALID_OPTION) && e.field === 'ALPNProtocols' && e.message.includes(`"${name}"`) && e.message.includes('HTTP/1.1 only'),
        name,
      );
    refused(['h2', 'http/1.1'], 'h2');
    refused([Buffer.from('http/1.1'), Buffer.from('h2')], 'h2');
    refused(Buffer.from('\x02h2\x08http/1.1', 'latin1'), 'h2');
    refused(['spdy/3'], 'spdy/3');
    for (const ALPNProtocols of [['http/1.1'], ['http/1.1', 'http/1.0'], Buffer.from('\x08http/1.1', 'latin1')]) {
      assert.doesNotThrow(() => createServer({ source: pki.server, allow: '*', ALPNProtocols }).close());
    }
  });

  it('accepts a Source as well as a Credential, and exposes it', async () => {
    const source = staticSource(pki.server);
    const server = createServer({ source, allow: '*' });
    assert.equal(server.source, source);
    const fromCredential = createServer({ source: pki.server, allow: '*' });
    assert.equal(fromCredential.source.current(), pki.server);
  });

  it("accepts TLS 1.2 clients only when minVersion is 'TLSv1.2', with renegotiation still off", async () => {
    const server = createServer({ source: pki.server, allow: FRONTEND_ID, minVersion: 'TLSv1.2', logger: recordingLogger() }, (_req, res) => res.end('ok'));
    const port = await listen(server);
    try {
      const result = await rawRequest(port, { ...pki.frontend, maxVersion: 'TLSv1.2' });
      assert.match(result.data, /^HTTP\/1.1 200/);
      // A client-initiated renegotiation is refused (SSL_OP_NO_RENEGOTIATION): the cached peer cannot change.
      const socket = tls.connect({ host: '127.0.0.1', port, ...pki.frontend, maxVersion: 'TLSv1.2', checkServerIdentity: () => undefined });
      socket.on('error', () => {});
      await nextEvent(socket, 'secureConnect', 3000);
      assert.equal(socket.getProtocol(), 'TLSv1.2');
      const outcome = await new Promise<string>((resolve) => {
        socket.once('close', () => resolve('closed'));
        const started = socket.renegotiate({ rejectUnauthorized: false }, (err) => resolve(err ? `error ${(err as Error & { code?: string }).code ?? err.message}` : 'renegotiated'));
        if (!started) resolve('not started');
      });
      socket.destroy();
      assert.ok(outcome === 'closed' || outcome.startsWith('error'), outcome);
    } finally {
      await closeServer(server);
    }
  });

  it("maxVersion is TLS policy: with maxVersion 'TLSv1.2' a TLS 1.3 client negotiates TLS 1.2", async () => {
    const server = createServer({ source: pki.server, allow: FRONTEND_ID, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', logger: recordingLogger() }, (_req, res) => res.end('ok'));
    const port = await listen(server);
    try {
      const socket = tls.connect({ host: '127.0.0.1', port, ...pki.frontend, checkServerIdentity: () => undefined });
      socket.on('error', () => {});
      await nextEvent(socket, 'secureConnect', 3000);
      assert.equal(socket.getProtocol(), 'TLSv1.2');
      socket.destroy();
    } finally {
      await closeServer(server);
    }
  });

  it('passes https options it does not own to the server (keepAliveTimeout)', () => {
    const server = createServer({ source: pki.server, allow: '*', keepAliveTimeout: 1234 });
    assert.equal(server.keepAliveTimeout, 1234);
  });
});
