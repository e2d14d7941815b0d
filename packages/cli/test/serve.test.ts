import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { request, Agent } from 'undici';
import { loadCredential, privateKeyPem } from '@meshless/core';
import { createTestCA, kubernetesVolume, type KubernetesVolume, type TestCA, waitFor } from '@meshless/testing';
import { loadEcho, type WhoReply } from '../src/serve/echo-service.js';
import { ensureBuilt, runCli, startCli, tempDir, type RunningCli } from './helpers/cli.js';

const SERVER = 'spiffe://prod.example/ns/pay/sa/api';
const CLIENT = 'spiffe://prod.example/ns/web/sa/front';
const STRANGER = 'spiffe://prod.example/ns/other/sa/x';

describe('meshless serve', function () {
  this.timeout(60_000);
  let ca: TestCA;
  let dir: string;
  let cleanup: () => Promise<void>;
  let volume: KubernetesVolume;
  let serve: RunningCli | undefined;
  let ports: { http: number; grpc: number };
  const agents: Agent[] = [];

  async function agentFor(spiffeId: string): Promise<Agent> {
    const issued = await ca.issue(spiffeId);
    const credential = loadCredential(issued);
    // A plain undici client: the server under test is what is checked here.
    const agent = new Agent({ connect: { cert: credential.certPem, key: privateKeyPem(credential), ca: credential.bundlePem, servername: 'localhost', checkServerIdentity: () => undefined } });
    agents.push(agent);
    return agent;
  }

  before(async () => {
    ensureBuilt();
    ({ dir, cleanup } = await tempDir());
    ca = await createTestCA({ trustDomain: 'prod.example' });
    volume = kubernetesVolume(join(dir, 'certs'));
    const first = await ca.issue({ spiffeId: SERVER, dnsNames: ['localhost'] });
    await volume.write({ 'tls.crt': first.cert, 'tls.key': first.key, 'ca.crt': first.ca });
    serve = startCli(['serve', '--dir', join(dir, 'certs'), '--allow', 'spiffe://prod.example/ns/web/**', '--http', '0', '--grpc', '0']);
    const line = await waitFor(() => serve!.stdout().split('\n').find((l) => l.includes('"ready"')), 20_000, `the ready line (stderr: ${serve.stderr()})`);
    const ready = JSON.parse(line) as { event: string; http: number; grpc: number };
    assert.equal(ready.event, 'ready');
    ports = { http: ready.http, grpc: ready.grpc };
  });

  after(async () => {
    await Promise.all(agents.map((a) => a.close()));
    if (serve && serve.child.exitCode === null) {
      serve.child.kill('SIGKILL');
      await serve.exited;
    }
    await volume.close();
    await cleanup();
  });

  it('prints exactly one ready line with the ports it bound', () => {
    assert.ok(ports.http > 0 && ports.grpc > 0 && ports.http !== ports.grpc);
    assert.equal(serve!.stdout().trim().split('\n').length, 1);
  });

  it('answers GET / with who called and what it served', async () => {
    const res = await request(`https://127.0.0.1:${ports.http}/`, { dispatcher: await agentFor(CLIENT) });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /application\/json/);
    const body = (await res.body.json()) as { peer: { spiffeId: string; dnsNames: string[] }; served: { spiffeId: string; serial: string; generation: number } };
    assert.deepEqual(body.peer, { spiffeId: CLIENT, dnsNames: [] });
    assert.equal(body.served.spiffeId, SERVER);
    assert.equal(body.served.generation, 1);
    assert.match(body.served.serial, /^[0-9A-F]+$/);
  });

  it('answers meshless.echo.v1.Echo/Who over gRPC', async () => {
    const issued = await ca.issue(CLIENT);
    const { Client } = loadEcho();
    const client = new Client(`localhost:${ports.grpc}`, grpc.credentials.createSsl(Buffer.from(issued.ca), Buffer.from(issued.key), Buffer.from(issued.cert), { checkServerIdentity: () => undefined }));
    try {
      const reply = await new Promise<WhoReply>((resolve, reject) =>
        (client as unknown as { Who(req: object, cb: (e: Error | null, r: WhoReply) => void): void }).Who({}, (err, r) => (err ? reject(err) : resolve(r))),
      );
      assert.equal(reply.peer_spiffe_id, CLIENT);
      assert.equal(reply.served_spiffe_id, SERVER);
      assert.match(reply.served_serial, /^[0-9A-F]+$/);
      assert.equal(typeof reply.generation, 'number');
      assert.ok(reply.generation >= 1);
    } finally {
      client.close();
    }
  });

  it('refuses a client that is not allowed, and logs the refusal as a JSON line', async () => {
    await assert.rejects(request(`https://127.0.0.1:${ports.http}/`, { dispatcher: await agentFor(STRANGER) }));
    const refused = await waitFor(() => serve!.events().find((e) => e.event === 'refused' && e.peer === STRANGER), 10_000, 'a refused event');
    assert.equal(refused.protocol, 'http');
    assert.equal(refused.failure, 'denied');
    assert.equal(refused.level, 'warn');
  });

  it('rotates with its mount: a re-issued certificate is served to new connections', async () => {
    const before = (await (await request(`https://127.0.0.1:${ports.http}/`, { dispatcher: await agentFor(CLIENT) })).body.json()) as { served: { serial: string } };
    const next = await ca.issue({ spiffeId: SERVER, dnsNames: ['localhost'] });
    await volume.write({ 'tls.crt': next.cert, 'tls.key': next.key, 'ca.crt': next.ca });
    const rotated = await waitFor(() => serve!.events().find((e) => e.event === 'rotated' && e.serial === next.serialNumber), 10_000, 'a rotated event');
    assert.equal(rotated.generation, 2);
    assert.equal(rotated.previousSerial, before.served.serial);
    const after = (await (await request(`https://127.0.0.1:${ports.http}/`, { dispatcher: await agentFor(CLIENT) })).body.json()) as { served: { serial: string; generation: number } };
    assert.equal(after.served.serial, next.serialNumber);
    assert.equal(after.served.generation, 2);
  });

  it('drains and exits 0 on SIGTERM, logging draining and stopped', async () => {
    // A live keep-alive connection must not hold the process.
    const agent = await agentFor(CLIENT);
    await (await request(`https://127.0.0.1:${ports.http}/`, { dispatcher: agent })).body.dump();
    serve!.child.kill('SIGTERM');
    const code = await Promise.race([serve!.exited, new Promise((r) => setTimeout(() => r('still running'), 15_000).unref())]);
    assert.equal(code, 0, serve!.stderr());
    const names = serve!.events().map((e) => e.event);
    assert.ok(names.indexOf('draining') < names.indexOf('stopped') && names.includes('draining'), names.join(','));
  });

  it('warns with a frozen-mount event when the certificate is a subPath-style mount', async function () {
    if (spawnSync('unshare', ['-m', 'true']).status !== 0) {
      console.log('      (skipped: cannot create a mount namespace with `unshare -m` here)');
      return this.skip();
    }
    const issued = await ca.issue(SERVER);
    const plain = join(dir, 'subpath');
    await mkdir(plain);
    await writeFile(join(plain, 'tls.crt'), 'placeholder');
    await writeFile(join(plain, 'tls.key'), issued.key);
    await writeFile(join(plain, 'ca.crt'), issued.ca);
    await writeFile(join(dir, 'pinned.crt'), issued.cert);
    const wrap = ['unshare', '-m', 'sh', '-c', 'mount --bind "$1" "$2" && shift 2 && exec "$@"', 'sh', join(dir, 'pinned.crt'), join(plain, 'tls.crt')];
    const pinned = startCli(['serve', '--dir', plain, '--allow', '*', '--http', '0'], wrap);
    try {
      const event = await waitFor(() => pinned.events().find((e) => e.event === 'frozen-mount'), 20_000, `a frozen-mount event (stderr: ${pinned.stderr()})`);
      assert.equal(event.path, join(plain, 'tls.crt'));
      assert.equal(event.level, 'warn');
    } finally {
      pinned.child.kill('SIGTERM');
      await pinned.exited;
    }
  });

  describe('usage', () => {
    it('exits 2 without --allow, without a port, or with a bad rule', async () => {
      const cases: Array<[string[], RegExp]> = [
        [['--dir', dir, '--http', '0'], /--allow is required/],
        [['--dir', dir, '--allow', '*'], /give --http PORT, --grpc PORT or both/],
        [['--dir', dir, '--allow', 'spiffe://prod.example/a/**/b', '--http', '0'], /MESHLESS|\*\*/],
        [['--dir', dir, '--allow', '*', '--http', '70000'], /not a port number/],
      ];
      for (const [args, message] of cases) {
        const r = await runCli(['serve', ...args]);
        assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, message);
      }
    });

    it('exits 1 with the coded reason when the mount holds no credential', async () => {
      const r = await runCli(['serve', '--dir', dir, '--allow', '*', '--http', '0']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /MESHLESS_ERR_LAYOUT_NOT_FOUND/);
    });
  });
});
