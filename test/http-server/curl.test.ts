import assert from 'node:assert/strict';
import type { MeshlessServer, PeerRefusal } from '@meshless/http';
import { createServer, peerOf } from '@meshless/http';
import { FRONTEND_ID, closeServer, listen } from '@meshless/fixtures/http-server';
import { pkiFiles, type ClientFiles, type PkiFiles } from './pki-files.js';
import { hasTool, run, type Run } from './tools.js';
import { recordingLogger, waitFor } from '@meshless/testing';

describe('createServer with curl as the client', function () {
  let files: PkiFiles;
  let server: MeshlessServer;
  let port: number;
  let handled: string[];
  let refusals: PeerRefusal[];
  before(async function () {
    if (!(await hasTool('curl'))) {
      console.log('      skipped: curl is not installed (scripts/setup-system.sh installs it)');
      this.skip();
    }
    files = await pkiFiles();
    handled = [];
    refusals = [];
    server = createServer({ source: files.pki.server, allow: FRONTEND_ID, logger: recordingLogger() }, (req, res) => {
      handled.push(String(peerOf(req)));
      res.setHeader('Content-Type', 'text/plain');
      res.end(`hello ${String(peerOf(req))}\n`);
    });
    server.on('peerRefused', (r) => refusals.push(r));
    port = await listen(server);
  });
  after(async () => {
    if (server) await closeServer(server);
    await files?.remove();
  });

  /** curl to https://localhost:PORT/ (resolved to 127.0.0.1): curl checks the server's DNS SAN. */
  function curl(client: ClientFiles | undefined, extra: string[] = []): Promise<Run> {
    const args = ['-sS', '--max-time', '10', '--resolve', `localhost:${port}:127.0.0.1`, '--cacert', files.caFile, ...extra];
    if (client) args.push('--cert', client.cert, '--key', client.key);
    args.push(`https://localhost:${port}/`);
    return run('curl', args);
  }

  it('answers the allowed client, with its SPIFFE ID', async () => {
    const result = await curl(files.allowed);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, `hello ${FRONTEND_ID}\n`);
  });

  it('refuses the denied, other-CA, expired and certificate-less clients before the handler', async () => {
    const before = handled.length;
    const cases: [string, ClientFiles | undefined, string][] = [
      ['denied', files.denied, 'denied'],
      ['other CA', files.otherCa, 'unverified'],
      ['expired', files.expired, 'unverified'],
      ['no certificate', undefined, 'unverified'],
    ];
    for (const [name, client, failure] of cases) {
      const seen = refusals.length;
      const result = await curl(client);
      assert.notEqual(result.code, 0, `${name}: curl should fail`);
      assert.equal(result.stdout, '', `${name}: no HTTP response`);
      await waitFor(() => refusals.length === seen + 1, 3000, `${name}: the refusal`);
      assert.equal(refusals[seen]!.failure, failure, name);
    }
    assert.equal(handled.length, before, 'the handler ran only for allowed clients');
  });

  it('refuses a TLS 1.2-only curl', async () => {
    const before = handled.length;
    const result = await curl(files.allowed, ['--tlsv1.2', '--tls-max', '1.2']);
    assert.notEqual(result.code, 0);
    assert.equal(handled.length, before);
  });

  it('runs the handler once per allowed request, and only for the allowed identity', async () => {
    const before = handled.length;
    for (let i = 0; i < 3; i++) assert.equal((await curl(files.allowed)).code, 0);
    assert.equal(handled.length, before + 3);
    assert.ok(handled.every((id) => id === FRONTEND_ID), handled.join(', '));
  });
});
