import assert from 'node:assert/strict';
import grpc from '@grpc/grpc-js';
import { codes, isMeshlessError, loadCredential, privateKeyPem } from '@meshless/core';
import { authorizeMethods, channelCredentials, serverCredentials } from '@meshless/grpc';
import { handlerRuns } from '@meshless/fixtures/grpc-echo';
import { adminClient, bidi, clientStream, closeAfterEach, echoClient, failure, isolated, serverStream, startServer, unary } from '@meshless/fixtures/grpc-harness';
import { ADMIN_ID, CLIENT_ID, DENIED_ID, SERVER_ID, TD, createPki, type Pki } from '@meshless/fixtures/grpc-pki';
import { recordingLogger } from '@meshless/testing';

describe('@meshless/grpc authorizeMethods', function () {
  let pki: Pki;
  const { clients, servers: open } = closeAfterEach();

  before(async () => {
    pki = await createPki();
  });

  function creds(issued = pki.client) {
    return channelCredentials({ source: loadCredential(issued), allow: SERVER_ID, logger: recordingLogger() });
  }

  async function serve(methods: Parameters<typeof authorizeMethods>[0]) {
    const logger = recordingLogger();
    const methodLogger = recordingLogger();
    const running = await startServer(serverCredentials({ source: loadCredential(pki.server), allow: [CLIENT_ID, ADMIN_ID], logger }), {
      interceptors: [authorizeMethods(methods, { logger: methodLogger })],
    });
    open.push(running);
    return { running, logger, methodLogger };
  }

  it('applies exact-method rules over service rules, on every kind of call, and refuses unlisted methods', async () => {
    const { running, methodLogger } = await serve({
      '/meshless.test.Admin/Reset': ADMIN_ID,
      '/meshless.test.Admin/*': [CLIENT_ID, ADMIN_ID],
      '/meshless.test.Echo/Unary': '*',
      '/meshless.test.Echo/Count': ADMIN_ID,
      '/meshless.test.Echo/Chat': CLIENT_ID,
      // /meshless.test.Echo/Sum is not listed: closed.
    });
    const asClient = { echo: echoClient(running.target, creds()), admin: adminClient(running.target, creds()) };
    const asAdmin = { echo: echoClient(running.target, creds(pki.admin)), admin: adminClient(running.target, creds(pki.admin)) };
    clients.push(asClient.echo, asClient.admin, asAdmin.echo, asAdmin.admin);

    assert.equal((await unary(asClient.admin, 'status', {})).peer, CLIENT_ID);
    assert.equal((await unary(asAdmin.admin, 'reset', {})).peer, ADMIN_ID);
    const before = handlerRuns.count;
    const reset = await failure(unary(asClient.admin, 'reset', {}));
    assert.equal(reset.code, grpc.status.PERMISSION_DENIED);
    assert.match(reset.details, /spiffe:\/\/td\.example\/ns\/web\/sa\/client is not allowed to call \/meshless\.test\.Admin\/Reset/);
    assert.equal(handlerRuns.count, before, 'the refused handler never ran');

    assert.equal((await unary(asClient.echo, 'unary', {})).peer, CLIENT_ID);
    assert.equal((await failure(serverStream(asClient.echo, { n: 2 }))).code, grpc.status.PERMISSION_DENIED);
    assert.equal((await serverStream(asAdmin.echo, { n: 2 })).length, 2);
    assert.deepEqual((await bidi(asClient.echo, ['x'])).map((m) => m.text), ['X']);
    assert.equal((await failure(bidi(asAdmin.echo, ['x']))).code, grpc.status.PERMISSION_DENIED);
    const sum = await failure(clientStream(asAdmin.echo, [1]));
    assert.equal(sum.code, grpc.status.PERMISSION_DENIED);
    assert.match(sum.details, /\/meshless\.test\.Echo\/Sum is not open to any caller/);

    const refusal = methodLogger.at('warn').find((l) => l.obj.method === '/meshless.test.Admin/Reset');
    assert.ok(refusal, JSON.stringify(methodLogger.entries));
    assert.equal(refusal.obj.peer, CLIENT_ID);
    assert.equal(refusal.obj.methodRule, '/meshless.test.Admin/Reset');
    assert.match(refusal.msg, /matches no allow rule/);
    assert.ok(methodLogger.at('warn').some((l) => l.obj.method === '/meshless.test.Echo/Sum' && /not listed/.test(l.msg)));
  });

  it('opens the methods no other key covers only through an explicit "*" key', async () => {
    const { running } = await serve({ '/meshless.test.Admin/Reset': ADMIN_ID, '*': `spiffe://${TD}/**` });
    const c = adminClient(running.target, creds());
    clients.push(c);
    assert.equal((await unary(c, 'status', {})).peer, CLIENT_ID);
    assert.equal((await failure(unary(c, 'reset', {}))).code, grpc.status.PERMISSION_DENIED);
  });

  it('runs after the server-wide check: a client the server refuses never reaches the per-method rules', async () => {
    const { running, logger, methodLogger } = await serve({ '*': '*' });
    const c = echoClient(running.target, creds(pki.denied));
    clients.push(c);
    const err = await failure(unary(c, 'unary', {}));
    assert.equal(err.code, grpc.status.PERMISSION_DENIED);
    assert.equal(logger.at('warn')[0]?.obj.peer, DENIED_ID);
    assert.equal(methodLogger.entries.length, 0);
  });

  it('also works on a plain grpc-js TLS server (peer read from getAuthContext), and refuses callers without a certificate', async () => {
    const { echoService, echoImplementation } = await import('@meshless/fixtures/grpc-echo');
    const serverCred = loadCredential(pki.server);
    const targets: string[] = [];
    // createSsl(…, true) requests and verifies client certificates; (…, false) never asks for one.
    for (const checkClientCertificate of [true, false]) {
      const server = new grpc.Server({ interceptors: [authorizeMethods({ '/meshless.test.Echo/Unary': CLIENT_ID }, { logger: recordingLogger() })] });
      server.addService(echoService, echoImplementation);
      const plain = grpc.ServerCredentials.createSsl(Buffer.from(serverCred.bundlePem), [{ cert_chain: Buffer.from(serverCred.certPem), private_key: Buffer.from(privateKeyPem(serverCred)) }], checkClientCertificate);
      const port = await new Promise<number>((res, rej) => server.bindAsync('localhost:0', plain, (e, p) => (e ? rej(e) : res(p))));
      open.push({ close: async () => server.forceShutdown() });
      targets.push(`localhost:${port}`);
    }
    const verified = echoClient(targets[0]!, creds());
    const unasked = echoClient(targets[1]!, creds());
    clients.push(verified, unasked);
    assert.equal((await unary(verified, 'unary', {})).peer, CLIENT_ID);
    const err = await failure(unary(unasked, 'unary', {}));
    assert.equal(err.code, grpc.status.UNAUTHENTICATED);
    assert.match(err.details, /needs a verified client certificate/);
  });

  it('asks function rules on every call: a rule flipping to false refuses the next call on the same connection and on new ones (issue 12.2)', async () => {
    const { echoService, echoImplementation } = await import('@meshless/fixtures/grpc-echo');
    let open_ = true;
    let asked = 0;
    const rule = (peer: { spiffeId?: string }) => {
      asked++;
      return open_ && peer.spiffeId === CLIENT_ID;
    };
    // A serverCredentials server (Peer cached per connection) and a plain createSsl server (Peer
    // cached per certificate fingerprint, shared by every connection of that client).
    const meshless = await serve({ '/meshless.test.Echo/Unary': rule });
    const serverCred = loadCredential(pki.server);
    const plainServer = new grpc.Server({ interceptors: [authorizeMethods({ '/meshless.test.Echo/Unary': rule }, { logger: recordingLogger() })] });
    plainServer.addService(echoService, echoImplementation);
    const plain = grpc.ServerCredentials.createSsl(Buffer.from(serverCred.bundlePem), [{ cert_chain: Buffer.from(serverCred.certPem), private_key: Buffer.from(privateKeyPem(serverCred)) }], true);
    const plainPort = await new Promise<number>((res, rej) => plainServer.bindAsync('localhost:0', plain, (e, p) => (e ? rej(e) : res(p))));
    open.push({ close: async () => plainServer.forceShutdown() });

    for (const target of [meshless.running.target, `localhost:${plainPort}`]) {
      open_ = true;
      const live = echoClient(target, creds(), isolated);
      clients.push(live);
      assert.equal((await unary(live, 'unary', {})).peer, CLIENT_ID);
      assert.equal((await unary(live, 'unary', {})).peer, CLIENT_ID);
      const askedBefore = asked;
      open_ = false;
      const sameConnection = await failure(unary(live, 'unary', {}));
      assert.equal(sameConnection.code, grpc.status.PERMISSION_DENIED, `${target}: the same connection is refused at once`);
      const fresh = echoClient(target, creds(), isolated);
      clients.push(fresh);
      assert.equal((await failure(unary(fresh, 'unary', {}))).code, grpc.status.PERMISSION_DENIED, `${target}: a new connection is refused`);
      assert.ok(asked >= askedBefore + 2, 'the function was asked for each call');
      open_ = true;
      assert.equal((await unary(live, 'unary', {})).peer, CLIENT_ID, `${target}: and allowed again when it flips back`);
    }
  });

  it('checks its keys and rules at construction', () => {
    const invalid = (methods: object, code: string, pattern: RegExp) =>
      assert.throws(() => authorizeMethods(methods as never), (e: unknown) => isMeshlessError(e) && e.code === code && pattern.test(e.message));
    invalid({}, codes.INVALID_OPTION, /no methods/);
    invalid({ 'pkg.Svc/Method': '*' }, codes.INVALID_OPTION, /not a method key/);
    invalid({ '/pkg.Svc/Meth*': '*' }, codes.INVALID_OPTION, /not a method key/);
    invalid({ '/pkg.Svc': '*' }, codes.INVALID_OPTION, /not a method key/);
    invalid({ '/pkg.Svc/Method': [] }, codes.EMPTY_ALLOW_LIST, /\/pkg\.Svc\/Method/);
    invalid({ '/pkg.Svc/*': 'spiffe://td/a*' }, codes.INVALID_RULE, /\/pkg\.Svc\/\*/);
    assert.equal(typeof authorizeMethods({ '/pkg.Svc/Method': '*', '/pkg.Svc/*': CLIENT_ID, '*': 'dns:localhost' }), 'function');
  });
});
