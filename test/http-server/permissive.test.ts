import assert from 'node:assert/strict';
import diagnostics_channel from 'node:diagnostics_channel';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { channels, isDryRunDecision } from '@meshless/core';
import type { MeshlessServer, PeerRefusal, PlaintextRequest } from '@meshless/http';
import { createServer, peerOf } from '@meshless/http';
import { requirePeer } from '@meshless/http/express';
import { BATCH_ID, FRONTEND_ID, closeServer, get, keepAliveAgent, listen } from '@meshless/fixtures/http-server';
import { pkiFiles, type ClientFiles, type PkiFiles } from './pki-files.js';
import { hasTool, run, type Run } from './tools.js';
import { type LogEntry, recordingLogger, waitFor } from '@meshless/testing';

/** One plaintext GET (through `agent`, or a fresh connection). */
function plainGet(port: number, path: string, agent?: http.Agent): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: agent ?? false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

describe('createServer({ mode: "permissive" }): mTLS and plaintext on one port', function () {
  this.timeout(60_000);
  let files: PkiFiles;
  let server: MeshlessServer;
  let port: number;
  let refusals: PeerRefusal[];
  let plaintext: PlaintextRequest[];
  let logger: ReturnType<typeof recordingLogger>;
  const route = requirePeer(FRONTEND_ID, { logger: recordingLogger() });

  before(async () => {
    files = await pkiFiles();
  });
  after(async () => {
    await files?.remove();
  });
  beforeEach(async () => {
    refusals = [];
    plaintext = [];
    logger = recordingLogger();
    server = createServer({ source: files.pki.server, allow: FRONTEND_ID, mode: 'permissive', logger, keepAliveTimeout: 30_000 }, (req, res) => {
      if (req.url === '/private') {
        route(req, res, () => res.end(`private ${String(peerOf(req))}\n`));
        return;
      }
      res.setHeader('Content-Type', 'text/plain');
      res.end(`hello ${peerOf(req) === undefined ? 'plaintext' : String(peerOf(req))}\n`);
    });
    server.on('peerRefused', (r) => refusals.push(r));
    server.on('plaintextRequest', (r) => plaintext.push(r));
    port = await listen(server);
  });
  afterEach(async () => {
    if (server) await closeServer(server);
  });

  function curl(client: ClientFiles | undefined, scheme: 'https' | 'http', path = '/'): Promise<Run> {
    const args = ['-sS', '--max-time', '10', '--resolve', `localhost:${port}:127.0.0.1`];
    if (scheme === 'https') args.push('--cacert', files.caFile);
    if (client) args.push('--cert', client.cert, '--key', client.key);
    args.push(`${scheme}://localhost:${port}${path}`);
    return run('curl', args);
  }

  it('answers curl over plain HTTP (no peer, counted) and curl with a client certificate (its peer) on one port', async function () {
    if (!(await hasTool('curl'))) {
      console.log('      skipped: curl is not installed (scripts/setup-system.sh installs it)');
      this.skip();
    }
    assert.equal(server.mode, 'permissive');
    const published: unknown[] = [];
    const onPlain = (m: unknown) => published.push(m);
    diagnostics_channel.subscribe(channels.plaintextRequest.name, onPlain);
    try {
      const tls = await curl(files.allowed, 'https');
      assert.equal(tls.code, 0, tls.stderr);
      assert.equal(tls.stdout, `hello ${FRONTEND_ID}\n`);
      const plain = await curl(undefined, 'http');
      assert.equal(plain.code, 0, plain.stderr);
      assert.equal(plain.stdout, 'hello plaintext\n');
      assert.equal(plaintext.length, 1);
      assert.equal(plaintext[0]!.remoteAddress, '127.0.0.1');
      assert.equal(plaintext[0]!.method, 'GET');
      assert.equal(published.length, 1);
      // A denied TLS client, one from another CA and one without a certificate are still refused.
      for (const [client, failure] of [[files.denied, 'denied'], [files.otherCa, 'unverified'], [undefined, 'unverified']] as const) {
        const seen = refusals.length;
        const r = await curl(client, 'https');
        assert.notEqual(r.code, 0);
        assert.equal(r.stdout, '');
        await waitFor(() => refusals.length === seen + 1, 3_000, `the ${failure} refusal`);
        assert.equal(refusals[seen]!.failure, failure);
      }
      // The plaintext caller is logged with its remote address.
      const lines = logger.entries.filter((e: LogEntry) => e.obj.plaintext === true);
      assert.equal(lines.length, 1);
      assert.equal(lines[0]!.obj.remoteAddress, '127.0.0.1');
    } finally {
      diagnostics_channel.unsubscribe(channels.plaintextRequest.name, onPlain);
    }
  });

  it('requirePeer answers a plaintext request 401 JSON, like a missing client certificate', async () => {
    const plain = await plainGet(port, '/private');
    assert.equal(plain.status, 401);
    assert.deepEqual(JSON.parse(plain.body), { error: 'unauthorized', code: 'MESHLESS_ERR_PEER_UNVERIFIED' });
    const tls = await get(port, '/private', { ...files.pki.frontend });
    assert.equal(tls.status, 200);
    assert.equal(tls.body, `private ${FRONTEND_ID}\n`);
  });

  it('applies headersTimeout to plaintext connections too (a slow plaintext client gets 408 and is closed)', async () => {
    const slow = createServer({ source: files.pki.server, allow: FRONTEND_ID, mode: 'permissive', logger: recordingLogger(), connectionsCheckingInterval: 100 }, (_req, res) => res.end('x'));
    slow.headersTimeout = 300;
    slow.requestTimeout = 300;
    try {
      const slowPort = await listen(slow);
      const started = Date.now();
      const reply = await new Promise<string>((resolve, reject) => {
        let data = '';
        const socket = net.connect(slowPort, '127.0.0.1', () => socket.write('GET / HTTP/1.1\r\nHost: x\r\n'));
        socket.setEncoding('utf8');
        socket.on('data', (d: string) => (data += d));
        socket.on('close', () => resolve(data));
        socket.on('error', reject);
        setTimeout(() => socket.destroy(new Error('still open after 5 s')), 5_000).unref();
      });
      assert.match(reply, /^HTTP\/1\.1 408/);
      assert.ok(Date.now() - started < 3_000);
    } finally {
      await closeServer(slow);
    }
  });

  it('logs plaintext callers at most once a minute per address, and counts every request', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
    try {
      for (let i = 0; i < 20; i++) assert.equal((await plainGet(port, `/n${i}`, agent)).status, 200);
    } finally {
      agent.destroy();
    }
    assert.equal(plaintext.length, 20);
    assert.equal(logger.entries.filter((e) => e.obj.plaintext === true).length, 1);
  });

  it("setMode('strict') under keep-alive load of both kinds: plaintext refused after, zero failed mTLS requests", async () => {
    const tlsAgent = keepAliveAgent(files.pki.frontend);
    (tlsAgent as unknown as { maxSockets: number }).maxSockets = 4;
    const plainAgent = new http.Agent({ keepAlive: true, maxSockets: 2 });
    const plainSockets = new Set<import('node:net').Socket>();
    plainAgent.on('free', (s) => plainSockets.add(s));
    let switched = false;
    let stop = false;
    const stats = { tlsOk: 0, tlsFailed: [] as string[], tlsAfter: 0, plainOkBefore: 0, plainOkAfter: 0, plainFailedAfter: 0, plainFailedBefore: [] as string[] };
    const MAX_PER_WORKER = 2_000; // bound on every loop
    const tlsWorker = async (): Promise<void> => {
      for (let i = 0; i < MAX_PER_WORKER && !stop; i++) {
        try {
          const r = await get(port, '/', { ...files.pki.frontend }, tlsAgent as https.Agent);
          if (r.status !== 200 || r.body !== `hello ${FRONTEND_ID}\n`) stats.tlsFailed.push(`status ${r.status} ${r.body}`);
          else {
            stats.tlsOk++;
            if (switched) stats.tlsAfter++;
          }
        } catch (err) {
          stats.tlsFailed.push(String((err as Error).message));
        }
      }
    };
    const plainWorker = async (): Promise<void> => {
      for (let i = 0; i < MAX_PER_WORKER && !stop; i++) {
        const wasSwitched = switched;
        try {
          const r = await plainGet(port, '/', plainAgent);
          if (r.status === 200) {
            if (switched) stats.plainOkAfter++;
            else stats.plainOkBefore++;
          } else if (wasSwitched || switched) stats.plainFailedAfter++;
          else stats.plainFailedBefore.push(`status ${r.status}`);
        } catch (err) {
          if (wasSwitched || switched) stats.plainFailedAfter++;
          else stats.plainFailedBefore.push((err as Error).message);
        }
        if (switched && stats.plainFailedAfter >= 20) return;
      }
    };
    const workers = [tlsWorker(), tlsWorker(), tlsWorker(), plainWorker(), plainWorker()];
    try {
      await waitFor(() => stats.tlsOk >= 100 && stats.plainOkBefore >= 50, 20_000, 'load of both kinds before the switch');
      const plainBefore = plaintext.length;
      server.setMode('strict');
      switched = true;
      assert.equal(server.mode, 'strict');
      await waitFor(() => stats.tlsAfter >= 200, 20_000, '200 mTLS requests after the switch');
      await waitFor(() => stats.plainFailedAfter >= 20, 20_000, 'plaintext refused after the switch');
      stop = true;
      await Promise.all(workers);
      console.log(`      load: ${JSON.stringify({ ...stats, plainSockets: plainSockets.size })}`);
      assert.deepEqual(stats.tlsFailed, [], 'no mTLS request failed');
      assert.deepEqual(stats.plainFailedBefore, [], 'no plaintext request failed before the switch');
      // At most the requests in flight at the switch were served in plaintext after it.
      assert.ok(plaintext.length - plainBefore <= 2, `plaintext served after the switch: ${plaintext.length - plainBefore}`);
      // The plaintext keep-alive connections were closed by the server.
      await waitFor(() => [...plainSockets].every((s) => s.destroyed), 5_000, 'the live plaintext connections to close');
      const fresh = await plainGet(port, '/').catch((err: Error) => err);
      assert.ok(fresh instanceof Error, 'a new plaintext connection is refused');
    } finally {
      stop = true;
      await Promise.allSettled(workers);
      tlsAgent.destroy();
      plainAgent.destroy();
    }
  });
});

