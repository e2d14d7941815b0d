import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import grpc from '@grpc/grpc-js';
import { loadCredential, silentLogger } from '@meshless/core';
import { serverCredentials, peerOf as grpcPeerOf } from '@meshless/grpc';
import { createAgent, createServer, peerOf, type MeshlessServer, type PeerRefusal, type ServerRefused } from '@meshless/http';
import { createTestCA, manualSource, waitFor, type IssuedCertificate, type TestCA } from '@meshless/testing';
import { request } from 'undici';

// Servers read the client certificate from the TLS session (getSession()) and clients cache TLS 1.3
// sessions without the server certificate (packages/core/src/tls-session.ts). These tests attack
// that on live connections: the identity a handler sees must be the one OpenSSL verified, full or
// resumed, TLS 1.2 or 1.3, HTTP/1.1 or gRPC, whatever client (Node, openssl s_client), and a
// client's stripped session must never stand in for a server it was not issued by.

const TD = 'prod.example';
const SERVER_ID = `spiffe://${TD}/ns/pay/sa/api`;
const A_ID = `spiffe://${TD}/ns/orders/sa/a`;
const B_ID = `spiffe://${TD}/ns/orders/sa/b`;
const VERSIONS = ['TLSv1.3', 'TLSv1.2'] as const;

interface Material {
  cert?: string;
  key?: string;
}

interface Outcome {
  /** The response body ('' when the connection was refused). */
  body: string;
  resumed: boolean;
  /** The newest session the server gave the client. */
  session?: Buffer;
  /** gRPC only: the call's grpc-status. */
  status?: string;
}

