// Interop with Go's crypto/tls and net/http (standard library only), TLS configured as go-spiffe's
// spiffetls/tlsconfig does: a Go client against createServer, and createAgent against Go servers.
import assert from 'node:assert/strict';
import { request } from 'undici';
import { codes, isMeshlessError, loadCredential, silentLogger } from '@meshless/core';
import { createAgent, createServer, peerOf, type MeshlessAgent, type MeshlessServer, type PeerRefusal, type ServerAllowed, type ServerRefused } from '@meshless/http';
import { manualSource, waitFor, type ManualSource } from '@meshless/testing';
import { closeServer, listen } from '@meshless/fixtures/http-server';
import { rejectionOf } from '@meshless/fixtures/http-client';
import { CLIENT_ID, DENIED_ID, SERVER_ID, TD } from '@meshless/fixtures/grpc-pki';
import { GoClient, GoServer, goSuite, writeBundleOnly, writePeerFiles, type PeerFiles } from './go-peer.js';

describe('interop with Go crypto/tls + net/http (go-spiffe style)', function () {
  this.timeout(30_000);
  const go = goSuite('meshless-go-http-');

  async function goClient(files: PeerFiles, options: { h2?: boolean; maxTls?: '1.2' | '1.3' } = {}): Promise<GoClient> {
    const client = await GoClient.start(go.bin, files, SERVER_ID, options);
    go.stops.push(() => client.stop());
    return client;
  }

  describe('a Go client against createServer', () => {
    let source: ManualSource;
    let server: MeshlessServer;
    let url: string;
    let handled: string[];
    let refusals: PeerRefusal[];

    beforeEach(async () => {
      handled = [];
      refusals = [];
      source = manualSource(go.pki.server);
      server = createServer({ source, allow: CLIENT_ID, logger: silentLogger }, (req, res) => {
        handled.push(String(peerOf(req)));
        res.end(`hello ${String(peerOf(req))} over HTTP/${req.httpVersion}`);
      });
      server.on('peerRefused', (r) => refusals.push(r));
      url = `https://localhost:${await listen(server)}`;
      go.stops.push(() => closeServer(server));
    });

    it('HTTP/1.1: served; the handler sees the Go client SPIFFE ID; the Go client verified ours (TLS 1.3, chain through an intermediate)', async () => {
      const client = await goClient(await writePeerFiles(go.tmp, 'client', go.pki.client));
      const r = await client.get(`${url}/h1`);
      assert.ok(r.ok, JSON.stringify(r));
      assert.equal(r.status, 200);
      assert.equal(r.body, `hello ${CLIENT_ID} over HTTP/1.1`);
      assert.equal(r.proto, 'HTTP/1.1');
      assert.equal(r.peer, SERVER_ID);
      assert.equal(r.version, 'TLSv1.3');
      assert.deepEqual(handled, [CLIENT_ID]);
    });

    it('HTTP/2 offered (ALPN h2, http/1.1): createServer selects http/1.1 (it serves HTTP/1.1 only, as documented) and the Go client is served over it', async () => {
      const client = await goClient(await writePeerFiles(go.tmp, 'client', go.pki.client), { h2: true });
      const r = await client.get(`${url}/h2`);
      assert.ok(r.ok, JSON.stringify(r));
      assert.equal(r.status, 200);
      assert.equal(r.proto, 'HTTP/1.1');
      assert.equal(r.alpn, 'http/1.1');
      // Still so after a rotation (setSecureContext with the complete options).
      const next = await go.pki.ca.issue({ spiffeId: SERVER_ID, dnsNames: ['localhost'] });
      source.set({ cert: next.cert, key: next.key, ca: go.pki.ca.bundle });
      const after = await client.get(`${url}/h2-after-rotation`);
      assert.ok(after.ok, JSON.stringify(after));
      assert.deepEqual([after.proto, after.alpn, after.didResume], ['HTTP/1.1', 'http/1.1', false]);
      assert.deepEqual(handled, [CLIENT_ID, CLIENT_ID]);
    });

    it('refuses a denied Go client, one from another CA and one without a certificate; the handler never runs', async () => {
      const cases: [string, PeerFiles, string, string | undefined][] = [
        ['denied', await writePeerFiles(go.tmp, 'denied', go.pki.denied), 'denied', DENIED_ID],
        ['other CA', await writePeerFiles(go.tmp, 'other-ca', go.pki.otherCaClient, go.pki.ca.bundle), 'unverified', CLIENT_ID],
        ['no certificate', await writeBundleOnly(go.tmp, 'none', go.pki.ca.bundle), 'unverified', undefined],
      ];
      for (const [name, files, failure, presented] of cases) {
        const client = await goClient(files);
        const seen = refusals.length;
        const r = await client.get(`${url}/${name.replace(/ /g, '-')}`);
        assert.equal(r.ok, false, `${name}: ${JSON.stringify(r)}`);
        await waitFor(() => refusals.length > seen, 5000, `${name}: the refusal`);
        assert.equal(refusals[seen]!.failure, failure, name);
        assert.equal(refusals[seen]!.peer?.spiffeId, presented, name);
      }
      assert.deepEqual(handled, []);
    });

    it('session resumption: the second connection resumes and is served; after setAllow drops the client, its resumed session is refused', async () => {
      const client = await goClient(await writePeerFiles(go.tmp, 'client', go.pki.client));
      const first = await client.get(`${url}/first`);
      const second = await client.get(`${url}/second`);
      assert.ok(first.ok && second.ok, JSON.stringify([first, second]));
      assert.equal(first.didResume, false);
      assert.equal(second.didResume, true, 'Go resumed the session (ClientSessionCache)');
      assert.equal(second.peer, SERVER_ID, 'Go keeps the server identity with the session');
      assert.deepEqual(handled, [CLIENT_ID, CLIENT_ID]);

      server.setAllow(`spiffe://${TD}/ns/web/sa/someone-else`);
      const third = await client.get(`${url}/third`);
      assert.equal(third.ok, false, JSON.stringify(third));
      await waitFor(() => refusals.length === 1, 5000, 'the refusal');
      assert.equal(refusals[0]!.failure, 'denied');
      assert.equal(refusals[0]!.resumed, true, 'the refused connection was a resumed session');
      assert.equal(refusals[0]!.peer?.spiffeId, CLIENT_ID);
      assert.deepEqual(handled, [CLIENT_ID, CLIENT_ID]);
    });

    it("TLS 1.2 (minVersion 'TLSv1.2', a Go client capped at 1.2): its resumed session is served, and refused after setAllow drops it", async () => {
      await closeServer(server);
      server = createServer({ source, allow: CLIENT_ID, logger: silentLogger, minVersion: 'TLSv1.2' }, (req, res) => {
        handled.push(String(peerOf(req)));
        res.end('ok');
      });
      server.on('peerRefused', (r) => refusals.push(r));
      url = `https://localhost:${await listen(server)}`;
      go.stops.push(() => closeServer(server));
      const client = await goClient(await writePeerFiles(go.tmp, 'client', go.pki.client), { maxTls: '1.2' });
      const first = await client.get(`${url}/first`);
      const second = await client.get(`${url}/second`);
      assert.deepEqual([first.ok, first.version, first.didResume], [true, 'TLSv1.2', false], JSON.stringify(first));
      assert.deepEqual([second.ok, second.version, second.didResume], [true, 'TLSv1.2', true], JSON.stringify(second));
      server.setAllow(`spiffe://${TD}/ns/web/sa/someone-else`);
      const third = await client.get(`${url}/third`);
      assert.equal(third.ok, false, JSON.stringify(third));
      await waitFor(() => refusals.length === 1, 5000, 'the refusal');
      assert.deepEqual([refusals[0]!.failure, refusals[0]!.resumed, refusals[0]!.peer?.spiffeId], ['denied', true, CLIENT_ID]);
      assert.deepEqual(handled, [CLIENT_ID, CLIENT_ID]);
    });

    it("session resumption: after the server's bundle rotates to a CA without the client's issuer, the client (holding a session) is refused", async () => {
      // The Go client trusts both CAs, so that it accepts the server's next certificate: only
      // meshless's side can refuse.
      const client = await goClient(await writePeerFiles(go.tmp, 'client-both', go.pki.client, go.pki.ca.bundle + go.pki.otherCa.bundle));
      assert.ok((await client.get(`${url}/first`)).ok);
      const second = await client.get(`${url}/second`);
      assert.ok(second.ok && second.didResume, JSON.stringify(second));

      const next = await go.pki.otherCa.issue({ spiffeId: SERVER_ID, dnsNames: ['localhost'] });
      source.set({ cert: next.cert, key: next.key, ca: go.pki.otherCa.bundle });
      const third = await client.get(`${url}/third`);
      assert.equal(third.ok, false, JSON.stringify(third));
      await waitFor(() => refusals.length === 1, 5000, 'the refusal');
      assert.equal(refusals[0]!.failure, 'unverified');
      assert.equal(refusals[0]!.peer?.spiffeId, CLIENT_ID);
      assert.deepEqual(handled, [CLIENT_ID, CLIENT_ID]);
    });
  });

  describe('createAgent against a Go server', () => {
    let agent: MeshlessAgent | undefined;
    afterEach(async () => {
      await agent?.close();
      agent = undefined;
    });

    async function goServer(options: { id?: string; style?: 'spiffe' | 'clientcas' } = {}): Promise<GoServer> {
      const issued = options.id ? await go.pki.ca.issue({ spiffeId: options.id, dnsNames: ['localhost'] }) : go.pki.server;
      const files = await writePeerFiles(go.tmp, `server-${options.style ?? 'spiffe'}-${options.id ? 'other' : 'own'}`, issued);
      const server = await GoServer.start(go.bin, files, { allow: CLIENT_ID, style: options.style ?? 'spiffe' });
      go.stops.push(() => server.stop());
      return server;
    }

    async function getJson(server: GoServer, path: string, options: { reset?: boolean } = {}): Promise<Record<string, unknown>> {
      const res = await request(`${server.origin}${path}`, { dispatcher: agent!, reset: options.reset ?? false });
      assert.equal(res.statusCode, 200);
      return (await res.body.json()) as Record<string, unknown>;
    }

    for (const style of ['spiffe', 'clientcas'] as const) {
      it(`${style === 'spiffe' ? 'go-spiffe style (RequireAnyClientCert, no CA names)' : 'ClientCAs + RequireAndVerifyClientCert'}: the request succeeds and the Go server saw our SPIFFE ID, over HTTP/1.1 and (allowH2) HTTP/2`, async () => {
        const server = await goServer({ style });
        agent = createAgent({ source: loadCredential(go.pki.client), allow: SERVER_ID, logger: silentLogger });
        const h1 = await getJson(server, '/h1');
        assert.deepEqual([h1.server, h1.peer, h1.proto], ['go', CLIENT_ID, 'HTTP/1.1']);
        await agent.close();
        agent = createAgent({ source: loadCredential(go.pki.client), allow: SERVER_ID, logger: silentLogger, allowH2: true });
        const h2 = await getJson(server, '/h2');
        assert.deepEqual([h2.server, h2.peer, h2.proto], ['go', CLIENT_ID, 'HTTP/2.0']);
        assert.deepEqual(
          (await server.waitForHandshakes(2)).map((h) => [h.alpn, h.version, h.peer]),
          [
            ['http/1.1', 'TLSv1.3', CLIENT_ID],
            ['h2', 'TLSv1.3', CLIENT_ID],
          ],
        );
      });
    }

    it('a Go server presenting a SPIFFE ID the rules do not allow: MESHLESS_ERR_PEER_DENIED, and no request reaches it', async () => {
      const server = await goServer({ id: `spiffe://${TD}/ns/app/sa/impostor` });
      agent = createAgent({ source: loadCredential(go.pki.client), allow: SERVER_ID, logger: silentLogger });
      const refused: ServerRefused[] = [];
      agent.on('peerRefused', (e) => refused.push(e));
      const err = await rejectionOf(request(`${server.origin}/secret`, { dispatcher: agent, method: 'POST', body: 'secret' }));
      assert.ok(isMeshlessError(err, codes.PEER_DENIED), String(err));
      assert.match(err.message, new RegExp(`spiffe://${TD}/ns/app/sa/impostor`));
      assert.equal(refused[0]?.peer?.spiffeId, `spiffe://${TD}/ns/app/sa/impostor`);
      // The Go server's side of the connection ended (seen here: "TLS handshake error …: EOF", since
      // we close before our Finished is flushed), and it got no request.
      await server.child.waitFor((e) => e.handshake === 'server' || typeof e.serverError === 'string', 5000, 'the Go server to log the connection');
      assert.deepEqual(server.requests(), []);
    });

    it("resumes with Go's session tickets, and still checks the server on the resumed connection", async () => {
      const server = await goServer();
      let allowed = true;
      agent = createAgent({ source: loadCredential(go.pki.client), allow: [(peer) => allowed && peer.spiffeId === SERVER_ID], logger: silentLogger });
      const seen: ServerAllowed[] = [];
      const refused: ServerRefused[] = [];
      agent.on('peerAllowed', (e) => seen.push(e));
      agent.on('peerRefused', (e) => refused.push(e));
      await getJson(server, '/first', { reset: true });
      await getJson(server, '/second', { reset: true });
      assert.deepEqual(
        (await server.waitForHandshakes(2)).map((h) => h.didResume),
        [false, true],
        'the second connection resumed a Go session ticket',
      );
      assert.deepEqual(
        seen.map((e) => [e.resumed, e.peer.spiffeId]),
        [
          [false, SERVER_ID],
          [true, SERVER_ID],
        ],
      );
      allowed = false;
      const err = await rejectionOf(request(`${server.origin}/third`, { dispatcher: agent, reset: true }));
      assert.ok(isMeshlessError(err, codes.PEER_DENIED), String(err));
      assert.deepEqual(refused.map((e) => [e.resumed, e.peer?.spiffeId]), [[true, SERVER_ID]]);
      // The Go server's side of the third connection ended (a resumed handshake, or cut by our close).
      await server.child.waitFor(() => server.handshakes().length === 3 || server.errors().length > 0, 5000, 'the Go server to log the third connection');
      assert.ok(server.handshakes().slice(2).every((h) => h.didResume === true));
      assert.deepEqual(server.requests().map((r) => r.request), ['/first', '/second']);
    });
  });
});
