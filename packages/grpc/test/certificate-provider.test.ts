import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import grpc from '@grpc/grpc-js';
import { loadCredential, privateKeyPem } from '@meshless/core';
import { SourceCertificateProvider } from '@meshless/grpc';
import { echoClient, failure, startServer, unary } from '@meshless/fixtures/grpc-harness';
import { CLIENT_ID, createPki, type Pki } from '@meshless/fixtures/grpc-pki';
import { manualSource, recordingLogger, waitFor } from '@meshless/testing';

type Update = grpc.experimental.CaCertificateUpdate | grpc.experimental.IdentityCertificateUpdate | null;

describe('@meshless/grpc SourceCertificateProvider', function () {
  let pki: Pki;
  before(async () => {
    pki = await createPki();
  });

  it('answers a new listener after the current tick, never with null, and follows the source while someone listens', async () => {
    const source = manualSource(pki.client);
    const provider = new SourceCertificateProvider(source, recordingLogger());
    const events: string[] = [];
    const ca = (u: Update) => events.push(`ca:${u === null ? 'null' : new X509Certificate((u as grpc.experimental.CaCertificateUpdate).caCertificate).subject.split('\n').pop()}`);
    const identity = (u: Update) => events.push(`id:${u === null ? 'null' : new X509Certificate((u as grpc.experimental.IdentityCertificateUpdate).certificate).serialNumber}`);
    provider.addCaCertificateListener(ca);
    provider.addIdentityCertificateListener(identity);
    assert.deepEqual(events, [], 'nothing delivered synchronously');
    assert.equal(source.listenerCount('update'), 1);
    await waitFor(() => events.length === 2, 2000, 'first delivery');
    assert.deepEqual(events.slice().sort(), [`ca:CN=meshless test root td.example`, `id:${pki.client.serialNumber}`].sort());

    events.length = 0;
    const next = await pki.issueClient();
    source.set(next);
    assert.deepEqual(events, [`ca:CN=meshless test root td.example`, `id:${next.serialNumber}`], 'trust first, then identity');

    events.length = 0;
    source.set({ ...next, key: pki.client.key }); // mismatched pair: the source refuses it
    assert.deepEqual(events, [], 'a refused generation reaches no listener');

    provider.removeCaCertificateListener(ca);
    provider.removeIdentityCertificateListener(identity);
    assert.equal(source.listenerCount('update'), 0, 'unsubscribed from the source');
    await source.close();
  });

  // grpc-js 1.14's certificate-provider functions, with a distinct provider per role: the server
  // function passes its arguments on as (identity, ca) despite naming them (ca, identity); the
  // channel function really is (ca, identity). SourceCertificateProvider answers both roles, so
  // the order cannot bite; this test tells us if grpc-js ever changes it.
  it('documents the argument order of grpc-js certificate-provider functions', async () => {
    const server = loadCredential(pki.server);
    const client = loadCredential(pki.client);
    const only = (role: 'ca' | 'identity', credential: typeof server): grpc.experimental.CertificateProvider => ({
      addCaCertificateListener(l) {
        if (role === 'ca') process.nextTick(l, { caCertificate: Buffer.from(credential.bundlePem) });
      },
      removeCaCertificateListener() {},
      addIdentityCertificateListener(l) {
        if (role === 'identity') process.nextTick(l, { certificate: Buffer.from(credential.certPem), privateKey: Buffer.from(privateKeyPem(credential)) });
      },
      removeIdentityCertificateListener() {},
    });
    const channelCreds = grpc.experimental.createCertificateProviderChannelCredentials(only('ca', client), only('identity', client), { checkServerIdentity: () => undefined });
    // As implemented: (identity, ca) — serves.
    const working = await startServer(grpc.experimental.createCertificateProviderServerCredentials(only('identity', server), only('ca', server), true));
    // As named: (ca, identity) — the server never gets a certificate and drops every connection.
    const named = await startServer(grpc.experimental.createCertificateProviderServerCredentials(only('ca', server), only('identity', server), true));
    const ok = echoClient(working.target, channelCreds);
    const dropped = echoClient(named.target, channelCreds);
    try {
      // A plain grpc-js server: peerOf falls back to getAuthContext().
      assert.equal((await unary(ok, 'unary', {})).peer, CLIENT_ID);
      assert.equal((await failure(unary(dropped, 'unary', {}))).code, grpc.status.UNAVAILABLE);
    } finally {
      ok.close();
      dropped.close();
      await Promise.all([working.close(), named.close()]);
    }
  });
});