describe('createServer({ dryRun: true })', function () {
  let files: PkiFiles;
  let server: MeshlessServer;
  let port: number;
  before(async () => {
    files = await pkiFiles();
  });
  after(async () => {
    if (server) await closeServer(server);
    await files?.remove();
  });

  it('answers a denied identity and logs "would deny"; an unverified chain is still refused', async () => {
    const logger = recordingLogger();
    const refusals: PeerRefusal[] = [];
    const decisions: unknown[] = [];
    const onWouldDeny = (m: unknown) => decisions.push(m);
    diagnostics_channel.subscribe(channels.policyWouldDeny.name, onWouldDeny);
    try {
      server = createServer({ source: files.pki.server, allow: FRONTEND_ID, dryRun: true, logger }, (req, res) => res.end(`hello ${String(peerOf(req))}`));
      server.on('peerRefused', (r) => refusals.push(r));
      port = await listen(server);
      const batch = await get(port, '/', { ...files.pki.batch });
      assert.equal(batch.status, 200);
      assert.equal(batch.body, `hello ${BATCH_ID}`);
      const line = logger.entries.find((e) => /would deny/.test(e.msg ?? ''));
      assert.ok(line, 'a "would deny" line');
      assert.equal(line.obj.peer, BATCH_ID);
      assert.equal(line.obj.dryRun, true);
      assert.equal(line.obj.scope, 'server');
      assert.equal(decisions.length, 1);
      assert.ok(isDryRunDecision((decisions[0] as { decision: never }).decision));
      // Authentication is not relaxed: a client from another CA is refused.
      const other = await files.other.issue(FRONTEND_ID);
      await assert.rejects(get(port, '/', { cert: other.cert, key: other.key, ca: files.pki.ca.bundle }));
      await waitFor(() => refusals.length === 1, 3_000, 'the refusal');
      assert.equal(refusals[0]!.failure, 'unverified');
    } finally {
      diagnostics_channel.unsubscribe(channels.policyWouldDeny.name, onWouldDeny);
    }
  });

  it('requirePeer({ dryRun: true }): a denied peer goes on with a "would deny" line; a plaintext request is still 401', async () => {
    const logger = recordingLogger();
    const route = requirePeer(FRONTEND_ID, { dryRun: true, logger });
    const dry = createServer({ source: files.pki.server, allow: '*', mode: 'permissive', logger: recordingLogger() }, (req, res) => route(req, res, () => res.end('through')));
    try {
      const dryPort = await listen(dry);
      const batch = await get(dryPort, '/', { ...files.pki.batch });
      assert.equal(batch.status, 200);
      assert.equal(batch.body, 'through');
      assert.ok(logger.entries.some((e) => /would deny/.test(e.msg ?? '') && e.obj.peer === BATCH_ID && e.obj.scope === 'route'));
      const plain = await plainGet(dryPort, '/');
      assert.equal(plain.status, 401);
    } finally {
      await closeServer(dry);
    }
  });
});
