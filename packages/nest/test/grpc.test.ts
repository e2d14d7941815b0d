// A NestJS gRPC microservice (@GrpcMethod) bound with meshless's serverCredentials: the
// server-wide rule in the credentials, @RequirePeer per handler through MeshlessGuard, @Peer()
// in the handler. Callers: @grpc/grpc-js with channelCredentials, and Python grpcio.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import 'reflect-metadata';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { Controller, Module, type INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { GrpcMethod, Transport, type MicroserviceOptions } from '@nestjs/microservices';
import { loadCredential, staticSource } from '@meshless/core';
import { channelCredentials, serverCredentials } from '@meshless/grpc';
import type { IssuedCertificate } from '@meshless/testing';
import { MeshlessModule, Peer, RequirePeer } from '@meshless/nest';
import { ADMIN_ALLOW, BATCH_ID, FRONTEND_ID, SERVER_ALLOW, STRANGER_ID, createFrameworkPki, type Pkis } from '../../../test/frameworks/conformance.js';
import { recordingLogger } from '@meshless/testing';

const here = dirname(fileURLToPath(import.meta.url));
const PROTO = join(here, 'fixtures', 'who.proto');
const PYTHON = '/usr/bin/python3';

async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

type WhoClient = grpc.Client & Record<string, (...args: unknown[]) => unknown>;
const { meshless } = grpc.loadPackageDefinition(protoLoader.loadSync(PROTO)) as unknown as { meshless: { nesttest: { Who: new (target: string, creds: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => WhoClient } } };

interface Outcome {
  ok: boolean;
  peer?: string;
  code?: string;
  details?: string;
}

function callNode(target: string, credentials: grpc.ChannelCredentials, method: 'WhoAmI' | 'Admin'): Promise<Outcome> {
  const client = new meshless.nesttest.Who(target, credentials, { 'grpc.use_local_subchannel_pool': 1 });
  return new Promise((resolve) => {
    client[method]!({ note: 'from node' }, { deadline: Date.now() + 10_000 }, (err: grpc.ServiceError | null, reply: { peer: string }) => {
      client.close();
      resolve(err ? { ok: false, code: grpc.status[err.code], details: err.details } : { ok: true, peer: reply.peer });
    });
  });
}

describe('@meshless/nest: NestJS gRPC microservice (@GrpcMethod) with serverCredentials', function () {
  this.timeout(60_000);
  let pki: Pkis;
  let app: INestMicroservice;
  let target: string;
  const counter = { handled: 0 };

  before(async () => {
    pki = await createFrameworkPki();
    @Controller()
    class WhoController {
      @GrpcMethod('Who', 'WhoAmI')
      whoAmI(_data: unknown, @Peer() peer: Peer) {
        counter.handled++;
        return { peer: peer?.spiffeId };
      }

      @GrpcMethod('Who', 'Admin')
      @RequirePeer(ADMIN_ALLOW)
      admin(_data: unknown, @Peer() peer: Peer) {
        counter.handled++;
        return { peer: peer?.spiffeId };
      }
    }
    const source = staticSource(pki.server);
    @Module({ imports: [MeshlessModule.forRoot({ source, logger: recordingLogger() })], controllers: [WhoController] })
    class GrpcModule {}
    const port = await freePort();
    app = await NestFactory.createMicroservice<MicroserviceOptions>(GrpcModule, {
      transport: Transport.GRPC,
      options: { package: 'meshless.nesttest', protoPath: PROTO, url: `localhost:${port}`, credentials: serverCredentials({ source, allow: SERVER_ALLOW, logger: recordingLogger() }) },
      logger: false,
    });
    await app.listen();
    target = `localhost:${port}`;
  });
  after(() => app?.close());

  const creds = (issued: IssuedCertificate) => channelCredentials({ source: loadCredential(issued), allow: 'spiffe://prod.example/ns/pay/sa/api' });

  describe('@grpc/grpc-js callers', () => {
    it('an allowed caller is served; @Peer() echoes its identity, on an open and a guarded method', async () => {
      assert.deepEqual(await callNode(target, creds(pki.frontend), 'WhoAmI'), { ok: true, peer: FRONTEND_ID });
      assert.deepEqual(await callNode(target, creds(pki.frontend), 'Admin'), { ok: true, peer: FRONTEND_ID });
    });

    it('a caller @RequirePeer denies gets PERMISSION_DENIED; the handler does not run', async () => {
      assert.deepEqual(await callNode(target, creds(pki.batch), 'WhoAmI'), { ok: true, peer: BATCH_ID });
      const before = counter.handled;
      const denied = await callNode(target, creds(pki.batch), 'Admin');
      assert.equal(denied.code, 'PERMISSION_DENIED', JSON.stringify(denied));
      assert.match(denied.details!, new RegExp(`${BATCH_ID} is not allowed to call /meshless.nesttest.Who/Admin`));
      assert.equal(counter.handled, before);
    });

    it('a caller the server-wide rule denies never reaches Nest (refused by the credentials)', async () => {
      const before = counter.handled;
      const refused = await callNode(target, creds(pki.stranger), 'WhoAmI');
      assert.equal(refused.code, 'PERMISSION_DENIED', JSON.stringify(refused));
      assert.match(refused.details!, new RegExp(STRANGER_ID));
      assert.equal(counter.handled, before);
    });

    it('a plaintext caller fails', async () => {
      const before = counter.handled;
      const plain = await callNode(target, grpc.credentials.createInsecure(), 'WhoAmI');
      assert.equal(plain.ok, false);
      assert.equal(plain.code, 'UNAVAILABLE', JSON.stringify(plain));
      assert.equal(counter.handled, before);
    });
  });

  describe('Python grpcio callers', () => {
    let tmp: string;
    before(async function () {
      const probe = spawnSync(PYTHON, ['-c', 'import grpc'], { encoding: 'utf8' });
      if (probe.status !== 0) {
        console.log(`    skipped: ${PYTHON} cannot import grpc (scripts/setup-system.sh installs python3-grpcio): ${probe.stderr?.trim() ?? probe.error}`);
        this.skip();
      }
      tmp = await mkdtemp(join(tmpdir(), 'meshless-nest-py-'));
    });
    after(() => (tmp ? rm(tmp, { recursive: true, force: true }) : undefined));

    async function python(name: string, issued: IssuedCertificate, method: string): Promise<{ ok: boolean; reply?: { peer: string }; code?: string; details?: string }> {
      const dir = join(tmp, name);
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'tls.crt'), issued.cert);
      await writeFile(join(dir, 'tls.key'), issued.key, { mode: 0o600 });
      await writeFile(join(dir, 'ca.crt'), issued.ca);
      return new Promise((resolve, reject) => {
        execFile(PYTHON, [join(here, 'fixtures', 'who_client.py'), JSON.stringify({ target, dir, method })], { timeout: 20_000 }, (err, stdout, stderr) => {
          if (err) return reject(new Error(`python client failed: ${err.message}\n${stderr}`));
          resolve(JSON.parse(stdout.trim().split('\n').pop()!));
        });
      });
    }

    it('an allowed Python caller is served and sees its identity', async () => {
      assert.deepEqual(await python('frontend', pki.frontend, 'Admin'), { ok: true, reply: { peer: FRONTEND_ID } });
    });

    it('a Python caller @RequirePeer denies gets PERMISSION_DENIED', async () => {
      const before = counter.handled;
      const r = await python('batch', pki.batch, 'Admin');
      assert.equal(r.code, 'PERMISSION_DENIED', JSON.stringify(r));
      assert.equal(counter.handled, before);
    });

    it('a Python caller the server-wide rule denies never reaches Nest', async () => {
      const before = counter.handled;
      const r = await python('stranger', pki.stranger, 'WhoAmI');
      assert.equal(r.code, 'PERMISSION_DENIED', JSON.stringify(r));
      assert.equal(counter.handled, before);
    });
  });
});
