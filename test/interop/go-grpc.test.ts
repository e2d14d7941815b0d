// gRPC interop with Go, standard library only: a unary gRPC client and server written on
// net/http's HTTP/2 (ALPN h2, application/grpc, length-prefixed JSON messages, grpc-status in
// trailers), TLS as go-spiffe's tlsconfig sets it up. grpc-go ≥ 1.67 refuses a peer that does
// not negotiate ALPN h2, so both directions assert it.
import assert from 'node:assert/strict';
import grpc from '@grpc/grpc-js';
import { loadCredential, silentLogger } from '@meshless/core';
import { channelCredentials, serverCredentials } from '@meshless/grpc';
import { handlerRuns } from '@meshless/fixtures/grpc-echo';
import { echoClient, failure, startServer, unary, type Running } from '@meshless/fixtures/grpc-harness';
import { CLIENT_ID, DENIED_ID, SERVER_ID, TD } from '@meshless/fixtures/grpc-pki';
import { GoClient, GoServer, goSuite, writeBundleOnly, writePeerFiles, type PeerFiles } from './go-peer.js';

const UNARY = '/meshless.test.Echo/Unary';

describe('gRPC interop with Go (net/http HTTP/2, go-spiffe style TLS)', function () {
  this.timeout(30_000);
  const go = goSuite('meshless-go-grpc-');

  describe('a Go client against serverCredentials', () => {
    let running: Running;
    let base: string;
    beforeEach(async () => {
      running = await startServer(serverCredentials({ source: loadCredential(go.pki.server), allow: CLIENT_ID, logger: silentLogger }));
      go.stops.push(() => running.close());
      base = `https://localhost:${running.port}`;
    });

    async function goClient(files: PeerFiles): Promise<GoClient> {
      const client = await GoClient.start(go.bin, files, SERVER_ID);
      go.stops.push(() => client.stop());
      return client;
    }

    it('OK over HTTP/2 (the server negotiated ALPN h2); the handler sees the Go client SPIFFE ID', async () => {
      const client = await goClient(await writePeerFiles(go.tmp, 'client', go.pki.client));
      const r = await client.grpc(base, UNARY, { text: 'from go' });
      assert.ok(r.ok, JSON.stringify(r));
      assert.equal(r.alpn, 'h2');
      assert.equal(r.proto, 'HTTP/2.0');
      assert.equal(r.version, 'TLSv1.3');
      assert.equal(r.peer, SERVER_ID);
      assert.equal(r.grpcStatus, 0, JSON.stringify(r));
      assert.match(r.contentType!, /^application\/grpc/);
      assert.deepEqual(r.messages, [{ peer: CLIENT_ID, serial: go.pki.client.serialNumber, text: 'from go' }]);
    });

    it('a Go client whose SPIFFE ID is not allowed gets PERMISSION_DENIED (7); no handler runs', async () => {
      const client = await goClient(await writePeerFiles(go.tmp, 'denied', go.pki.denied));
      const before = handlerRuns.count;
      const r = await client.grpc(base, UNARY, { text: 'x' });
      assert.ok(r.ok, JSON.stringify(r));
      assert.equal(r.grpcStatus, grpc.status.PERMISSION_DENIED, JSON.stringify(r));
      assert.match(decodeURIComponent(r.grpcMessage!), new RegExp(`${DENIED_ID} is not allowed`));
      assert.deepEqual(r.messages, []);
      assert.equal(handlerRuns.count, before);
    });

    it('a Go client resuming its TLS session on new connections (its chain runs through an intermediate) is served, and each resumed connection is checked again', async () => {
      let allowed = true;
      const guarded = await startServer(serverCredentials({ source: loadCredential(go.pki.server), allow: [(peer) => allowed && peer.spiffeId === CLIENT_ID], logger: silentLogger }));
      go.stops.push(() => guarded.close());
      const at = `https://localhost:${guarded.port}`;
      const client = await goClient(await writePeerFiles(go.tmp, 'client', go.pki.client));
      const calls = [];
      for (let i = 0; i < 2; i++) calls.push(await client.grpc(at, UNARY, { text: `call ${i}` }, { fresh: true }));
      assert.deepEqual(
        calls.map((r) => [r.grpcStatus, r.didResume, r.messages?.[0]?.peer]),
        [
          [0, false, CLIENT_ID],
          [0, true, CLIENT_ID],
        ],
        JSON.stringify(calls),
      );
      allowed = false;
      const denied = await client.grpc(at, UNARY, { text: 'x' }, { fresh: true });
      assert.deepEqual([denied.grpcStatus, denied.didResume], [grpc.status.PERMISSION_DENIED, true], JSON.stringify(denied));
    });

    it('a Go client with a certificate from another CA, or none, fails in the handshake; no handler runs', async () => {
      const before = handlerRuns.count;
      for (const files of [await writePeerFiles(go.tmp, 'other-ca', go.pki.otherCaClient, go.pki.ca.bundle), await writeBundleOnly(go.tmp, 'none', go.pki.ca.bundle)]) {
        const r = await (await goClient(files)).grpc(base, UNARY, { text: 'x' });
        assert.equal(r.ok, false, JSON.stringify(r));
        assert.equal(r.grpcStatus, undefined, JSON.stringify(r));
      }
      assert.equal(handlerRuns.count, before);
    });
  });

  describe('channelCredentials against a Go gRPC server', () => {
    async function goServer(id = SERVER_ID): Promise<GoServer> {
      const issued = id === SERVER_ID ? go.pki.server : await go.pki.ca.issue({ spiffeId: id, dnsNames: ['localhost'] });
      const server = await GoServer.start(go.bin, await writePeerFiles(go.tmp, id === SERVER_ID ? 'server' : 'server-other', issued), { allow: CLIENT_ID, grpc: true });
      go.stops.push(() => server.stop());
      return server;
    }

    function client(server: GoServer) {
      const c = echoClient(`localhost:${server.port}`, channelCredentials({ source: loadCredential(go.pki.client), allow: SERVER_ID, logger: silentLogger }));
      go.stops.push(() => c.close());
      return c;
    }

    it('OK; the Go server saw our SPIFFE ID, ALPN h2 and te: trailers', async () => {
      const server = await goServer();
      const reply = await unary(client(server), 'unary', { text: 'from node' });
      assert.deepEqual(reply, { server: 'go', peer: [CLIENT_ID], text: 'from node', alpn: 'h2' });
      const [request] = await server.waitForRequests(1);
      assert.deepEqual([request!.request, request!.proto, request!.alpn, request!.te, request!.peer], [UNARY, 'HTTP/2.0', 'h2', 'trailers', CLIENT_ID]);
    });

    it('a Go server whose SPIFFE ID is not allowed: the call fails UNAVAILABLE and no request reaches it', async () => {
      const server = await goServer(`spiffe://${TD}/ns/app/sa/impostor`);
      const err = await failure(unary(client(server), 'unary', { text: 'secret' }));
      assert.equal(err.code, grpc.status.UNAVAILABLE, err.message);
      await server.child.waitFor((e) => e.handshake === 'server' || typeof e.serverError === 'string', 5000, 'the Go server to log the connection');
      assert.deepEqual(server.requests(), []);
    });
  });
});
