import assert from 'node:assert/strict';
import tls from 'node:tls';
import { loadCredential, silentLogger } from '@meshless/core';
import { createTestCA, manualSource, type IssuedCertificate, type ManualSource, type TestCA } from '@meshless/testing';
import { startRecordingServer, type RecordingServer } from './recording-server.js';

// What the server's check sees of the client's chain on real TLS connections: an expired
// intermediate sent ahead of its renewal, a resumed session (no intermediates at all), a trust
// change that only adds a root.

const TD = 'prod.example';
const DAY = 86_400_000;

describe('security: chain walk on live connections (createServer)', function () {
  this.timeout(30_000);
  let ca: TestCA;
  let source: ManualSource;
  let rec: RecordingServer;
  let serverCert: IssuedCertificate;

  beforeEach(async () => {
    ca = await createTestCA({ trustDomain: TD, intermediate: true });
    serverCert = await ca.issue({ spiffeId: `spiffe://${TD}/ns/pay/sa/api`, dnsNames: ['localhost'] });
    source = manualSource(loadCredential(serverCert));
    rec = await startRecordingServer({ source, allow: `spiffe://${TD}/ns/web/**`, logger: silentLogger });
  });
  afterEach(() => rec.close());

  function connect(cert: string, key: string, session?: Buffer): Promise<{ socket: tls.TLSSocket; session: () => Buffer | undefined }> {
    return new Promise((resolve, reject) => {
      let latest: Buffer | undefined;
      const socket = tls.connect({ host: '127.0.0.1', port: rec.port, servername: 'localhost', cert, key, ca: ca.bundle, rejectUnauthorized: false, ...(session ? { session } : {}) });
      socket.on('session', (s: Buffer) => (latest = s));
      socket.once('secureConnect', () => resolve({ socket, session: () => latest }));
      socket.once('error', reject);
    });
  }

  /** One keep-alive request; resolves with the status line, or '' when the server closed instead. */
  function get(socket: tls.TLSSocket, url: string): Promise<string> {
    return new Promise((resolve) => {
      let response = '';
      const onData = (d: Buffer): void => {
        response += d.toString();
        if (response.includes('\r\n\r\nok')) finish();
      };
      const finish = (): void => {
        socket.off('data', onData);
        socket.off('close', finish);
        resolve(response.slice(0, 12));
      };
      socket.on('data', onData);
      socket.once('close', finish);
      socket.write(`GET ${url} HTTP/1.1\r\nhost: localhost\r\n\r\n`);
    });
  }

  it('accepts a client that sends an expired old intermediate ahead of the renewed one (OpenSSL accepts it too)', async () => {
    const client = await ca.issue(`spiffe://${TD}/ns/web/sa/frontend`);
    const [leafPem, currentPem] = client.cert.split(/(?<=-----END CERTIFICATE-----\n)/);
    const now = Date.now();
    const expired = await ca.reissueIntermediate({ notBefore: new Date(now - 2 * DAY), notAfter: new Date(now - DAY) });
    const { socket } = await connect(leafPem! + expired + currentPem!, client.key);
    assert.equal(await get(socket, '/expired-first'), 'HTTP/1.1 200', rec.refusals.map((r) => r.reason).join('; '));
    socket.destroy();
    assert.deepEqual(rec.handled, ['/expired-first']);
  });

  it('adding a second root keeps a resumed connection of a still-trusted client (its intermediates are known from accept time)', async () => {
    const client = await ca.issue(`spiffe://${TD}/ns/web/sa/frontend`);
    const first = await connect(client.cert, client.key);
    assert.equal(await get(first.socket, '/first'), 'HTTP/1.1 200');
    const session = first.session();
    first.socket.destroy();
    assert.ok(session);
    const resumed = await connect(client.cert, client.key, session);
    assert.equal(resumed.socket.isSessionReused(), true);
    assert.equal(await get(resumed.socket, '/resumed'), 'HTTP/1.1 200');
    const next = await createTestCA({ trustDomain: TD });
    source.set(loadCredential({ ...serverCert, ca: ca.bundle + next.bundle }, { generation: 2 }));
    assert.equal(await get(resumed.socket, '/after-new-root'), 'HTTP/1.1 200');
    assert.deepEqual(rec.retired, [], 'no connection retired: every client still verifies');
    resumed.socket.destroy();
  });

  it('a CA certificate presented as the client leaf is refused under "*"', async () => {
    rec.server.setAllow('*');
    const caLeaf = await ca.issue({ spiffeId: `spiffe://${TD}/ns/web/sa/ca`, isCA: true });
    const attempt = await connect(caLeaf.cert, caLeaf.key).then(
      async ({ socket }) => get(socket, '/ca-leaf'),
      () => '',
    );
    assert.equal(attempt, '');
    assert.deepEqual(rec.handled, []);
  });
});
