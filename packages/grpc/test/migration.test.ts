import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import grpc from '@grpc/grpc-js';
import { loadCredential, policyFile } from '@meshless/core';
import { authorizeMethods, channelCredentials, serverCredentials } from '@meshless/grpc';
import { kubernetesVolume, type LogEntry, recordingLogger, waitFor } from '@meshless/testing';
import { adminImplementation, adminService, echoImplementation, echoService } from '@meshless/fixtures/grpc-echo';
import { adminClient, closeAfterEach, echoClient, failure, startServer, unary } from '@meshless/fixtures/grpc-harness';
import { ADMIN_ID, CLIENT_ID, DENIED_ID, SERVER_ID, createPki, type Pki } from '@meshless/fixtures/grpc-pki';

function bind(server: grpc.Server, credentials: grpc.ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) => server.bindAsync('localhost:0', credentials, (err, port) => (err ? reject(err) : resolve(port))));
}

describe('@meshless/grpc during a migration', function () {
  let pki: Pki;
  const { clients, servers } = closeAfterEach();

  before(async () => {
    pki = await createPki();
  });

  const creds = (issued = pki.client, extra: Partial<Parameters<typeof channelCredentials>[0]> = {}) =>
    channelCredentials({ source: loadCredential(issued), allow: SERVER_ID, logger: recordingLogger(), ...extra });

  it('two ports on one grpc.Server: plaintext callers have no peer and reach only the methods listed as plaintext; mTLS callers are unchanged', async () => {
    const methodLogger = recordingLogger();
    const server = new grpc.Server({
      interceptors: [authorizeMethods({ '/meshless.test.Echo/*': [CLIENT_ID, ADMIN_ID], '/meshless.test.Admin/*': ADMIN_ID }, { logger: methodLogger, plaintext: ['/meshless.test.Echo/Unary'] })],
    });
    server.addService(echoService, echoImplementation);
    server.addService(adminService, adminImplementation);
    const plainPort = await bind(server, grpc.ServerCredentials.createInsecure());
    const tlsPort = await bind(server, serverCredentials({ source: loadCredential(pki.server), allow: [CLIENT_ID, ADMIN_ID], logger: recordingLogger() }));
    servers.push({ close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())) });

    const plainEcho = echoClient(`localhost:${plainPort}`, grpc.credentials.createInsecure());
    const plainAdmin = adminClient(`localhost:${plainPort}`, grpc.credentials.createInsecure());
    const tlsEcho = echoClient(`localhost:${tlsPort}`, creds());
    clients.push(plainEcho, plainAdmin, tlsEcho);

    const plain = await unary(plainEcho, 'unary', {});
    assert.equal(plain.peer, null, 'peerOf(call) is undefined on the plaintext port');
    assert.equal((await failure(unary(plainAdmin, 'status', {}))).code, grpc.status.UNAUTHENTICATED, 'an unlisted plaintext call is refused');
    assert.equal((await unary(tlsEcho, 'unary', {})).peer, CLIENT_ID);
    const lines = methodLogger.entries.filter((l) => l.obj.plaintext === true);
    assert.equal(lines.length, 1);
    assert.equal(lines[0]!.obj.method, '/meshless.test.Echo/Unary');
    // A plaintext client cannot reach the meshless port at all.
    const wrongPort = echoClient(`localhost:${tlsPort}`, grpc.credentials.createInsecure());
    clients.push(wrongPort);
    assert.equal((await failure(unary(wrongPort, 'unary', {}, 2_000))).code, grpc.status.UNAVAILABLE);
  });

  it('dryRun on serverCredentials, authorizeMethods and channelCredentials: would-be denials pass and are logged; an unverified chain is still refused', async () => {
    const serverLogger = recordingLogger();
    const methodLogger = recordingLogger();
    const running = await startServer(serverCredentials({ source: loadCredential(pki.server), allow: CLIENT_ID, dryRun: true, logger: serverLogger }), {
      interceptors: [authorizeMethods({ '*': ADMIN_ID }, { dryRun: true, logger: methodLogger })],
    });
    servers.push(running);
    const clientLogger = recordingLogger();
    const denied = echoClient(running.target, creds(pki.denied, { allow: 'spiffe://td.example/ns/other/sa/server', dryRun: true, logger: clientLogger }));
    const stranger = echoClient(running.target, creds(pki.otherCaClient));
    clients.push(denied, stranger);
    assert.equal((await unary(denied, 'unary', {})).peer, DENIED_ID);
    const wouldDeny = (lines: LogEntry[]) => lines.find((l) => /would deny/.test(l.msg));
    assert.equal(wouldDeny(serverLogger.entries)?.obj.peer, DENIED_ID);
    assert.equal(wouldDeny(serverLogger.entries)?.obj.scope, 'grpc-server');
    assert.equal(wouldDeny(methodLogger.entries)?.obj.scope, 'method');
    assert.equal(wouldDeny(clientLogger.entries)?.obj.peer, SERVER_ID);
    assert.equal(wouldDeny(clientLogger.entries)?.obj.scope, 'grpc-client');
    const err = await failure(unary(stranger, 'unary', {}, 3_000));
    assert.notEqual(err.code, grpc.status.OK);
  });

  it('serverCredentials({ allow: policyFile }) retires the connections of a newly denied client after a ConfigMap-style swap', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'meshless-grpc-policy-'));
    const volume = kubernetesVolume(dir);
    await volume.write({ 'policy.yaml': `allow:\n  - ${CLIENT_ID}\n  - ${ADMIN_ID}\n` });
    const policy = await policyFile(path.join(dir, 'policy.yaml'), { logger: recordingLogger() });
    try {
      const serverLogger = recordingLogger();
      const running = await startServer(serverCredentials({ source: loadCredential(pki.server), allow: policy, logger: serverLogger, retireGraceMs: 0 }));
      servers.push(running);
      const client = echoClient(running.target, creds());
      const admin = echoClient(running.target, creds(pki.admin));
      clients.push(client, admin);
      assert.equal((await unary(client, 'unary', {})).peer, CLIENT_ID);
      assert.equal((await unary(admin, 'unary', {})).peer, ADMIN_ID);
      await volume.write({ 'policy.yaml': `allow: [${ADMIN_ID}]\n` });
      await waitFor(() => serverLogger.entries.some((l) => /policy changed/.test(l.msg) && l.obj.retired === 1), 3_000, 'the retirement');
      const err = await failure(unary(client, 'unary', {}, 3_000));
      assert.ok([grpc.status.PERMISSION_DENIED, grpc.status.UNAVAILABLE].includes(err.code), `code ${err.code}: ${err.details}`);
      assert.equal((await unary(admin, 'unary', {})).peer, ADMIN_ID);
    } finally {
      await policy.close();
      await volume.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
