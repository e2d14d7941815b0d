// Runs each framework example (plain `node` on the built packages) against Kubernetes-style
// mounts: the admin workload reaches /admin, the frontend gets 403 there, a workload outside the
// server-wide rule is refused at the handshake (and the example logs it), plaintext fails.
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestCA, kubernetesVolume, type IssuedCertificate, type TestCA } from '@meshless/testing';
import { get } from '../../packages/http/test/server-fixtures.js';
import { ensureBuilt, root, startNode, stop, waitFor, type Child } from './helpers/processes.js';

const TD = 'prod.example';
const ID = {
  service: `spiffe://${TD}/ns/shop/sa/api`,
  admin: `spiffe://${TD}/ns/web/sa/admin`,
  frontend: `spiffe://${TD}/ns/web/sa/frontend`,
  batch: `spiffe://${TD}/ns/batch/sa/reporter`,
};

export const FRAMEWORK_EXAMPLES = ['fastify-service/server.mjs', 'koa-service/server.mjs', 'hono-service/server.mjs'];

for (const example of FRAMEWORK_EXAMPLES) {
  describe(`examples/${example}`, function () {
    this.timeout(60_000);
    let ca: TestCA;
    let dir: string;
    let child: Child | undefined;
    let port: number;
    const clients: Partial<Record<keyof typeof ID, IssuedCertificate>> = {};

    before(async () => {
      ensureBuilt();
      dir = await mkdtemp(join(tmpdir(), 'meshless-framework-example-'));
      ca = await createTestCA({ trustDomain: TD });
      for (const name of Object.keys(ID) as (keyof typeof ID)[]) clients[name] = await ca.issue({ spiffeId: ID[name], dnsNames: name === 'service' ? ['localhost'] : [] });
      const volume = kubernetesVolume(join(dir, 'mount'));
      await volume.write({ 'tls.crt': clients.service!.cert, 'tls.key': clients.service!.key, 'ca.crt': clients.service!.ca });
      await volume.close();
      child = startNode(join(root, 'examples', example), [], { CERTS_DIR: join(dir, 'mount'), PORT: '0' });
      const ready = await waitFor(() => child!.events().find((e) => e.event === 'ready'), 30_000, `ready (stderr: ${child!.stderr()})`);
      port = ready.port as number;
    });
    after(async () => {
      await stop(child);
      await rm(dir, { recursive: true, force: true });
    });

    it('is under 60 lines', async () => {
      const lines = (await readFile(join(root, 'examples', example), 'utf8')).trimEnd().split('\n').length;
      assert.ok(lines < 60, `${lines} lines`);
    });

    it('echoes the allowed caller; /admin answers its admin workload and refuses the frontend with 403 JSON', async () => {
      const who = await get(port, '/whoami', clients.frontend!);
      assert.equal(who.status, 200, who.body);
      assert.equal(JSON.parse(who.body).peer, ID.frontend);
      const admin = await get(port, '/admin', clients.admin!);
      assert.equal(admin.status, 200, admin.body);
      assert.equal(JSON.parse(admin.body).peer, ID.admin);
      const denied = await get(port, '/admin', clients.frontend!);
      assert.equal(denied.status, 403);
      assert.deepEqual(JSON.parse(denied.body), { error: 'forbidden', code: 'MESHLESS_ERR_PEER_DENIED' });
    });

    it('refuses a workload outside the server-wide rule at the handshake, and logs it', async () => {
      await assert.rejects(get(port, '/whoami', clients.batch!));
      const refused = await waitFor(() => child!.events().find((e) => e.event === 'refused' && e.peer === ID.batch), 10_000, 'the refusal log');
      assert.equal(refused.failure, 'denied');
    });

    it('fails a plaintext client', async () => {
      const outcome = await new Promise<string>((resolve) => {
        http.get({ host: '127.0.0.1', port, path: '/whoami' }, (res) => resolve(`status ${res.statusCode}`)).on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      });
      assert.ok(!outcome.startsWith('status'), outcome);
    });

    it('stops on SIGTERM', async () => {
      child!.process.kill('SIGTERM');
      assert.equal(await Promise.race([child!.exited, new Promise((r) => setTimeout(() => r('timeout'), 15_000).unref())]), 0, child!.stderr());
    });
  });
}