describe('security: the client certificate read from the TLS session', function () {
  this.timeout(60_000);
  let ca: TestCA;
  let a: IssuedCertificate;
  let b: IssuedCertificate;
  let own: IssuedCertificate;

  before(async () => {
    // Clients under an intermediate: they send a chain, the session keeps only the leaf.
    ca = await createTestCA({ trustDomain: TD, intermediate: true });
    own = await ca.issue({ spiffeId: SERVER_ID, dnsNames: ['localhost'] });
    a = await ca.issue(A_ID);
    b = await ca.issue(B_ID);
  });

  describe('createServer (TLS 1.2 allowed)', () => {
    let server: MeshlessServer;
    let port: number;
    /** What the handler saw: peerOf(req), whether resumed, and the legacy certificate read. */
    let seen: { peer: string; resumed: boolean; legacy: string | undefined }[];
    let refusals: PeerRefusal[];

    beforeEach(async () => {
      seen = [];
      refusals = [];
      server = createServer({ source: loadCredential(own), allow: `spiffe://${TD}/ns/orders/**`, minVersion: 'TLSv1.2', logger: silentLogger }, (req, res) => {
        const socket = req.socket as tls.TLSSocket;
        const peer = String(peerOf(req));
        seen.push({ peer, resumed: socket.isSessionReused(), legacy: socket.getPeerCertificate()?.subjectaltname });
        res.end(peer);
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

    /** One GET on a fresh raw TLS connection (connection: close), offering `session`. */
    function get(m: Material, maxVersion: tls.SecureVersion, session?: Buffer): Promise<Outcome> {
      return new Promise((resolve) => {
        let latest: Buffer | undefined;
        let resumed = false;
        let response = '';
        const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: ca.bundle, ...m, maxVersion, ...(session ? { session } : {}) });
        socket.on('session', (s: Buffer) => (latest = s));
        socket.on('secureConnect', () => {
          resumed = socket.isSessionReused();
          socket.write('GET / HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n');
        });
        socket.on('data', (d: Buffer) => (response += d.toString()));
        socket.on('error', () => {});
        socket.on('close', () => resolve({ body: response.split('\r\n\r\n')[1] ?? '', resumed, ...(latest ? { session: latest } : {}) }));
      });
    }

    for (const version of VERSIONS) {
      it(`${version}: two clients, full and resumed, interleaved: each request carries its own client's identity`, async () => {
        const a1 = await get(a, version);
        const b1 = await get(b, version);
        const a2 = await get(a, version, a1.session);
        const b2 = await get(b, version, b1.session);
        const a3 = await get(a, version, a2.session ?? a1.session);
        assert.deepEqual([a1, b1, a2, b2, a3].map((o) => [o.body, o.resumed]), [
          [A_ID, false],
          [B_ID, false],
          [A_ID, true],
          [B_ID, true],
          [A_ID, true],
        ]);
        // The session read agrees with Node's own certificate object on every connection.
        assert.deepEqual(seen.map((s) => s.legacy), seen.map((s) => `URI:${s.peer}`));
        assert.deepEqual(refusals, []);
      });

      it(`${version}: a resumed connection is the session's identity, not the certificate configured on the resuming socket`, async () => {
        // The session (its master secret) is what authenticates a resumed connection: OpenSSL sends
        // no certificate on resumption, so B's socket resuming A's session is A, as OpenSSL says.
        const a1 = await get(a, version);
        const crossed = await get(b, version, a1.session);
        assert.equal(crossed.resumed, true);
        assert.equal(crossed.body, A_ID);
        assert.equal(seen[1]?.legacy, `URI:${A_ID}`, "Node's getPeerCertificate() says the same");
      });
    }

    it('TLS 1.3: a client that sent no certificate is refused, and no session it was given lets it in (Node 20 and 22 report such a resumption authorized)', async () => {
      // On a plain Node server a certificate-less TLS 1.3 client gets tickets, and resuming one shows
      // authorized: true on Node 20 and 22 with no certificate anywhere. createServer destroys the
      // socket before the tickets are flushed (none seen here), and would refuse the resumption anyway.
      let offered = 0;
      for (let i = 0; i < 3; i++) {
        const first = await get({}, 'TLSv1.3');
        assert.equal(first.body, '');
        if (first.session === undefined) continue;
        offered++;
        const again = await get({}, 'TLSv1.3', first.session);
        assert.equal(again.body, '', 'no response on the resumed connection');
      }
      assert.deepEqual(seen, [], 'the handler never ran');
      await waitFor(() => refusals.length >= 3 + offered || undefined, 5000, 'every connection refused');
      assert.ok(refusals.every((r) => r.failure === 'unverified' && /sent no certificate/.test(r.reason)), refusals.map((r) => r.reason).join('; '));
    });

    it('openssl s_client -sess_out / -sess_in resumes, and the handler sees its identity (TLS 1.2 and 1.3)', async function () {
      const dir = mkdtempSync(join(tmpdir(), 'meshless-sess-'));
      try {
        writeFileSync(join(dir, 'a.crt'), a.cert);
        writeFileSync(join(dir, 'a.key'), a.key);
        writeFileSync(join(dir, 'ca.crt'), ca.bundle);
        for (const flag of ['-tls1_3', '-tls1_2']) {
          const sess = join(dir, `session${flag}.pem`);
          const args = ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', '-CAfile', join(dir, 'ca.crt'), '-cert', join(dir, 'a.crt'), '-cert_chain', join(dir, 'a.crt'), '-key', join(dir, 'a.key'), flag, '-ign_eof'];
          const first = await run('openssl', [...args, '-sess_out', sess], 'GET / HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n');
          if (first === undefined) this.skip();
          assert.match(first, new RegExp(`\r\n\r\n${A_ID}`), `${flag}: full handshake answered`);
          const second = await run('openssl', [...args, '-sess_in', sess], 'GET / HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n');
          assert.match(second ?? '', /^Reused, /m, `${flag}: resumed`);
          assert.match(second ?? '', new RegExp(`\r\n\r\n${A_ID}`), `${flag}: resumed connection answered with the identity`);
        }
        assert.deepEqual(seen.map((s) => [s.peer, s.resumed]), [
          [A_ID, false],
          [A_ID, true],
          [A_ID, false],
          [A_ID, true],
        ]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe('gRPC serverCredentials (TLS 1.2 allowed)', () => {
    const json = { s: (v: unknown) => Buffer.from(JSON.stringify(v)), d: (buf: Buffer) => JSON.parse(buf.toString()) };
    const service = {
      who: { path: '/sec.Echo/Who', requestStream: false, responseStream: false, requestSerialize: json.s, requestDeserialize: json.d, responseSerialize: json.s, responseDeserialize: json.d },
    } as const;
    let server: grpc.Server;
    let port: number;

    before(async () => {
      server = new grpc.Server();
      server.addService(service, { who: (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => cb(null, { peer: String(grpcPeerOf(call)) }) });
      port = await new Promise<number>((resolve, reject) =>
        server.bindAsync('localhost:0', serverCredentials({ source: loadCredential(own), allow: `spiffe://${TD}/ns/orders/**`, minVersion: 'TLSv1.2', logger: silentLogger }), (err, p) => (err ? reject(err) : resolve(p))),
      );
    });
    after(() => server?.forceShutdown());

    /** One unary call over HTTP/2 on a fresh TLS connection (node:tls, so it can offer a session); the peer the handler saw. */
    function who(m: Material, maxVersion: tls.SecureVersion, session?: Buffer): Promise<Outcome> {
      return new Promise((resolve) => {
        let latest: Buffer | undefined;
        let resumed = false;
        const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: ca.bundle, ...m, ALPNProtocols: ['h2'], maxVersion, ...(session ? { session } : {}) });
        socket.on('session', (s: Buffer) => (latest = s));
        socket.on('secureConnect', () => (resumed = socket.isSessionReused()));
        const client = http2.connect(`https://localhost:${port}`, { createConnection: () => socket });
        client.on('error', () => {});
        const call = client.request({ ':method': 'POST', ':path': '/sec.Echo/Who', 'content-type': 'application/grpc', te: 'trailers' });
        const message = Buffer.from('{}');
        const frame = Buffer.alloc(5 + message.length);
        frame.writeUInt32BE(message.length, 1);
        message.copy(frame, 5);
        call.end(frame);
        let data = Buffer.alloc(0);
        let status = '';
        call.on('data', (d: Buffer) => (data = Buffer.concat([data, d])));
        call.on('response', (headers) => (status = String(headers['grpc-status'] ?? status)));
        call.on('trailers', (trailers) => (status = String(trailers['grpc-status'] ?? status)));
        call.on('error', () => {});
        call.on('close', () => {
          // Closing the HTTP/2 session closes the socket: by then it has every ticket the server sent.
          const done = (): void => resolve({ body: data.length > 5 ? (JSON.parse(data.subarray(5).toString()) as { peer: string }).peer : '', resumed, status, ...(latest ? { session: latest } : {}) });
          if (socket.destroyed) done();
          else socket.once('close', done);
          client.close();
        });
      });
    }

    for (const version of VERSIONS) {
      it(`${version}: two clients, full and resumed: each call carries its own client's identity`, async () => {
        const a1 = await who(a, version);
        const b1 = await who(b, version);
        const a2 = await who(a, version, a1.session);
        const b2 = await who(b, version, b1.session);
        assert.deepEqual([a1, b1, a2, b2].map((o) => [o.body, o.resumed, o.status]), [
          [A_ID, false, '0'],
          [B_ID, false, '0'],
          [A_ID, true, '0'],
          [B_ID, true, '0'],
        ]);
      });

      it(`${version}: a client the allow-list denies is denied again when it resumes its session`, async () => {
        const denied = await ca.issue(`spiffe://${TD}/ns/billing/sa/c`);
        const first = await who(denied, version);
        assert.equal(first.status, String(grpc.status.PERMISSION_DENIED));
        assert.ok(first.session, 'the TLS handshake completed: the client holds a session');
        const again = await who(denied, version, first.session);
        assert.equal(again.resumed, true);
        assert.deepEqual([again.status, again.body], [String(grpc.status.PERMISSION_DENIED), '']);
      });
    }

    it('TLS 1.2: a client cannot renegotiate (the session, and the peer cached for the connection, cannot change under it)', async () => {
      const outcome = await new Promise<string>((resolve) => {
        const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: ca.bundle, cert: a.cert, key: a.key, ALPNProtocols: ['h2'], maxVersion: 'TLSv1.2' });
        socket.on('error', (err) => resolve(`refused: ${err.message}`));
        socket.on('close', () => resolve('refused: connection closed'));
        socket.on('secureConnect', () => {
          socket.resume();
          if (!socket.renegotiate({ rejectUnauthorized: true }, (err) => resolve(err ? `refused: ${err.message}` : 'renegotiated'))) resolve('refused: not started');
        });
      });
      // OpenSSL's own refusal (SSL_OP_NO_RENEGOTIATION), not only HTTP/2 closing the connection.
      assert.match(outcome, /^refused: .*no renegotiation/);
    });
  });

  describe('createAgent (stripped TLS 1.3 sessions)', () => {
    let x: tls.Server;
    let y: tls.Server;
    let front: net.Server;
    let target: number;
    let xPort: number;
    let yPort: number;
    let frontPort: number;

    /** A TLS server answering every request with `who`; returns its port. */
    async function tlsServer(cert: IssuedCertificate, who: string): Promise<[tls.Server, number]> {
      const s = tls.createServer({ cert: cert.cert, key: cert.key, ca: ca.bundle, requestCert: true, rejectUnauthorized: true }, (socket) => {
        socket.once('data', () => socket.end(`HTTP/1.1 200 OK\r\ncontent-length: ${who.length}\r\nconnection: close\r\n\r\n${who}`));
      });
      s.listen(0, '127.0.0.1');
      await once(s, 'listening');
      return [s, (s.address() as AddressInfo).port];
    }

    before(async () => {
      const other = await ca.issue({ spiffeId: `spiffe://${TD}/ns/other/sa/impostor`, dnsNames: ['localhost'] });
      [x, xPort] = await tlsServer(own, 'x');
      [y, yPort] = await tlsServer(other, 'y');
      target = xPort;
      // One address whose backend the test switches: the agent's session cache is keyed by it.
      front = net.createServer((c) => {
        const back = net.connect(target, '127.0.0.1');
        c.pipe(back).pipe(c);
        c.on('error', () => back.destroy());
        back.on('error', () => c.destroy());
      });
      front.listen(0, '127.0.0.1');
      await once(front, 'listening');
      frontPort = (front.address() as AddressInfo).port;
    });
    after(() => {
      x?.close();
      y?.close();
      front?.close();
    });

    it('a cached session never stands in for another server at the same address: the new server gets a full handshake and is checked', async () => {
      const agent = createAgent({ source: manualSource(loadCredential(a)), allow: SERVER_ID, connections: 1, logger: silentLogger });
      const allowed: [boolean, string | undefined][] = [];
      const refused: ServerRefused[] = [];
      agent.on('peerAllowed', (e) => allowed.push([e.resumed, e.peer.spiffeId]));
      agent.on('peerRefused', (e) => refused.push(e));
      const origin = `https://localhost:${frontPort}`;
      const fetchOnce = async (): Promise<string> => {
        const res = await request(`${origin}/`, { dispatcher: agent, reset: true });
        return res.body.text();
      };
      try {
        assert.equal(await fetchOnce(), 'x');
        assert.equal(await fetchOnce(), 'x');
        assert.deepEqual(allowed, [
          [false, SERVER_ID],
          [true, SERVER_ID],
        ]);
        // The backend behind the address changes to a server of the same CA with another identity
        // (and its own ticket keys): the stripped session cannot resume there, and the impostor is refused.
        target = yPort;
        await assert.rejects(fetchOnce());
        assert.equal(refused.length, 1);
        assert.equal(refused[0]!.resumed, false, 'a full handshake, not the cached session');
        assert.equal(refused[0]!.peer?.spiffeId, `spiffe://${TD}/ns/other/sa/impostor`);
      } finally {
        await agent.close();
      }
    });
  });
});

/** Runs a command with `input` on stdin; its stdout, or undefined when it cannot be started. Bounded at 10 s. */
function run(cmd: string, args: string[], input: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'ignore'] });
    let out = '';
    const timer = setTimeout(() => child.kill(), 10_000);
    child.on('error', () => {
      clearTimeout(timer);
      resolve(undefined);
    });
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}
