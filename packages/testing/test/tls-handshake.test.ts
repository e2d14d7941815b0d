import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { createTestCA, type IssuedCertificate, type TestCAOptions } from '@meshless/testing';
import { within } from './support.js';

const SERVER = 'spiffe://prod.example/ns/pay/sa/api';
const CLIENT = 'spiffe://prod.example/ns/shop/sa/web';

interface Handshake {
  client: tls.TLSSocket;
  server: tls.TLSSocket;
}

/** A real mTLS handshake on 127.0.0.1; everything is closed by `close()`. */
async function handshake(server: IssuedCertificate, client: IssuedCertificate): Promise<Handshake & { close(): Promise<void> }> {
  const tlsServer = tls.createServer({
    cert: server.cert,
    key: server.key,
    ca: server.ca,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.3',
  });
  tlsServer.listen(0, '127.0.0.1');
  await within(once(tlsServer, 'listening'), 5_000, 'the server to listen');
  const accepted = once(tlsServer, 'secureConnection') as Promise<[tls.TLSSocket]>;
  const socket = tls.connect({
    host: '127.0.0.1',
    port: (tlsServer.address() as AddressInfo).port,
    cert: client.cert,
    key: client.key,
    ca: client.ca,
    minVersion: 'TLSv1.3',
  });
  const close = async () => {
    socket.destroy();
    tlsServer.close();
    await within(once(tlsServer, 'close'), 5_000, 'the server to close');
  };
  try {
    await within(once(socket, 'secureConnect'), 5_000, 'the client handshake');
    const [serverSide] = await within(accepted, 5_000, 'the server handshake');
    return { client: socket, server: serverSide, close: async () => (serverSide.destroy(), close()) };
  } catch (error) {
    await close();
    throw error;
  }
}

describe('test CA certificates in a real TLS 1.3 handshake', () => {
  const setups: Array<{ name: string; options: TestCAOptions }> = [
    { name: 'EC P-256', options: { trustDomain: 'prod.example' } },
    { name: 'EC P-256 with an intermediate', options: { trustDomain: 'prod.example', intermediate: true } },
    { name: 'EC P-384', options: { trustDomain: 'prod.example', keyType: 'ec-p384' } },
    { name: 'Ed25519', options: { trustDomain: 'prod.example', keyType: 'ed25519' } },
    { name: 'RSA-2048', options: { trustDomain: 'prod.example', keyType: 'rsa-2048', intermediate: true } },
  ];

  for (const { name, options } of setups) {
    it(`${name}: both sides authorized, SPIFFE IDs visible`, async function () {
      this.timeout(20_000);
      const ca = await createTestCA(options);
      const server = await ca.issue({ spiffeId: SERVER, ipAddresses: ['127.0.0.1'] });
      const client = await ca.issue(CLIENT);
      const connection = await handshake(server, client);
      try {
        assert.equal(connection.client.authorized, true, String(connection.client.authorizationError));
        assert.equal(connection.server.authorized, true, String(connection.server.authorizationError));
        assert.equal(connection.client.getProtocol(), 'TLSv1.3');
        assert.equal(connection.client.getPeerX509Certificate()?.subjectAltName, `URI:${SERVER}, IP Address:127.0.0.1`);
        assert.equal(connection.server.getPeerX509Certificate()?.subjectAltName, `URI:${CLIENT}`);
      } finally {
        await connection.close();
      }
    });
  }

  it('a self-signed client look-alike is refused by the server', async () => {
    const ca = await createTestCA({ trustDomain: 'prod.example' });
    const server = await ca.issue({ spiffeId: SERVER, ipAddresses: ['127.0.0.1'] });
    const impostor = await ca.selfSigned(CLIENT);
    const tlsServer = tls.createServer({ cert: server.cert, key: server.key, ca: server.ca, requestCert: true, rejectUnauthorized: true });
    let accepted = false;
    tlsServer.on('secureConnection', () => (accepted = true));
    tlsServer.listen(0, '127.0.0.1');
    await within(once(tlsServer, 'listening'), 5_000, 'the server to listen');
    try {
      const refused = once(tlsServer, 'tlsClientError');
      const socket = tls.connect({
        host: '127.0.0.1',
        port: (tlsServer.address() as AddressInfo).port,
        cert: impostor.cert,
        key: impostor.key,
        ca: impostor.ca,
      });
      socket.on('error', () => undefined);
      // TLS 1.3: the client finishes its side first (secureConnect, authorized) and is then simply
      // closed; the server reports a tlsClientError ('socket hang up'), never a secureConnection.
      await within(Promise.all([refused, once(socket, 'close')]), 5_000, 'the server to refuse the client');
      assert.equal(accepted, false);
    } finally {
      tlsServer.close();
    }
  });
});
