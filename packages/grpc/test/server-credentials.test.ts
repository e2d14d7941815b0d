import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import grpc from '@grpc/grpc-js';
import { isMeshlessError, codes, loadCredential, staticSource } from '@meshless/core';
import { channelCredentials, serverCredentials } from '@meshless/grpc';
import { handlerRuns } from '@meshless/fixtures/grpc-echo';
import { bidi, clientStream, closeAfterEach, echoClient, failure, serverStream, startServer, unary } from '@meshless/fixtures/grpc-harness';
import { CLIENT_ID, DENIED_ID, SERVER_ID, TD, createPki, type Pki } from '@meshless/fixtures/grpc-pki';
import { manualSource, recordingLogger, waitFor } from '@meshless/testing';

describe('@meshless/grpc serverCredentials', function () {
  let pki: Pki;
  const { clients, servers: open } = closeAfterEach();

  before(async () => {
    pki = await createPki();
  });

  async function serve(options: Partial<Parameters<typeof serverCredentials>[0]> = {}, serverOptions: grpc.ServerOptions = {}) {
    const logger = recordingLogger();
    const running = await startServer(serverCredentials({ source: loadCredential(pki.server), allow: CLIENT_ID, logger, ...options }), serverOptions);
    open.push(running);
    return { running, logger };
  }

  function client(target: string, issued = pki.client) {
    const c = echoClient(target, channelCredentials({ source: loadCredential(issued), allow: SERVER_ID, logger: recordingLogger() }));
    clients.push(c);
    return c;
  }

  it('serves an allowed client on unary, server-, client- and bidi-streaming calls, with its Peer in every handler', async () => {
    const { running } = await serve();
    const c = client(running.target);
    const u = await unary(c, 'unary', { text: 'hi' });
    assert.equal(u.peer, CLIENT_ID);
    assert.equal(u.serial, pki.client.serialNumber);
    assert.equal(u.text, 'hi');
    const s = await serverStream(c, { n: 3 });
    assert.deepEqual(s.map((m) => [m.peer, m.i]), [[CLIENT_ID, 0], [CLIENT_ID, 1], [CLIENT_ID, 2]]);
    const cs = await clientStream(c, [1, 2, 3]);
    assert.equal(cs.peer, CLIENT_ID);
    assert.equal(cs.total, 6);
    const b = await bidi(c, ['a', 'b']);
    assert.deepEqual(b.map((m) => [m.peer, m.text]), [[CLIENT_ID, 'A'], [CLIENT_ID, 'B']]);
  });

  it('refuses a verified but unlisted client with PERMISSION_DENIED on every kind of call, before any handler, and logs its identity once per connection', async () => {
    const { running, logger } = await serve();
    const c = client(running.target, pki.denied);
    const before = handlerRuns.count;
    const errors = [
      await failure(unary(c, 'unary', { text: 'x' })),
      await failure(serverStream(c, { n: 3 })),
      await failure(clientStream(c, [1, 2])),
      await failure(bidi(c, ['a'])),
    ];
    for (const err of errors) {
      assert.equal(err.code, grpc.status.PERMISSION_DENIED, err.message);
      assert.match(err.details, new RegExp(`${DENIED_ID} is not allowed`));
    }
    assert.equal(handlerRuns.count, before, 'no handler ran');
    const warns = logger.at('warn');
    assert.equal(warns.length, 1, JSON.stringify(warns));
    assert.equal(warns[0]!.obj.peer, DENIED_ID);
    assert.equal(warns[0]!.obj.status, 'PERMISSION_DENIED');
    assert.match(warns[0]!.msg, /matches no allow rule/);
  });

  it('names the deny rule that refused a client', async () => {
    const { running, logger } = await serve({ allow: `spiffe://${TD}/**`, deny: DENIED_ID });
    assert.equal((await unary(client(running.target), 'unary', {})).peer, CLIENT_ID);
    const err = await failure(unary(client(running.target, pki.denied), 'unary', {}));
    assert.equal(err.code, grpc.status.PERMISSION_DENIED);
    const warn = logger.at('warn')[0]!;
    assert.equal(warn.obj.rule, DENIED_ID);
    assert.equal(warn.obj.peer, DENIED_ID);
  });

  it('refuses, during the handshake, a client whose certificate comes from another CA, and a client without a certificate', async () => {
    const { running } = await serve({ allow: '*' });
    const before = handlerRuns.count;
    const other = await failure(unary(client(running.target, pki.otherCaClient), 'unary', {}));
    assert.equal(other.code, grpc.status.UNAVAILABLE, other.message);
    const anonymous = new (client(running.target).constructor as typeof grpc.Client)(running.target, grpc.credentials.createSsl(Buffer.from(pki.ca.bundle)), { 'grpc.use_local_subchannel_pool': 1 });
    clients.push(anonymous);
    const noCert = await failure(unary(anonymous as never, 'unary', {}));
    assert.equal(noCert.code, grpc.status.UNAVAILABLE, noCert.message);
    assert.equal(handlerRuns.count, before, 'no handler ran');
  });

  it('has the first generation loaded before bindAsync resolves: the very first connection succeeds, also on a second server bound later', async () => {
    const source = manualSource(pki.server);
    const credentials = serverCredentials({ source, allow: CLIENT_ID, logger: recordingLogger() });
    assert.equal(source.listenerCount('update'), 0, 'no subscription before a server listens');
    for (let round = 0; round < 2; round++) {
      const running = await startServer(credentials);
      assert.equal(source.listenerCount('update'), 1);
      const reply = await unary(client(running.target), 'unary', { text: String(round) });
      assert.equal(reply.text, String(round));
      for (const c of clients.splice(0)) c.close();
      await running.close();
      assert.equal(source.listenerCount('update'), 0, 'unsubscribed when the server closed');
    }
  });

  it('keeps the whole TLS policy after a rotation: a TLS 1.2 client is refused before and after', async () => {
    const source = manualSource(pki.server);
    const { running } = await serve({ source });
    const tls12 = () =>
      new Promise<string>((resolve) => {
        const socket = tls.connect({ host: 'localhost', port: running.port, servername: 'localhost', maxVersion: 'TLSv1.2', ALPNProtocols: ['h2'], ca: pki.ca.bundle, cert: pki.client.cert, key: pki.client.key });
        socket.once('secureConnect', () => {
          socket.destroy();
          resolve('connected');
        });
        socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
      });
    assert.notEqual(await tls12(), 'connected');
    const next = source.set(await pki.issueServer());
    assert.ok(!isMeshlessError(next));
    assert.notEqual(await tls12(), 'connected', 'a TLS 1.2 client got in after the rotation');
    // And TLS 1.3 still works, with the new certificate.
    const served = await new Promise<string>((resolve, reject) => {
      const socket = tls.connect({ host: 'localhost', port: running.port, servername: 'localhost', ALPNProtocols: ['h2'], ca: pki.ca.bundle, cert: pki.client.cert, key: pki.client.key });
      socket.once('secureConnect', () => {
        const serial = socket.getPeerX509Certificate()!.serialNumber;
        socket.destroy();
        resolve(serial);
      });
      socket.once('error', reject);
    });
    assert.equal(served, new X509Certificate(source.current().certPem).serialNumber);
  });

  it('reads the peer certificate once per connection, not per call; getAuthContext() is cached too', async () => {
    const { running } = await serve();
    const c = client(running.target);
    await unary(c, 'unary', {});
    const proto = tls.TLSSocket.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;
    const counts = { legacy: 0, x509: 0 };
    const legacy = proto.getPeerCertificate!;
    const x509 = proto.getPeerX509Certificate!;
    proto.getPeerCertificate = function (this: unknown, ...a: unknown[]) {
      counts.legacy++;
      return legacy.apply(this, a);
    };
    proto.getPeerX509Certificate = function (this: unknown, ...a: unknown[]) {
      counts.x509++;
      return x509.apply(this, a);
    };
    try {
      for (let i = 0; i < 50; i++) assert.equal((await unary(c, 'unary', {})).peer, CLIENT_ID);
    } finally {
      proto.getPeerCertificate = legacy;
      proto.getPeerX509Certificate = x509;
    }
    assert.deepEqual(counts, { legacy: 0, x509: 0 });
  });

  it('answers getAuthContext() in handlers with the client certificate', async () => {
    const logger = recordingLogger();
    const server = new grpc.Server();
    let raw: Buffer | undefined;
    server.addService(
      { ping: { path: '/t.Auth/Ping', requestStream: false, responseStream: false, requestSerialize: (b: Buffer) => b, requestDeserialize: (b: Buffer) => b, responseSerialize: (b: Buffer) => b, responseDeserialize: (b: Buffer) => b } } as never,
      {
        ping(call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) {
          const context = call.getAuthContext();
          raw = context.sslPeerCertificate?.raw;
          cb(null, Buffer.from(context.transportSecurityType ?? 'none'));
        },
      },
    );
    const port = await new Promise<number>((res, rej) => server.bindAsync('localhost:0', serverCredentials({ source: loadCredential(pki.server), allow: CLIENT_ID, logger }), (e, p) => (e ? rej(e) : res(p))));
    open.push({ close: async () => server.forceShutdown() });
    const Ping = grpc.makeGenericClientConstructor({ ping: { path: '/t.Auth/Ping', requestStream: false, responseStream: false, requestSerialize: (b: Buffer) => b, requestDeserialize: (b: Buffer) => b, responseSerialize: (b: Buffer) => b, responseDeserialize: (b: Buffer) => b } } as never, 'Auth');
    const c = new Ping(`localhost:${port}`, channelCredentials({ source: loadCredential(pki.client), allow: SERVER_ID }), { 'grpc.use_local_subchannel_pool': 1 }) as unknown as grpc.Client & { ping: Function };
    clients.push(c);
    const reply = await new Promise<Buffer>((res, rej) => c.ping(Buffer.from('x'), (e: Error | null, v: Buffer) => (e ? rej(e) : res(v))));
    assert.equal(reply.toString(), 'ssl');
    assert.ok(raw, 'sslPeerCertificate.raw is there');
    assert.equal(new X509Certificate(raw).serialNumber, pki.client.serialNumber);
  });

  it('retires a long-lived connection when the client certificate expires; later calls are refused (the expired certificate completes no new handshake)', async () => {
    // Since the connection is retired at notAfter (GOAWAY), a call after it cannot reach the old
    // connection (where the per-call check would answer UNAUTHENTICATED): it needs a new
    // handshake, which the expired certificate does not complete, so the call is UNAVAILABLE.
    const { running, logger } = await serve();
    const shortLived = await pki.ca.issue({ spiffeId: CLIENT_ID, ttlMs: 4000 }); // whole seconds: 3–4 s of life
    const c = client(running.target, shortLived);
    assert.equal((await unary(c, 'unary', {})).peer, CLIENT_ID);
    const notAfter = Date.parse(new X509Certificate(shortLived.cert).validTo);
    const retired = await waitFor(() => logger.at('info').find((l) => /client certificate expired; retiring/.test(l.msg)), 10_000, 'the connection to be retired at notAfter');
    assert.equal(retired.obj.peer, CLIENT_ID);
    assert.ok(Date.now() >= notAfter, 'retired at notAfter, not before');
    const err = await failure(unary(c, 'unary', {}));
    assert.ok(err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.UNAUTHENTICATED, `refused, got ${err.code}: ${err.details}`);
  });

  it('closes connections that never finish the TLS handshake after handshakeTimeoutMs (100 raw half-open sockets; issue 12.6)', async function () {
    this.timeout(20_000);
    const { running } = await serve({ handshakeTimeoutMs: 1000 });
    const sockets: net.Socket[] = [];
    const closed: Promise<void>[] = [];
    const opened = Date.now();
    try {
      for (let i = 0; i < 100; i++) {
        const socket = net.connect(running.port, '127.0.0.1');
        socket.on('error', () => {});
        // Half of them send the first bytes of a TLS handshake record, half send nothing.
        if (i % 2 === 0) socket.once('connect', () => socket.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01])));
        sockets.push(socket);
        closed.push(new Promise<void>((resolve) => socket.once('close', () => resolve())));
      }
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all(closed),
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`after 8 s, ${sockets.filter((s) => !s.destroyed).length} of 100 half-open connections are still open`)), 8000))),
      ]);
      clearTimeout(timer);
      const took = Date.now() - opened;
      assert.ok(took >= 900, `closed after ${took} ms, not before handshakeTimeoutMs`);
      // A real client still gets served.
      assert.equal((await unary(client(running.target), 'unary', {})).peer, CLIENT_ID);
    } finally {
      for (const s of sockets) s.destroy();
    }
  });

  it('bounds the TLS handshake by default, as createServer does (10 s; Node alone allows 120 s)', () => {
    const creds = serverCredentials({ source: loadCredential(pki.server), allow: CLIENT_ID, logger: recordingLogger() }) as unknown as { _getConstructorOptions(): { handshakeTimeout?: number } };
    assert.equal(creds._getConstructorOptions().handshakeTimeout, 10_000);
    assert.throws(() => serverCredentials({ source: loadCredential(pki.server), allow: '*', handshakeTimeoutMs: 0 }), (e: unknown) => isMeshlessError(e, codes.INVALID_OPTION));
  });

  it('renews session ticket keys with our own certificate: a client resuming across a leaf rotation gets a full handshake and the new certificate (issue 12.8)', async () => {
    const source = manualSource(pki.server);
    const { running } = await serve({ source });
    const connect = async (session?: Buffer): Promise<{ socket: tls.TLSSocket; session: Buffer }> => {
      const socket = tls.connect({ host: '127.0.0.1', port: running.port, servername: 'localhost', ALPNProtocols: ['h2'], cert: pki.client.cert, key: pki.client.key, ca: pki.client.ca, checkServerIdentity: () => undefined, ...(session ? { session } : {}) });
      socket.on('error', () => {});
      let ticket: Buffer | undefined;
      socket.on('session', (s: Buffer) => (ticket ??= s));
      await new Promise<void>((resolve, reject) => {
        socket.once('secureConnect', () => resolve());
        socket.once('close', () => reject(new Error('closed before secureConnect')));
      });
      if (!socket.isSessionReused()) await waitFor(() => ticket !== undefined, 3000, 'a session ticket');
      return { socket, session: ticket ?? session! };
    };
    const a = await connect();
    assert.equal(a.socket.getPeerCertificate().serialNumber.toUpperCase(), pki.server.serialNumber.toUpperCase());
    a.socket.destroy();
    const b = await connect(a.session);
    assert.equal(b.socket.isSessionReused(), true, 'resumes while our identity is unchanged');
    b.socket.destroy();
    const next = await pki.issueServer();
    assert.ok(!(source.set(next) instanceof Error));
    const c = await connect(b.session);
    assert.equal(c.socket.isSessionReused(), false, 'a session of the previous certificate does not resume');
    assert.equal(c.socket.getPeerCertificate().serialNumber.toUpperCase(), next.serialNumber.toUpperCase());
    c.socket.destroy();
  });

  it('checks its options at construction', () => {
    const source = staticSource(loadCredential(pki.server));
    assert.throws(() => serverCredentials({ source } as never), (e: unknown) => isMeshlessError(e, codes.INVALID_OPTION) && /allow/.test((e as Error).message));
    assert.throws(() => serverCredentials({ allow: '*' } as never), (e: unknown) => isMeshlessError(e, codes.INVALID_OPTION) && /source/.test((e as Error).message));
    assert.throws(() => serverCredentials({ source, allow: [] }), (e: unknown) => isMeshlessError(e, codes.EMPTY_ALLOW_LIST));
    assert.throws(() => serverCredentials({ source, allow: 'spiffe://td.example/a*' }), (e: unknown) => isMeshlessError(e, codes.INVALID_RULE));
    assert.throws(() => serverCredentials({ source, allow: '*', minVersion: 'TLSv1.1' }), (e: unknown) => isMeshlessError(e, codes.INVALID_OPTION));
  });
});
