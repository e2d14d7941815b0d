import assert from 'node:assert/strict';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import { loadCredential } from '@meshless/core';
import { createServer, type PeerRefusal } from '@meshless/http';
import { createTestCA, recordingLogger, type TestCA, waitFor } from '@meshless/testing';
import { startRecordingServer, type RecordingServer } from './recording-server.js';

// Hostile peers against the HTTP server: each is refused with a coded, logged reason, and the
// request handler never runs for it.

const TD = 'prod.example';
const SERVER_ID = `spiffe://${TD}/ns/pay/sa/api`;
const ALLOWED_ID = `spiffe://${TD}/ns/orders/sa/web`;

interface Material { cert: string; key: string; ca: string }

describe('security: hostile peers against createServer', function () {
  this.timeout(60_000);
  let ca: TestCA;
  let other: TestCA;
  let rec: RecordingServer;
  const logger = recordingLogger();

  before(async () => {
    ca = await createTestCA({ trustDomain: TD });
    other = await createTestCA({ trustDomain: TD });
    const own = await ca.issue({ spiffeId: SERVER_ID, dnsNames: ['localhost'] });
    rec = await startRecordingServer({ source: loadCredential(own), allow: [`spiffe://${TD}/ns/orders/**`], logger, handshakeTimeoutMs: 1000 }, 'secret');
  });
  after(() => rec?.close());

  /** Connects, sends one request after the handshake, and says whether any response byte came back. */
  function attempt(options: tls.ConnectionOptions): Promise<{ handshake: boolean; response: string; error?: string }> {
    return new Promise((resolve) => {
      let handshake = false;
      let response = '';
      let error: string | undefined;
      const socket = tls.connect({ host: '127.0.0.1', port: rec.port, servername: 'localhost', rejectUnauthorized: false, ...options });
      socket.on('secureConnect', () => {
        handshake = true;
        socket.write('GET / HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n');
      });
      socket.on('data', (d: Buffer) => (response += d.toString()));
      socket.on('error', (err) => (error = (err as { code?: string }).code ?? err.message));
      socket.on('close', () => resolve({ handshake, response, ...(error ? { error } : {}) }));
      socket.setTimeout(10_000, () => socket.destroy());
    });
  }

  async function refusedWith(m: Partial<Material> & Pick<tls.ConnectionOptions, 'minVersion' | 'maxVersion'>, failure: RegExp, expectPeer?: string): Promise<PeerRefusal> {
    const before = rec.refusals.length;
    const handledBefore = rec.handled.length;
    const r = await attempt({ cert: m.cert, key: m.key, ca: ca.bundle, minVersion: m.minVersion, maxVersion: m.maxVersion });
    assert.equal(r.response, '', `no response may come back (got ${JSON.stringify(r.response.slice(0, 60))})`);
    const refusal = await waitFor(() => rec.refusals[before], 5000, 'a peerRefused event');
    assert.match(refusal.failure, failure, refusal.reason);
    assert.match(refusal.error.code, /^MESHLESS_ERR_/);
    if (expectPeer !== undefined) assert.equal(String(refusal.peer), expectPeer);
    assert.ok(logger.entries.some((l) => l.level !== 'debug' && l.obj.reason === refusal.reason), 'the refusal is logged with its reason');
    assert.equal(rec.handled.length, handledBefore, 'the handler never ran');
    return refusal;
  }

  it('serves an allowed peer (the control: the checks below can fail)', async () => {
    const m = await ca.issue(ALLOWED_ID);
    const r = await attempt({ cert: m.cert, key: m.key, ca: ca.bundle });
    assert.match(r.response, /^HTTP\/1\.1 200/);
    assert.equal(rec.handled.length, 1);
  });

  it('no client certificate', async () => {
    await refusedWith({}, /unverified|handshake/);
  });

  it('a self-signed certificate claiming an allowed identity', async () => {
    await refusedWith(await ca.selfSigned(ALLOWED_ID), /unverified|handshake/);
  });

  it('a certificate from another CA claiming an allowed identity', async () => {
    await refusedWith(await other.issue(ALLOWED_ID), /unverified|handshake/);
  });

  it('the right CA, an identity not on the allow-list', async () => {
    const r = await refusedWith(await ca.issue(`spiffe://${TD}/ns/payments-admin/sa/x`), /^denied$/, `spiffe://${TD}/ns/payments-admin/sa/x`);
    assert.equal(r.error.code, 'MESHLESS_ERR_PEER_DENIED');
  });

  it('an expired certificate', async () => {
    await refusedWith(await ca.issue({ spiffeId: ALLOWED_ID, notBefore: new Date(Date.now() - 7200_000), notAfter: new Date(Date.now() - 3600_000) }), /unverified|handshake/);
  });

  it('a certificate not yet valid', async () => {
    await refusedWith(await ca.issue({ spiffeId: ALLOWED_ID, notBefore: new Date(Date.now() + 3600_000), notAfter: new Date(Date.now() + 7200_000) }), /unverified|handshake/);
  });

  it('a CA certificate used as a leaf', async () => {
    await refusedWith(await ca.issue({ spiffeId: ALLOWED_ID, isCA: true }), /denied|unverified|handshake/);
  });

  it('two URI SANs (no SPIFFE ID at all)', async () => {
    await refusedWith(await ca.issue({ uris: [ALLOWED_ID, `spiffe://${TD}/ns/orders/sa/other`] }), /^denied$/);
  });

  it('the SAN-injection certificate', async () => {
    const r = await refusedWith(await ca.issue({ uris: [`spiffe://evil.example/x, URI:${ALLOWED_ID}`] }), /^denied$/);
    assert.equal(r.peer?.spiffeId, undefined);
  });

  it('a DNS-only certificate where a SPIFFE rule is required', async () => {
    await refusedWith(await ca.issue({ dnsNames: ['orders.prod.example'] }), /^denied$/);
  });

  it('a TLS 1.2 downgrade', async () => {
    const m = await ca.issue(ALLOWED_ID);
    await refusedWith({ ...m, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' }, /handshake/);
  });

  it('plaintext HTTP sent to the TLS port', async () => {
    const before = rec.refusals.length;
    const socket = net.connect(rec.port, '127.0.0.1');
    socket.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
    let response = '';
    socket.on('data', (d: Buffer) => (response += d.toString()));
    socket.on('error', () => {});
    await once(socket, 'close');
    assert.doesNotMatch(response, /secret/);
    const refusal = await waitFor(() => rec.refusals[before], 5000, 'a refusal');
    assert.equal(refusal.failure, 'handshake');
    assert.equal(rec.handled.length, 1);
  });

  it('a slow handshake that never finishes is cut by the handshake timeout', async () => {
    const before = rec.refusals.length;
    const socket = net.connect(rec.port, '127.0.0.1');
    socket.on('error', () => {});
    const started = Date.now();
    await once(socket, 'close');
    const elapsed = Date.now() - started;
    assert.ok(elapsed < 8000, `the server must close the idle handshake (took ${elapsed} ms)`);
    const refusal = await waitFor(() => rec.refusals[before], 5000, 'a handshake-timeout refusal');
    assert.equal(refusal.failure, 'handshake-timeout');
    assert.equal(refusal.error.code, 'MESHLESS_ERR_HANDSHAKE_TIMEOUT');
  });
});

describe('security: renegotiation', function () {
  this.timeout(30_000);
  it('is refused even when TLS 1.2 is allowed', async () => {
    const ca = await createTestCA({ trustDomain: TD });
    const own = await ca.issue({ spiffeId: SERVER_ID, dnsNames: ['localhost'] });
    const server = createServer({ source: loadCredential(own), allow: ALLOWED_ID, minVersion: 'TLSv1.2', logger: { error() {}, warn() {}, info() {}, debug() {} } }, (req, res) => res.end('ok'));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const m = await ca.issue(ALLOWED_ID);
      const socket = tls.connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, cert: m.cert, key: m.key, ca: ca.bundle, servername: 'localhost', maxVersion: 'TLSv1.2', rejectUnauthorized: false });
      await once(socket, 'secureConnect');
      assert.equal(socket.getProtocol(), 'TLSv1.2');
      socket.on('error', () => {});
      const outcome = await new Promise<string>((resolve) => {
        const ok = socket.renegotiate({ rejectUnauthorized: false }, (err) => resolve(err ? `refused: ${err.message}` : 'renegotiated'));
        if (!ok) resolve('refused: renegotiation not started');
        socket.once('close', () => resolve('refused: connection closed'));
      });
      assert.match(outcome, /^refused/);
      socket.destroy();
    } finally {
      server.close();
      server.closeAllConnections();
    }
  });
});
