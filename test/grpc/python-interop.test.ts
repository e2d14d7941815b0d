import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import grpc from '@grpc/grpc-js';
import { loadCredential } from '@meshless/core';
import { channelCredentials, serverCredentials } from '@meshless/grpc';
import type { IssuedCertificate } from '@meshless/testing';
import { handlerRuns } from '@meshless/fixtures/grpc-echo';
import { echoClient, failure, serverStream, startServer, unary, type Running } from '@meshless/fixtures/grpc-harness';
import { CLIENT_ID, DENIED_ID, SERVER_ID, TD, createPki, type Pki } from '@meshless/fixtures/grpc-pki';
import { JsonChild } from '../helpers/child.js';
import { recordingLogger } from '@meshless/testing';

const PYTHON = '/usr/bin/python3';
const here = dirname(fileURLToPath(import.meta.url));

interface PythonResult {
  ok: boolean;
  replies?: Record<string, unknown>[];
  code?: string;
  details?: string;
}

function pythonClient(args: object): Promise<PythonResult> {
  return new Promise((resolve, reject) => {
    execFile(PYTHON, [join(here, 'python', 'client.py'), JSON.stringify(args)], { timeout: 20_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`python client failed: ${err.message}\n${stderr}`));
      try {
        resolve(JSON.parse(stdout.trim().split('\n').pop()!) as PythonResult);
      } catch {
        reject(new Error(`python client printed no result: ${stdout}\n${stderr}`));
      }
    });
  });
}

describe('@meshless/grpc interop with Python grpcio', function () {
  this.timeout(60_000);
  let pki: Pki;
  let tmp: string;
  const cleanups: (() => Promise<void> | void)[] = [];

  before(async function () {
    const probe = spawnSync(PYTHON, ['-c', 'import grpc; print(grpc.__version__)'], { encoding: 'utf8' });
    if (probe.status !== 0) {
      console.log(`    skipped: ${PYTHON} cannot import grpc (install python3-grpcio): ${probe.stderr?.trim() ?? probe.error}`);
      this.skip();
    }
    pki = await createPki();
    tmp = await mkdtemp(join(tmpdir(), 'meshless-grpc-py-'));
  });
  after(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  /** Writes a credential where the Python side reads it (key file 0600). */
  async function files(name: string, issued: IssuedCertificate, ca = issued.ca): Promise<string> {
    const dir = join(tmp, name);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'tls.crt'), issued.cert);
    await writeFile(join(dir, 'tls.key'), issued.key, { mode: 0o600 });
    await writeFile(join(dir, 'ca.crt'), ca);
    return dir;
  }

  describe('a Python client against the SDK server', () => {
    let running: Running;
    let logger: ReturnType<typeof recordingLogger>;
    beforeEach(async () => {
      logger = recordingLogger();
      running = await startServer(serverCredentials({ source: loadCredential(pki.server), allow: CLIENT_ID, logger }));
      cleanups.push(() => running.close());
    });

    it('is served, unary and streaming, when its identity is allowed; the handler sees its SPIFFE ID', async () => {
      const dir = await files('allowed', pki.client);
      const u = await pythonClient({ target: running.target, dir, method: '/meshless.test.Echo/Unary', kind: 'unary', request: { text: 'from python' } });
      assert.ok(u.ok, JSON.stringify(u));
      assert.equal(u.replies![0]!.peer, CLIENT_ID);
      assert.equal(u.replies![0]!.serial, pki.client.serialNumber);
      assert.equal(u.replies![0]!.text, 'from python');
      const s = await pythonClient({ target: running.target, dir, method: '/meshless.test.Echo/Count', kind: 'stream', request: { n: 3 } });
      assert.ok(s.ok, JSON.stringify(s));
      assert.deepEqual(s.replies!.map((r) => [r.peer, r.i]), [[CLIENT_ID, 0], [CLIENT_ID, 1], [CLIENT_ID, 2]]);
    });

    it('gets PERMISSION_DENIED when its identity is not allowed, and the server logs that identity', async () => {
      const dir = await files('denied', pki.denied);
      const before = handlerRuns.count;
      const r = await pythonClient({ target: running.target, dir, method: '/meshless.test.Echo/Unary', kind: 'unary', request: {} });
      assert.equal(r.ok, false);
      assert.equal(r.code, 'PERMISSION_DENIED');
      assert.match(r.details!, new RegExp(`${DENIED_ID} is not allowed`));
      assert.equal(handlerRuns.count, before);
      assert.equal(logger.at('warn')[0]?.obj.peer, DENIED_ID);
    });

    it('is refused during the handshake with a certificate from another CA', async () => {
      const dir = await files('other-ca', pki.otherCaClient, pki.ca.bundle);
      const r = await pythonClient({ target: running.target, dir, method: '/meshless.test.Echo/Unary', kind: 'unary', request: {} });
      assert.equal(r.ok, false);
      assert.equal(r.code, 'UNAVAILABLE', JSON.stringify(r));
    });
  });

  describe('the SDK client against a Python server that requires client certificates', () => {
    let server: JsonChild;
    let target: string;
    beforeEach(async () => {
      const dir = await files('py-server', pki.server);
      server = new JsonChild(PYTHON, [join(here, 'python', 'server.py'), JSON.stringify({ dir })]);
      cleanups.push(() => server.stop());
      const listening = await server.waitFor((e) => typeof e.port === 'number', 15_000, 'the Python server to listen');
      target = `localhost:${listening.port as number}`;
    });

    function client(allow: string, issued = pki.client) {
      const logger = recordingLogger();
      const c = echoClient(target, channelCredentials({ source: loadCredential(issued), allow, logger }));
      cleanups.push(() => c.close());
      return { c, logger };
    }

    it('calls it, unary and streaming, presenting our certificate; the server identity is checked against the allow-list', async () => {
      const { c } = client(SERVER_ID);
      const reply = await unary(c, 'unary', { text: 'from node' });
      assert.equal(reply.server, 'python');
      assert.deepEqual(reply.peer, [CLIENT_ID]);
      assert.equal(reply.text, 'from node');
      const stream = await serverStream(c, { n: 2 });
      assert.deepEqual(stream.map((m) => m.i), [0, 1]);
      await server.waitFor((e) => e.call === 'Count', 5000, 'the Python server to log the call');
    });

    it('refuses the Python server when its identity is not in the allow-list', async () => {
      const { c, logger } = client(`spiffe://${TD}/ns/app/sa/someone-else`);
      const err = await failure(unary(c, 'unary', {}));
      assert.equal(err.code, grpc.status.UNAVAILABLE);
      assert.equal(logger.at('warn')[0]?.obj.peer, SERVER_ID);
      assert.equal(server.events.filter((e) => e.call !== undefined).length, 0, 'no call reached the Python server');
    });

    it('is refused by the Python server when it presents a certificate from a CA that server does not trust', async () => {
      // Our bundle trusts both CAs (so the Python server verifies for us); our leaf comes from the other one.
      const source = loadCredential({ cert: pki.otherCaClient.cert, key: pki.otherCaClient.key, ca: pki.otherCa.bundle + pki.ca.bundle });
      const c = echoClient(target, channelCredentials({ source, allow: SERVER_ID, logger: recordingLogger() }));
      cleanups.push(() => c.close());
      assert.equal((await failure(unary(c, 'unary', {}))).code, grpc.status.UNAVAILABLE);
      assert.equal(server.events.filter((e) => e.call !== undefined).length, 0, 'no call reached the Python server');
    });
  });
});
