import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { acceptedPeerCertificateOf, peerCertificateOf, sessionPeerCertificate, withoutPeerCertificate } from '@meshless/core/internal';
import { OpenSslCA } from './helpers/openssl.js';

const SERVER_ID = 'spiffe://prod.example/ns/pay/sa/api';
const CLIENT_ID = 'spiffe://prod.example/ns/orders/sa/web';

interface Accepted {
  socket: tls.TLSSocket;
  resumed: boolean;
  /** The legacy read, for comparison (taken after acceptedPeerCertificateOf). */
  legacy: X509Certificate | undefined;
  fromSession: X509Certificate | undefined;
  /** Whether the server's session held the client certificate (the fast path, not the fallback). */
  inSession: boolean;
}

describe('TLS session reading (server certificate read, client session without the server certificate)', function () {
  let ca: OpenSslCA;
  let server: tls.Server;
  let port: number;
  let clientCert: string;
  let clientKey: string;
  const accepted: Accepted[] = [];

  before(async function () {
    if (!OpenSslCA.available()) this.skip();
    ca = new OpenSslCA();
    const serverKey = ca.key('ec-sec1');
    const ck = ca.key('ec-sec1');
    clientCert = ca.issue(ck, [`URI.1 = ${CLIENT_ID}`]);
    clientKey = ca.read(ck);
    server = tls.createServer(
      { cert: ca.issue(serverKey, [`URI.1 = ${SERVER_ID}`, 'DNS.1 = server.test']), key: ca.read(serverKey), ca: ca.caCert, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' },
      (socket) => {
        const fromSession = acceptedPeerCertificateOf(socket);
        const session = socket.getSession();
        accepted.push({ socket, resumed: socket.isSessionReused(), fromSession, legacy: peerCertificateOf(socket), inSession: session !== undefined && sessionPeerCertificate(session) !== undefined });
        socket.end('ok');
      },
    );
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });
  after(() => server?.close());
  beforeEach(() => {
    accepted.length = 0;
  });

  /** One connection; resolves with the client's socket state and the newest session it was given. */
  function connect(options: tls.ConnectionOptions): Promise<{ resumed: boolean; session: Buffer | undefined; sawCertificate: boolean }> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect({ port, host: '127.0.0.1', servername: 'server.test', ca: ca.caCert, ...options });
      let session: Buffer | undefined;
      let resumed = false;
      let sawCertificate = false;
      socket.on('session', (s: Buffer) => {
        session = s;
      });
      socket.once('secureConnect', () => {
        resumed = socket.isSessionReused();
        sawCertificate = Boolean(socket.getPeerCertificate()?.raw);
      });
      socket.on('error', reject);
      socket.on('close', () => resolve({ resumed, session, sawCertificate }));
      socket.resume();
    });
  }

  for (const version of ['TLSv1.3', 'TLSv1.2'] as const) {
    it(`${version}: the server reads the same client certificate from the session as from getPeerCertificate(), full and resumed`, async function () {
      const first = await connect({ cert: clientCert, key: clientKey, maxVersion: version });
      assert.ok(first.session, 'the client was given a session');
      const second = await connect({ cert: clientCert, key: clientKey, maxVersion: version, session: first.session });
      assert.equal(second.resumed, true, 'the second connection resumed');
      assert.equal(accepted.length, 2);
      assert.deepEqual(
        accepted.map((a) => a.resumed),
        [false, true],
      );
      for (const a of accepted) {
        assert.ok(a.inSession, 'the server session holds the client certificate');
        assert.ok(a.fromSession, 'read from the session');
        assert.ok(a.legacy, 'read through getPeerCertificate()');
        assert.ok(a.fromSession.raw.equals(a.legacy.raw), 'the same certificate');
        assert.equal(a.fromSession.subjectAltName, `URI:${CLIENT_ID}`);
        // The cache hands out one X509Certificate per distinct certificate, whichever way it was read.
        assert.equal(a.fromSession, a.legacy);
      }
    });

    it(`${version}: a client session ${version === 'TLSv1.3' ? 'without its server certificate resumes, and shows the client no certificate' : 'keeps its server certificate (Node needs it on a resumed TLS 1.2 session)'}`, async function () {
      const first = await connect({ cert: clientCert, key: clientKey, maxVersion: version });
      assert.ok(first.session);
      const inSession = sessionPeerCertificate(first.session);
      assert.ok(inSession, 'the client session carries the server certificate');
      assert.equal(new X509Certificate(inSession).subjectAltName, `URI:${SERVER_ID}, DNS:server.test`);
      const stripped = withoutPeerCertificate(first.session);
      if (version === 'TLSv1.2') {
        assert.equal(stripped, first.session, 'a TLS 1.2 session is kept as it is');
      } else {
        assert.ok(stripped.length < first.session.length);
        assert.equal(sessionPeerCertificate(stripped), undefined, 'no certificate left in it');
        assert.ok(withoutPeerCertificate(stripped).equals(stripped), 'stripping twice changes nothing');
      }
      const second = await connect({ cert: clientCert, key: clientKey, maxVersion: version, session: stripped });
      assert.equal(second.resumed, true, 'resumed with the cached session');
      if (version === 'TLSv1.3') assert.equal(second.sawCertificate, false, 'a resumed TLS 1.3 client sees no server certificate');
      // The server still sees the client's certificate on the resumed connection.
      assert.equal(accepted[1]?.resumed, true);
      assert.equal(accepted[1]?.fromSession?.subjectAltName, `URI:${CLIENT_ID}`);
    });
  }

  it('certificates that did not verify are read but never cached (nobody can fill the cache with their own)', async function () {
    const stranger = new OpenSslCA();
    const k = stranger.key('ec-sec1');
    const cert = stranger.issue(k, [`URI.1 = ${CLIENT_ID}`]);
    await connect({ cert, key: stranger.read(k) });
    await connect({ cert, key: stranger.read(k) });
    await connect({ cert: clientCert, key: clientKey });
    await connect({ cert: clientCert, key: clientKey });
    assert.equal(accepted.length, 4);
    assert.deepEqual(
      accepted.map((a) => a.socket.authorized),
      [false, false, true, true],
    );
    for (const a of accepted) assert.equal(a.fromSession?.subjectAltName, `URI:${CLIENT_ID}`);
    assert.ok(accepted[0]!.fromSession!.raw.equals(accepted[1]!.fromSession!.raw), 'the same unverified certificate twice');
    assert.notEqual(accepted[0]!.fromSession, accepted[1]!.fromSession, 'parsed afresh each time: not cached');
    assert.equal(accepted[2]!.fromSession, accepted[3]!.fromSession, 'a verified certificate is parsed once');
  });

  it('a client without a certificate: the session holds none, and the server reads none', async function () {
    await connect({});
    assert.equal(accepted.length, 1);
    assert.equal(accepted[0]!.fromSession, undefined);
    assert.equal(accepted[0]!.legacy, undefined);
    const session = accepted[0]!.socket.getSession();
    if (session !== undefined) assert.equal(sessionPeerCertificate(session), undefined);
  });

  it('malformed sessions are never guessed at: every truncation, a flipped tag, trailing bytes, garbage', async function () {
    const { session } = await connect({ cert: clientCert, key: clientKey });
    assert.ok(session);
    const der = sessionPeerCertificate(session);
    assert.ok(der);
    let read = 0;
    for (let cut = 0; cut < session.length; cut++) {
      const truncated = session.subarray(0, cut);
      const peer = sessionPeerCertificate(truncated);
      // A truncated outer SEQUENCE is never read.
      assert.equal(peer, undefined, `truncated at ${cut}`);
      assert.equal(withoutPeerCertificate(truncated), truncated);
      read++;
    }
    assert.equal(read, session.length);
    assert.equal(sessionPeerCertificate(Buffer.concat([session, Buffer.from([0])])), undefined, 'trailing bytes');
    const notSequence = Buffer.from(session);
    notSequence[0] = 0x31;
    assert.equal(sessionPeerCertificate(notSequence), undefined, 'not a SEQUENCE');
    // A [3] field that holds something other than exactly one certificate.
    const start = session.indexOf(der) - 4;
    assert.equal(session[start], 0xa3, 'the [3] field precedes the certificate');
    const wrongInner = Buffer.from(session);
    wrongInner[start + 4] = 0x31;
    assert.equal(sessionPeerCertificate(wrongInner), undefined, 'the [3] field does not hold a SEQUENCE');
    // Node 22+'s envelope around a client session ("\0nodejs:tls:session:1\0", name length, name, DER).
    const enveloped = Buffer.concat([Buffer.from('\0nodejs:tls:session:1\0', 'latin1'), Buffer.from([0, 4]), Buffer.from('name'), session.subarray(session.indexOf(0x30))]);
    assert.ok(sessionPeerCertificate(enveloped)?.equals(der), 'read through the envelope');
    const badMagic = Buffer.from(enveloped);
    badMagic[3] ^= 1;
    assert.equal(sessionPeerCertificate(badMagic), undefined, 'an unknown envelope');
    assert.equal(withoutPeerCertificate(badMagic), badMagic);
    const badLength = Buffer.from(enveloped);
    badLength.writeUInt16BE(0xffff, 22);
    assert.equal(sessionPeerCertificate(badLength), undefined, 'an envelope longer than the session');
    for (const garbage of [Buffer.alloc(0), Buffer.from([0x30]), Buffer.from([0x30, 0x80, 0, 0]), Buffer.from([0x30, 0x84, 0, 0, 0, 1, 0]), Buffer.from([0x30, 0x03, 0x1f, 0x01, 0x00])]) {
      assert.equal(sessionPeerCertificate(garbage), undefined, garbage.toString('hex'));
      assert.equal(withoutPeerCertificate(garbage), garbage);
    }
  });
});
