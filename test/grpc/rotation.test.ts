import assert from 'node:assert/strict';
import grpc from '@grpc/grpc-js';
import { codes, isMeshlessError, type MeshlessError, type Peer } from '@meshless/core';
import { channelCredentials, serverCredentials, serverOptions } from '@meshless/grpc';
import { createTestCA, recordingLogger, waitFor } from '@meshless/testing';
import { handlerRuns } from '@meshless/fixtures/grpc-echo';
import { echoClient, failure, serverStream, startServer, unary, type Running } from '@meshless/fixtures/grpc-harness';
import { CLIENT_ID, SERVER_ID, TD, createPki, type Pki } from '@meshless/fixtures/grpc-pki';
import { unaryLoad } from './load.js';
import { mount, type Mounted } from './volume.js';

/** Channel credentials that record the serial of every server certificate they accept. */
function recordingChannel(source: Mounted['source'], seen: string[]) {
  return channelCredentials({
    source,
    allow: (peer: Peer) => {
      seen.push(peer.serialNumber);
      return peer.spiffeId === SERVER_ID;
    },
    logger: recordingLogger(),
  });
}

describe('@meshless/grpc rotation (fileSource on a Kubernetes-style volume)', function () {
  this.timeout(60_000);
  let pki: Pki;
  const cleanups: (() => Promise<void> | void)[] = [];

  before(async () => {
    pki = await createPki();
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function setUp(serverOpts: grpc.ServerOptions = {}) {
    const serverMount = await mount(pki.server);
    cleanups.push(() => serverMount.close());
    const clientMount = await mount(pki.client);
    cleanups.push(() => clientMount.close());
    const logger = recordingLogger();
    const running: Running = await startServer(serverCredentials({ source: serverMount.source, allow: CLIENT_ID, logger }), serverOpts);
    cleanups.push(() => running.close());
    const seen: string[] = [];
    const client = echoClient(running.target, recordingChannel(clientMount.source, seen));
    cleanups.push(() => client.close());
    return { serverMount, clientMount, running, client, seen, logger };
  }

  it('rotates both sides during a long server stream and under unary load with zero failed calls; new connections present the new serials', async () => {
    const { serverMount, clientMount, running, client, seen } = await setUp();
    const [nextServer, nextClient] = await Promise.all([pki.issueServer(), pki.issueClient()]);
    let rotated: Promise<void> | undefined;
    const streamed = serverStream(client, { n: 60, intervalMs: 20 }, 20_000, () => {
      rotated ??= Promise.all([serverMount.write(nextServer), clientMount.write(nextClient)]).then(() => undefined);
    });
    let streamDone = false;
    const load = unaryLoad(client, { concurrency: 16, stop: () => streamDone });
    const messages = await streamed.finally(() => (streamDone = true));
    const result = await load;
    await rotated;
    assert.equal(messages.length, 60, 'the stream was not cut');
    assert.ok(messages.every((m) => m.serial === pki.client.serialNumber), 'the stream stayed on its connection');
    assert.equal(result.failed, 0, result.errors.join('\n'));
    assert.ok(result.ok > 50, `load ran (${result.ok} calls)`);

    await waitFor(() => serverMount.source.current().identity.serialNumber === nextServer.serialNumber, 5000, 'server source update');
    await waitFor(() => clientMount.source.current().identity.serialNumber === nextClient.serialNumber, 5000, 'client source update');
    // A new connection: the server sees the new client certificate, the client the new server one.
    const fresh = echoClient(running.target, recordingChannel(clientMount.source, seen));
    cleanups.push(() => fresh.close());
    seen.length = 0;
    const reply = await unary(fresh, 'unary', {});
    assert.equal(reply.serial, nextClient.serialNumber);
    assert.deepEqual(seen, [nextServer.serialNumber]);
    // The old connection still serves, with the certificates it was opened with.
    assert.equal((await unary(client, 'unary', {})).serial, pki.client.serialNumber);
  });

  it('moves existing connections to the new generation at grpc.max_connection_age_ms without failing a call', async () => {
    const { serverMount, clientMount, client, seen } = await setUp(serverOptions({ 'grpc.max_connection_age_ms': 400 }));
    const [nextServer, nextClient] = await Promise.all([pki.issueServer(), pki.issueClient()]);
    let moved = false;
    const load = unaryLoad(client, {
      concurrency: 8,
      stop: () => moved,
      maxMs: 15_000,
      onReply: (r) => {
        if (r.serial === nextClient.serialNumber && seen.includes(nextServer.serialNumber)) moved = true;
      },
    });
    await waitFor(() => seen.length > 0, 5000, 'first connection');
    await Promise.all([serverMount.write(nextServer), clientMount.write(nextClient)]);
    const result = await load;
    assert.ok(moved, `the channel never presented the new serials (server serials seen: ${seen.join(', ')})`);
    assert.equal(result.failed, 0, result.errors.join('\n'));
    assert.ok(result.serials.has(pki.client.serialNumber) && result.serials.has(nextClient.serialNumber));
  });

  it('keeps serving the previous generation when a mismatched pair is written to the mount', async () => {
    const { serverMount, running, client, seen } = await setUp();
    assert.equal((await unary(client, 'unary', {})).peer, CLIENT_ID);
    const errors: MeshlessError[] = [];
    serverMount.source.on('error', (e) => errors.push(e));
    const next = await pki.issueServer();
    await serverMount.volume.write({ 'tls.crt': next.cert, 'tls.key': pki.server.key, 'ca.crt': next.ca });
    await waitFor(() => errors.length > 0, 5000, 'the source to refuse the mismatched pair');
    assert.ok(isMeshlessError(errors[0], codes.KEY_MISMATCH), String(errors[0]));
    assert.equal(serverMount.source.current().identity.serialNumber, pki.server.serialNumber);
    // New connections still get the previous generation (grpc-js alone would drop them all).
    const clientMount2 = await mount(pki.client);
    cleanups.push(() => clientMount2.close());
    const fresh = echoClient(running.target, recordingChannel(clientMount2.source, seen));
    cleanups.push(() => fresh.close());
    seen.length = 0;
    assert.equal((await unary(fresh, 'unary', {})).peer, CLIENT_ID);
    assert.deepEqual(seen, [pki.server.serialNumber]);
    // And a good generation afterwards is picked up.
    await serverMount.write(next);
    await waitFor(() => serverMount.source.current().identity.serialNumber === next.serialNumber, 5000, 'good generation');
    const third = echoClient(running.target, recordingChannel(clientMount2.source, seen));
    cleanups.push(() => third.close());
    seen.length = 0;
    await unary(third, 'unary', {});
    assert.deepEqual(seen, [next.serialNumber]);
  });

  it('on a trust change, retires the connections whose client no longer verifies and keeps the others, streams included', async () => {
    const ca2 = await createTestCA({ trustDomain: TD });
    const bothRoots = pki.ca.bundle + ca2.bundle;
    const [server2, clientOnCa2] = await Promise.all([ca2.issue({ spiffeId: SERVER_ID, dnsNames: ['localhost'] }), ca2.issue(CLIENT_ID)]);
    const serverMount = await mount(pki.server, bothRoots);
    cleanups.push(() => serverMount.close());
    const oldMount = await mount(pki.client, bothRoots);
    cleanups.push(() => oldMount.close());
    const newMount = await mount(clientOnCa2, bothRoots);
    cleanups.push(() => newMount.close());
    const logger = recordingLogger();
    const running = await startServer(serverCredentials({ source: serverMount.source, allow: CLIENT_ID, logger, retireGraceMs: 5000 }));
    cleanups.push(() => running.close());
    const onOldCa = echoClient(running.target, recordingChannel(oldMount.source, []));
    const onNewCa = echoClient(running.target, recordingChannel(newMount.source, []));
    cleanups.push(() => onOldCa.close(), () => onNewCa.close());
    assert.equal((await unary(onOldCa, 'unary', {})).serial, pki.client.serialNumber);
    assert.equal((await unary(onNewCa, 'unary', {})).serial, clientOnCa2.serialNumber);

    // The old CA leaves the server's bundle (and the server moves to a leaf of the new CA).
    let trustChanged = false;
    const stream = serverStream(onNewCa, { n: 30, intervalMs: 20 }, 20_000, () => {
      if (!trustChanged) {
        trustChanged = true;
        void serverMount.write(server2, ca2.bundle);
      }
    });
    await waitFor(() => serverMount.source.current().identity.serialNumber === server2.serialNumber, 5000, 'trust change');
    const before = handlerRuns.count;
    const refused = await failure(unary(onOldCa, 'unary', {}));
    assert.ok([grpc.status.UNAUTHENTICATED, grpc.status.UNAVAILABLE].includes(refused.code), refused.message);
    assert.equal(handlerRuns.count, before, 'the refused call reached no handler');
    assert.equal((await stream).length, 30, 'the stream of the client that still verifies was not cut');
    assert.equal((await unary(onNewCa, 'unary', {})).serial, clientOnCa2.serialNumber);
    const change = logger.at('info').find((l) => /trust bundle changed/.test(l.msg));
    assert.ok(change, JSON.stringify(logger.entries));
    assert.equal(change.obj.retired, 1);
    const refusal = logger.at('warn').find((l) => l.obj.failure === 'unverified');
    assert.ok(refusal, 'the refused connection was logged');
    assert.equal(refusal.obj.peer, CLIENT_ID);
    assert.equal(refusal.obj.serialNumber, pki.client.serialNumber);
    assert.match(String(refusal.obj.reason), /does not verify to the trust bundle of/);
  });
});
