import assert from 'node:assert/strict';
import type { MeshlessServer, PeerRefusal } from '@meshless/http';
import { createServer } from '@meshless/http';
import { FRONTEND_ID, closeServer, listen, serverCredential } from '@meshless/fixtures/http-server';
import { pkiFiles, type ClientFiles, type PkiFiles } from './pki-files.js';
import { hasTool, run, type Run } from './tools.js';
import { manualSource, type ManualSource, recordingLogger, waitFor } from '@meshless/testing';

const REQUEST = 'GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n';

describe('createServer with openssl s_client as the client', function () {
  let files: PkiFiles;
  let source: ManualSource;
  let server: MeshlessServer;
  let port: number;
  let handled: number;
  let refusals: PeerRefusal[];
  before(async function () {
    if (!(await hasTool('openssl', 'version'))) {
      console.log('      skipped: openssl is not installed (scripts/setup-system.sh installs it)');
      this.skip();
    }
    files = await pkiFiles();
    handled = 0;
    refusals = [];
    source = manualSource(files.pki.server);
    server = createServer({ source, allow: FRONTEND_ID, logger: recordingLogger() }, (_req, res) => {
      handled++;
      res.end('served\n');
    });
    server.on('peerRefused', (r) => refusals.push(r));
    port = await listen(server);
  });
  after(async () => {
    if (server) await closeServer(server);
    await files?.remove();
  });

  /** s_client sends one request and reads until the server closes (bounded by a kill timer). */
  function sClient(client: ClientFiles | undefined, extra: string[] = []): Promise<Run> {
    const args = ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', '-CAfile', files.caFile, '-verify_return_error', '-ign_eof', '-quiet', ...extra];
    if (client) args.push('-cert', client.cert, '-key', client.key);
    return run('openssl', args, { input: REQUEST, timeoutMs: 15_000 });
  }

  it('serves the allowed client', async () => {
    const result = await sClient(files.allowed);
    assert.match(result.stdout, /^HTTP\/1.1 200 OK/);
    assert.match(result.stdout, /served/);
    assert.equal(handled, 1);
  });

  it('refuses the denied, other-CA, expired and certificate-less clients; the handler never runs for them', async () => {
    const cases: [string, ClientFiles | undefined, string][] = [
      ['denied', files.denied, 'denied'],
      ['other CA', files.otherCa, 'unverified'],
      ['expired', files.expired, 'unverified'],
      ['no certificate', undefined, 'unverified'],
    ];
    const before = handled;
    for (const [name, client, failure] of cases) {
      const seen = refusals.length;
      const result = await sClient(client);
      assert.doesNotMatch(result.stdout, /HTTP\//, `${name}: no HTTP response`);
      await waitFor(() => refusals.length === seen + 1, 3000, `${name}: the refusal`);
      assert.equal(refusals[seen]!.failure, failure, name);
    }
    assert.equal(handled, before);
  });

  it('refuses a TLS 1.2 client by default, and still after 10 rotations', async () => {
    const before = handled;
    const first = await sClient(files.allowed, ['-tls1_2']);
    assert.doesNotMatch(first.stdout, /HTTP\//);
    assert.match(first.stderr, /protocol version|alert/i);
    for (let i = 0; i < 10; i++) source.set(await serverCredential(files.pki.ca, files.pki.ca.bundle, source.current().generation + 1));
    assert.equal(source.current().generation, 11);
    const after = await sClient(files.allowed, ['-tls1_2']);
    assert.doesNotMatch(after.stdout, /HTTP\//);
    assert.match(after.stderr, /protocol version|alert/i);
    assert.equal(handled, before);
    // The same client over TLS 1.3 is served by the 11th generation.
    const ok = await sClient(files.allowed, ['-tls1_3']);
    assert.match(ok.stdout, /^HTTP\/1.1 200 OK/);
  });
});
