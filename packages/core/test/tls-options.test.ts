import assert from 'node:assert/strict';
import { constants } from 'node:crypto';
import { once } from 'node:events';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { allowList, checkConnection, clientTlsOptions, codes, loadCredential, MeshlessError, serverTlsOptions, type Credential } from '@meshless/core';
import { socketPeer } from '@meshless/core/internal';
import { OpenSslCA } from './helpers/openssl.js';

const SERVER_ID = 'spiffe://prod.example/ns/pay/sa/api';
const CLIENT_ID = 'spiffe://prod.example/ns/orders/sa/web';

function credential(ca: OpenSslCA, id: string, bundle = ca.caCert): Credential {
  const k = ca.key('ec-sec1');
  return loadCredential({ cert: ca.issue(k, [`URI.1 = ${id}`]), key: ca.read(k), ca: bundle });
}

async function listen(server: tls.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** Connects and resolves with the socket once the handshake is done, or rejects with its error. */
function connect(options: tls.ConnectionOptions): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect(options);
    socket.once('secureConnect', () => resolve(socket));
    socket.once('error', reject);
  });
}

describe('serverTlsOptions / clientTlsOptions on real sockets', function () {
  let ca: OpenSslCA;
  let other: OpenSslCA;
  let serverCred: Credential;
  let clientCred: Credential;
  before(function () {
    if (!OpenSslCA.available()) this.skip();
    ca = new OpenSslCA();
    other = new OpenSslCA('/CN=other root');
    serverCred = credential(ca, SERVER_ID);
    clientCred = credential(ca, CLIENT_ID);
  });
  after(() => {
    ca?.close();
    other?.close();
  });

  it('builds complete server options: TLS 1.3, client certs required, renegotiation off', () => {
    const o = serverTlsOptions(serverCred);
    assert.equal(o.minVersion, 'TLSv1.3');
    assert.equal(o.requestCert, true);
    assert.equal(o.rejectUnauthorized, true);
    assert.notEqual((o.secureOptions ?? 0) & constants.SSL_OP_NO_RENEGOTIATION, 0);
    assert.equal(typeof o.key, 'string');
    assert.equal(serverTlsOptions(serverCred, { minVersion: 'TLSv1.2' }).minVersion, 'TLSv1.2');
    assert.throws(() => serverTlsOptions(serverCred, { minVersion: 'TLSv1' }), (e: unknown) => e instanceof MeshlessError && e.code === codes.INVALID_OPTION);
    assert.equal(serverTlsOptions(serverCred).maxVersion, undefined);
    assert.equal(serverTlsOptions(serverCred, { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' }).maxVersion, 'TLSv1.2');
    assert.throws(() => serverTlsOptions(serverCred, { maxVersion: 'TLSv1.2' }), (e: unknown) => e instanceof MeshlessError && e.code === codes.INVALID_OPTION && e.field === 'maxVersion');
    assert.throws(() => serverTlsOptions(serverCred, { maxVersion: 'TLSv1.1' }), (e: unknown) => e instanceof MeshlessError && e.code === codes.INVALID_OPTION && e.field === 'maxVersion');
    assert.throws(() => clientTlsOptions(clientCred, {} as never), (e: unknown) => e instanceof MeshlessError && e.code === codes.INVALID_OPTION);
  });

  it('completes mutual TLS 1.3 and checks identities on both sides', async () => {
    const authorize = allowList([CLIENT_ID]);
    const checks: ReturnType<typeof checkConnection>[] = [];
    const server = tls.createServer(serverTlsOptions(serverCred), (s) => s.end('hi'));
    const checked = new Promise<void>((resolve) => {
      server.prependListener('secureConnection', (s: tls.TLSSocket) => {
        checks.push(checkConnection(s, authorize, serverCred));
        resolve();
      });
    });
    const port = await listen(server);
    try {
      const socket = await connect({ host: '127.0.0.1', port, ...clientTlsOptions(clientCred, { allow: SERVER_ID, servername: 'localhost' }) });
      assert.equal(socket.getProtocol(), 'TLSv1.3');
      assert.equal(socketPeer(socket)?.spiffeId, SERVER_ID);
      await checked;
      socket.destroy();
      assert.equal(checks.length, 1);
      assert.ok(checks[0]!.ok);
      assert.equal(checks[0]!.ok && checks[0]!.peer.spiffeId, CLIENT_ID);
    } finally {
      server.close();
    }
  });

  it('refuses a server whose identity is not allowed, with a coded error naming it', async () => {
    const server = tls.createServer(serverTlsOptions(serverCred), (s) => s.end());
    const port = await listen(server);
    try {
      await assert.rejects(
        connect({ host: '127.0.0.1', port, ...clientTlsOptions(clientCred, { allow: 'spiffe://prod.example/ns/other/sa/x', servername: 'localhost' }) }),
        (err: unknown) => err instanceof MeshlessError && err.code === codes.PEER_DENIED && err.message.includes(SERVER_ID),
      );
    } finally {
      server.close();
    }
  });

  it('refuses a server from another CA before identity is looked at', async () => {
    const server = tls.createServer(serverTlsOptions(credential(other, SERVER_ID)), (s) => s.end());
    const port = await listen(server);
    try {
      await assert.rejects(connect({ host: '127.0.0.1', port, ...clientTlsOptions(clientCred, { allow: '*', servername: 'localhost' }) }), /certificate/i);
    } finally {
      server.close();
    }
  });

  it('marks a client without a certificate, and one from another CA, as unverified (or the handshake fails)', async () => {
    const authorize = allowList('*');
    const refused: string[] = [];
    const server = tls.createServer({ ...serverTlsOptions(serverCred), rejectUnauthorized: false }, (s) => s.end());
    server.prependListener('secureConnection', (s: tls.TLSSocket) => {
      const c = checkConnection(s, authorize, serverCred);
      if (!c.ok) refused.push(c.failure);
      s.destroy();
    });
    const port = await listen(server);
    try {
      const noCert = clientTlsOptions(clientCred, { allow: SERVER_ID, servername: 'localhost' });
      delete noCert.cert;
      delete noCert.key;
      const s1 = await connect({ host: '127.0.0.1', port, ...noCert });
      await once(s1, 'close');
      const s2 = await connect({ host: '127.0.0.1', port, ...clientTlsOptions(credential(other, CLIENT_ID, other.caCert + ca.caCert), { allow: SERVER_ID, servername: 'localhost' }) });
      await once(s2, 'close');
      assert.deepEqual(refused, ['unverified', 'unverified']);
    } finally {
      server.close();
    }
  });

  it('never calls getPeerX509Certificate (it leaks native memory in Node 20), on either side', async () => {
    const poison = (s: tls.TLSSocket) => {
      s.getPeerX509Certificate = () => {
        throw new Error('getPeerX509Certificate must not be used: it leaks native memory per call');
      };
    };
    let check: ReturnType<typeof checkConnection> | undefined;
    const server = tls.createServer(serverTlsOptions(serverCred), (s) => s.end());
    const checked = new Promise<void>((resolve) =>
      server.prependListener('secureConnection', (s: tls.TLSSocket) => {
        poison(s);
        check = checkConnection(s, allowList(CLIENT_ID), serverCred);
        resolve();
      }),
    );
    const port = await listen(server);
    try {
      const socket = tls.connect({ host: '127.0.0.1', port, ...clientTlsOptions(clientCred, { allow: SERVER_ID, servername: 'localhost' }) });
      poison(socket);
      await once(socket, 'secureConnect');
      assert.equal(socketPeer(socket)?.spiffeId, SERVER_ID);
      await checked;
      assert.ok(check?.ok, 'the server-side check works without it');
      socket.destroy();
    } finally {
      server.close();
    }
  });

  it('re-checks a full handshake against the current bundle (the bundle rotated mid-handshake)', async () => {
    // The handshake runs under a context trusting `ca`; by the time it completes, the credential
    // trusts only `other` (the bundle rotated): the client must be refused, not waved through.
    const rotated = credential(other, SERVER_ID);
    const results: ReturnType<typeof checkConnection>[] = [];
    const done = new Promise<void>((resolve) => {
      const server = tls.createServer(serverTlsOptions(serverCred), (s) => s.end());
      server.prependListener('secureConnection', (s: tls.TLSSocket) => {
        results.push(checkConnection(s, allowList('*'), rotated));
        results.push(checkConnection(s, allowList('*'), serverCred));
        s.destroy();
        server.close();
        resolve();
      });
      server.listen(0, '127.0.0.1', () => {
        const c = tls.connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, ...clientTlsOptions(clientCred, { allow: SERVER_ID, servername: 'localhost' }) });
        c.on('error', () => {});
      });
    });
    await done;
    assert.equal(results[0]!.ok, false);
    assert.equal(!results[0]!.ok && results[0]!.failure, 'unverified');
    assert.match(!results[0]!.ok ? results[0]!.reason : '', /does not verify to the trust bundle of prod.example/);
    assert.equal(results[1]!.ok, true, 'under the bundle it was verified with, the same connection passes');
  });

  it('refuses a TLS 1.2-only client by default', async () => {
    const server = tls.createServer(serverTlsOptions(serverCred), (s) => s.end());
    const port = await listen(server);
    try {
      await assert.rejects(connect({ host: '127.0.0.1', port, ...clientTlsOptions(clientCred, { allow: SERVER_ID, servername: 'localhost', minVersion: 'TLSv1.2' }), maxVersion: 'TLSv1.2' }), /version|protocol/i);
    } finally {
      server.close();
    }
  });
});
