import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { loadCredential } from '@meshless/core';
import { createServer, type MeshlessServer, type PeerRefusal } from '@meshless/http';
import { createTestCA, manualSource, waitFor, type ManualSource } from '@meshless/testing';

// A TLS session resumed after a trust change must be checked again: Node restores the stored
// verdict (authorized: true) and skips identity checks on resumption.

const TD = 'prod.example';
const silent = { error() {}, warn() {}, info() {}, debug() {} };

describe('security: resumption after a trust change', function () {
  this.timeout(30_000);
  let server: MeshlessServer;
  let port: number;
  let source: ManualSource;
  const refusals: PeerRefusal[] = [];
  let handled = 0;
  let client: { cert: string; key: string; ca: string };
  let ca: Awaited<ReturnType<typeof createTestCA>>;

  beforeEach(async () => {
    ca = await createTestCA({ trustDomain: TD });
    source = manualSource(loadCredential(await ca.issue({ spiffeId: `spiffe://${TD}/ns/pay/sa/api`, dnsNames: ['localhost'] })));
    client = await ca.issue(`spiffe://${TD}/ns/orders/sa/web`);
    refusals.length = 0;
    handled = 0;
    server = createServer({ source, allow: `spiffe://${TD}/ns/orders/**`, logger: silent }, (req, res) => {
      handled++;
      res.end('ok');
    });
    server.on('peerRefused', (r) => refusals.push(r));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });
  afterEach(() => {
    server.close();
    server.closeAllConnections();
  });

  /** One request on a fresh connection, offering `session`; returns the new session and whether it resumed. */
  function call(session?: Buffer): Promise<{ status: string; resumed: boolean; session?: Buffer }> {
    return new Promise((resolve) => {
      let latest: Buffer | undefined;
      let resumed = false;
      let response = '';
      const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', cert: client.cert, key: client.key, ca: ca.bundle, rejectUnauthorized: false, ...(session ? { session } : {}) });
      socket.on('session', (s: Buffer) => (latest = s));
      socket.on('secureConnect', () => {
        resumed = socket.isSessionReused();
        socket.write('GET / HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n');
      });
      socket.on('data', (d: Buffer) => (response += d.toString()));
      socket.on('error', () => {});
      socket.on('close', () => resolve({ status: response.slice(0, 12), resumed, ...(latest ? { session: latest } : {}) }));
    });
  }

  it('resumes normally (control)', async () => {
    const first = await call();
    assert.equal(first.status, 'HTTP/1.1 200');
    assert.ok(first.session);
    const second = await call(first.session);
    assert.equal(second.status, 'HTTP/1.1 200');
    assert.equal(second.resumed, true, 'the second connection resumes');
  });

  it('after the allow-list changes, a resumed session of a peer no longer allowed is refused', async () => {
    const first = await call();
    assert.ok(first.session);
    server.setAllow(`spiffe://${TD}/ns/billing/**`);
    const second = await call(first.session);
    assert.equal(second.status, '', 'no response after the policy change');
    const refusal = await waitFor(() => refusals[0], 5000, 'a refusal');
    assert.equal(refusal.failure, 'denied');
    assert.equal(handled, 1);
  });

  it('after the client CA is removed from the bundle, a resumed session is refused', async () => {
    const first = await call();
    assert.ok(first.session);
    const newCa = await createTestCA({ trustDomain: TD });
    const rotated = await newCa.issue({ spiffeId: `spiffe://${TD}/ns/pay/sa/api`, dnsNames: ['localhost'] });
    source.set(loadCredential(rotated, { generation: 2 }));
    const second = await call(first.session);
    assert.equal(second.status, '', 'no response after the CA removal');
    assert.equal(handled, 1);
    assert.equal(second.resumed && refusals.length === 0, false, 'a resumed session must not pass unchecked');
  });
});
