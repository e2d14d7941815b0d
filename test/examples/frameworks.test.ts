// Runs each framework example (plain `node` on the built packages) against Kubernetes-style
// mounts: the admin workload reaches /admin, the frontend gets 403 there, a workload outside the
// server-wide rule is refused at the handshake (and the example logs it), plaintext fails.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { loadCredential } from '@meshless/core';
import { channelCredentials } from '@meshless/grpc';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestCA, type IssuedCertificate, kubernetesVolume, type TestCA, waitFor } from '@meshless/testing';
import { get } from '@meshless/fixtures/http-server';
import { ensureBuilt, root, startNode, stop, type Child } from './helpers/processes.js';

const TD = 'prod.example';
const ID = {
  service: `spiffe://${TD}/ns/shop/sa/api`,
  admin: `spiffe://${TD}/ns/web/sa/admin`,
  frontend: `spiffe://${TD}/ns/web/sa/frontend`,
  batch: `spiffe://${TD}/ns/batch/sa/reporter`,
};

interface Example {
  file: string;
  /** The NestJS example is TypeScript (decorators): it runs through tsx. */
  tsx?: boolean;
  /** It also serves gRPC (meshless.nesttest.Who) on GRPC_PORT. */
  grpc?: boolean;
}

export const FRAMEWORK_EXAMPLES: Example[] = [
  { file: 'fastify-service/server.mjs' },
  { file: 'koa-service/server.mjs' },
  { file: 'hono-service/server.mjs' },
  { file: 'nest-service/main.ts', tsx: true, grpc: true },
];

async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

function grpcCall(target: string, issued: IssuedCertificate, serverId: string): Promise<{ ok: boolean; peer?: string; code?: string }> {
  const { meshless } = grpc.loadPackageDefinition(protoLoader.loadSync(join(root, 'examples/nest-service/who.proto'))) as unknown as {
    meshless: { nesttest: { Who: new (t: string, c: grpc.ChannelCredentials, o: grpc.ChannelOptions) => grpc.Client & { Admin(req: object, cb: (err: grpc.ServiceError | null, reply: { peer: string }) => void): void } } };
  };
  const client = new meshless.nesttest.Who(target, channelCredentials({ source: loadCredential(issued), allow: serverId }), { 'grpc.use_local_subchannel_pool': 1 });
  return new Promise((resolve) => {
    client.Admin({}, (err, reply) => {
      client.close();
      resolve(err ? { ok: false, code: grpc.status[err.code] } : { ok: true, peer: reply.peer });
    });
  });
}

for (const { file: example, tsx, grpc: servesGrpc } of FRAMEWORK_EXAMPLES) {
  describe(`examples/${example}`, function () {
    this.timeout(60_000);
    let ca: TestCA;
    let dir: string;
    let child: Child | undefined;
    let port: number;
    let grpcPort = 0;
    const clients: Partial<Record<keyof typeof ID, IssuedCertificate>> = {};

    before(async () => {
      ensureBuilt();
      dir = await mkdtemp(join(tmpdir(), 'meshless-framework-example-'));
      ca = await createTestCA({ trustDomain: TD });
      for (const name of Object.keys(ID) as (keyof typeof ID)[]) clients[name] = await ca.issue({ spiffeId: ID[name], dnsNames: name === 'service' ? ['localhost'] : [] });
      const volume = kubernetesVolume(join(dir, 'mount'));
      await volume.write({ 'tls.crt': clients.service!.cert, 'tls.key': clients.service!.key, 'ca.crt': clients.service!.ca });
      await volume.close();
      const env: Record<string, string> = { CERTS_DIR: join(dir, 'mount'), PORT: '0' };
      if (servesGrpc) env.GRPC_PORT = String((grpcPort = await freePort()));
      if (tsx) env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --import tsx`;
      child = startNode(join(root, 'examples', example), [], env);
      const ready = await waitFor(() => child!.events().find((e) => e.event === 'ready'), 60_000, `ready (stderr: ${child!.stderr()})`);
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

    if (servesGrpc) {
      it('serves gRPC too: the admin workload calls Who/Admin, the frontend gets PERMISSION_DENIED', async () => {
        const target = `localhost:${grpcPort}`;
        assert.deepEqual(await grpcCall(target, clients.admin!, ID.service), { ok: true, peer: ID.admin });
        assert.deepEqual(await grpcCall(target, clients.frontend!, ID.service), { ok: false, code: 'PERMISSION_DENIED' });
      });
    }

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
