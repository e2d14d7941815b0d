import assert from 'node:assert/strict';
import grpc from '@grpc/grpc-js';
import { codes, isMeshlessError, loadCredential, privateKeyPem, type Peer } from '@meshless/core';
import { channelCredentials, serverCredentials } from '@meshless/grpc';
import { closeAfterEach, echoClient, failure, startServer, unary, type Running } from '@meshless/fixtures/grpc-harness';
import { CLIENT_ID, SERVER_ID, TD, createPki, type Pki } from '@meshless/fixtures/grpc-pki';
import { recordingLogger } from '@meshless/testing';

describe('@meshless/grpc channelCredentials', function () {
  let pki: Pki;
  let running: Running;
  const { clients } = closeAfterEach();

  before(async () => {
    pki = await createPki({ intermediate: true });
    running = await startServer(serverCredentials({ source: loadCredential(pki.server), allow: '*', logger: recordingLogger() }));
  });
  after(async () => {
    await running.close();
  });

  function client(allow: Parameters<typeof channelCredentials>[0]['allow'], issued = pki.client, target = running.target) {
    const logger = recordingLogger();
    const c = echoClient(target, channelCredentials({ source: loadCredential(issued), allow, logger }));
    clients.push(c);
    return { c, logger };
  }

  it('accepts a server whose identity the allow-list names, in place of the host name check', async () => {
    const seen: Peer[] = [];
    const { c } = client((peer: Peer) => {
      seen.push(peer);
      return peer.spiffeId === SERVER_ID;
    });
    assert.equal((await unary(c, 'unary', {})).peer, CLIENT_ID);
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.spiffeId, SERVER_ID);
    assert.equal(seen[0]!.serialNumber, pki.server.serialNumber);
  });

  it('refuses a server whose identity is not allowed, even though its host name matches, and logs what it presented', async () => {
    const { c, logger } = client(`spiffe://${TD}/ns/app/sa/other`);
    const err = await failure(unary(c, 'unary', {}));
    assert.equal(err.code, grpc.status.UNAVAILABLE);
    const warn = logger.at('warn')[0];
    assert.ok(warn, 'a warning was logged');
    assert.equal(warn.obj.peer, SERVER_ID);
    assert.equal(warn.obj.host, 'localhost');
    assert.match(warn.msg, /matches no allow rule/);
  });

  it('gives the classic host-name check with a dns: rule for a server without a SPIFFE ID, never for one with', async () => {
    const plain = await startServer(serverCredentials({ source: loadCredential(await pki.ca.issue({ dnsNames: ['localhost'] })), allow: '*', logger: recordingLogger() }));
    try {
      assert.equal((await unary(client('dns:localhost', pki.client, plain.target).c, 'unary', {})).peer, CLIENT_ID);
      assert.equal((await failure(unary(client('dns:api.example.com', pki.client, plain.target).c, 'unary', {}))).code, grpc.status.UNAVAILABLE);
      // The SPIFFE server also has the DNS SAN localhost, but is judged by its SPIFFE ID only.
      assert.equal((await failure(unary(client('dns:localhost').c, 'unary', {}))).code, grpc.status.UNAVAILABLE);
    } finally {
      await plain.close();
    }
  });

  it('refuses a server whose certificate comes from another CA, whatever identity it claims', async () => {
    const impostor = await pki.otherCa.issue({ spiffeId: SERVER_ID, dnsNames: ['localhost'] });
    const other = await startServer(serverCredentials({ source: loadCredential(impostor), allow: '*', logger: recordingLogger() }));
    try {
      const { c, logger } = client(SERVER_ID, pki.client, other.target);
      assert.equal((await failure(unary(c, 'unary', {}))).code, grpc.status.UNAVAILABLE);
      assert.equal(logger.at('warn').length, 0, 'the identity check never ran: the chain failed first');
    } finally {
      await other.close();
    }
  });

  it('talks to a plain grpc-js server that requires client certificates', async () => {
    const server = new grpc.Server();
    const { echoService, echoImplementation } = await import('@meshless/fixtures/grpc-echo');
    server.addService(echoService, echoImplementation);
    const s = loadCredential(pki.server);
    const creds = grpc.ServerCredentials.createSsl(Buffer.from(s.bundlePem), [{ cert_chain: Buffer.from(s.certPem), private_key: Buffer.from(privateKeyPem(s)) }], true);
    const port = await new Promise<number>((res, rej) => server.bindAsync('localhost:0', creds, (e, p) => (e ? rej(e) : res(p))));
    try {
      const { c } = client(SERVER_ID, pki.client, `localhost:${port}`);
      assert.equal((await unary(c, 'unary', {})).peer, CLIENT_ID);
    } finally {
      server.forceShutdown();
    }
  });

  it('checks its options at construction', () => {
    const source = loadCredential(pki.client);
    assert.throws(() => channelCredentials({ source } as never), (e: unknown) => isMeshlessError(e, codes.INVALID_OPTION) && /allow/.test((e as Error).message));
    assert.throws(() => channelCredentials({ allow: '*' } as never), (e: unknown) => isMeshlessError(e, codes.INVALID_OPTION) && /source/.test((e as Error).message));
    assert.throws(() => channelCredentials({ source, allow: [] }), (e: unknown) => isMeshlessError(e, codes.EMPTY_ALLOW_LIST));
  });
});
