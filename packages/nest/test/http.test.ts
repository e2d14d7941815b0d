// NestJS HTTP controllers on the Express and Fastify platforms, served by meshless, held to the
// framework contract: @RequirePeer on a handler, @Peer() echoing the caller.
import assert from 'node:assert/strict';
import diagnostics_channel from 'node:diagnostics_channel';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import 'reflect-metadata';
import { Controller, Get, Module, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import express from 'express';
import { channels, staticSource, type Source } from '@meshless/core';
import { createServer, type MeshlessServer, type PeerRefusal } from '@meshless/http';
import { serverFactory } from '@meshless/http/fastify';
import { MESHLESS_SOURCE, MeshlessModule, Peer, RequirePeer } from '@meshless/nest';
import { closeServer, get } from '@meshless/fixtures/http-server';
import { ADMIN_ALLOW, BATCH_ID, FRONTEND_ID, SERVER_ALLOW, conformance, createFrameworkPki, type Pkis } from '../../../test/frameworks/conformance.js';
import { recordingLogger } from '@meshless/testing';

/** The app under test, with its own handler counter. */
function appModule(source: Source) {
  const counter = { handled: 0 };
  @Controller()
  class WhoController {
    @Get('whoami')
    whoami(@Peer() peer: Peer) {
      counter.handled++;
      return { peer: peer?.spiffeId };
    }

    @Get('admin')
    @RequirePeer(ADMIN_ALLOW)
    admin(@Peer() peer: Peer) {
      counter.handled++;
      return { peer: peer?.spiffeId };
    }
  }

  @Controller('audit')
  class AuditController {
    @Get()
    @RequirePeer(ADMIN_ALLOW, { dryRun: true })
    audit(@Peer() peer: Peer) {
      counter.handled++;
      return { peer: peer?.spiffeId };
    }
  }

  @Controller('reports')
  @RequirePeer(BATCH_ID)
  class ReportsController {
    @Get()
    list(@Peer() peer: Peer) {
      counter.handled++;
      return { peer: peer?.spiffeId };
    }

    @Get('open')
    @RequirePeer('*')
    open(@Peer() peer: Peer) {
      counter.handled++;
      return { peer: peer?.spiffeId };
    }
  }

  @Module({ imports: [MeshlessModule.forRoot({ source, logger: recordingLogger() })], controllers: [WhoController, ReportsController, AuditController] })
  class AppModule {}
  return { AppModule, counter };
}

async function startExpressPlatform(pki: Pkis) {
  const { AppModule, counter } = appModule(staticSource(pki.server));
  const instance = express();
  const app: INestApplication = await NestFactory.create(AppModule, new ExpressAdapter(instance), { logger: false });
  await app.init();
  const refusals: PeerRefusal[] = [];
  const server: MeshlessServer = createServer({ source: app.get<Source>(MESHLESS_SOURCE), allow: SERVER_ALLOW, logger: recordingLogger() }, instance);
  server.on('peerRefused', (r: PeerRefusal) => refusals.push(r));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    handled: () => counter.handled,
    refusals: () => refusals,
    close: async () => {
      await closeServer(server);
      await app.close();
    },
  };
}

async function startFastifyPlatform(pki: Pkis) {
  const source = staticSource(pki.server);
  const { AppModule, counter } = appModule(source);
  const adapter = new FastifyAdapter({ serverFactory: serverFactory({ source, allow: SERVER_ALLOW, logger: recordingLogger() }) });
  const app = await NestFactory.create<NestFastifyApplication>(AppModule, adapter, { logger: false });
  const refusals: PeerRefusal[] = [];
  (app.getHttpServer() as MeshlessServer).on('peerRefused', (r: PeerRefusal) => refusals.push(r));
  await app.listen(0, '127.0.0.1');
  return {
    port: (app.getHttpServer().address() as AddressInfo).port,
    handled: () => counter.handled,
    refusals: () => refusals,
    close: () => app.close(),
  };
}

conformance('NestJS 12 on the Express platform', startExpressPlatform);
conformance('NestJS 12 on the Fastify platform', startFastifyPlatform);

for (const [platform, start] of [['Express', startExpressPlatform], ['Fastify', startFastifyPlatform]] as const) {
  describe(`@meshless/nest on the ${platform} platform: controller rules`, function () {
    this.timeout(30_000);
    let pki: Pkis;
    let app: Awaited<ReturnType<typeof start>>;
    before(async () => {
      pki = await createFrameworkPki();
      app = await start(pki);
    });
    after(() => app?.close());

    it('a controller-level @RequirePeer applies to its handlers; a handler-level one replaces it', async () => {
      const batch = await get(app.port, '/reports', pki.batch);
      assert.equal(batch.status, 200, batch.body);
      assert.deepEqual(JSON.parse(batch.body), { peer: BATCH_ID });
      const frontend = await get(app.port, '/reports', pki.frontend);
      assert.equal(frontend.status, 403);
      assert.deepEqual(JSON.parse(frontend.body), { error: 'forbidden', code: 'MESHLESS_ERR_PEER_DENIED' });
      const open = await get(app.port, '/reports/open', pki.frontend);
      assert.equal(open.status, 200, open.body);
      assert.deepEqual(JSON.parse(open.body), { peer: FRONTEND_ID });
    });

    it('@RequirePeer(rules, { dryRun: true }) lets a denied caller through and reports the would-be refusal', async () => {
      const wouldDeny: { scope?: string; peer?: unknown }[] = [];
      const onWouldDeny = (message: unknown) => wouldDeny.push(message as { scope?: string; peer?: unknown });
      diagnostics_channel.subscribe(channels.policyWouldDeny.name, onWouldDeny);
      try {
        const reply = await get(app.port, '/audit', pki.batch);
        assert.equal(reply.status, 200, reply.body);
        assert.deepEqual(JSON.parse(reply.body), { peer: BATCH_ID });
        assert.ok(wouldDeny.some((m) => m.scope === 'route' && String(m.peer) === BATCH_ID), JSON.stringify(wouldDeny));
      } finally {
        diagnostics_channel.unsubscribe(channels.policyWouldDeny.name, onWouldDeny);
      }
    });
  });
}

describe('@meshless/nest decorators', () => {
  it('@RequirePeer with an invalid rule fails when the class is defined, naming the rule', () => {
    assert.throws(
      () => {
        class Bad {
          @RequirePeer('spiffe://Bad Domain/x')
          handler() {}
        }
        return Bad;
      },
      (err: Error & { code?: string }) => err.code === 'MESHLESS_ERR_INVALID_RULE' && /Bad Domain/.test(err.message),
    );
  });
});
