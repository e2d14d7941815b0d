// NestJS (Express platform) served by meshless, HTTP and gRPC from one module: the server-wide
// rule admits the web tier, @RequirePeer narrows a handler, @Peer() is the caller. TypeScript
// (Nest's decorators): run with `node --import tsx main.ts` or compile with tsc.
import 'reflect-metadata';
import { fileURLToPath } from 'node:url';
import { Controller, Get, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { GrpcMethod, Transport, type MicroserviceOptions } from '@nestjs/microservices';
import { ExpressAdapter } from '@nestjs/platform-express';
import express from 'express';
import { fileSource, type Source } from '@meshless/core';
import { serverCredentials } from '@meshless/grpc';
import { createServer, type MeshlessServer } from '@meshless/http';
import { MESHLESS_SOURCE, MeshlessModule, Peer, RequirePeer } from '@meshless/nest';

const td = process.env.TRUST_DOMAIN ?? 'prod.example';
const log = (event: object) => console.log(JSON.stringify({ service: 'nest', ...event }));

@Controller()
class WhoController {
  @Get('whoami')
  whoami(@Peer() peer: Peer) {
    return { peer: peer.spiffeId };
  }

  @Get('admin')
  @RequirePeer(`spiffe://${td}/ns/web/sa/admin`) // others get 403 {"error":"forbidden","code":…}
  admin(@Peer() peer: Peer) {
    return { peer: peer.spiffeId, admin: true };
  }

  @GrpcMethod('Who', 'Admin')
  @RequirePeer(`spiffe://${td}/ns/web/sa/admin`) // others get PERMISSION_DENIED
  grpcAdmin(_request: unknown, @Peer() peer: Peer) {
    return { peer: peer.spiffeId };
  }
}

@Module({
  imports: [MeshlessModule.forRoot({ source: () => fileSource({ dir: process.env.CERTS_DIR ?? '/var/run/secrets/spiffe.io' }) })],
  controllers: [WhoController],
})
class AppModule {}

const allow = `spiffe://${td}/ns/web/**`; // who may connect at all, checked at the handshake
const instance = express();
const app = await NestFactory.create(AppModule, new ExpressAdapter(instance), { logger: ['error'] });
const source = app.get<Source>(MESHLESS_SOURCE);
const protoPath = fileURLToPath(new URL('who.proto', import.meta.url));
const grpcUrl = `${process.env.HOST ?? '127.0.0.1'}:${process.env.GRPC_PORT ?? 9443}`;
app.connectMicroservice<MicroserviceOptions>({ transport: Transport.GRPC, options: { package: 'meshless.nesttest', protoPath, url: grpcUrl, credentials: serverCredentials({ source, allow }) } }, { inheritAppConfig: true });
await app.startAllMicroservices();
await app.init();
const server: MeshlessServer = createServer({ source, allow }, instance);
server.on('peerRefused', (r) => log({ event: 'refused', peer: String(r.peer ?? 'no certificate'), failure: r.failure }));
server.listen(Number(process.env.PORT ?? 8443), process.env.HOST ?? '127.0.0.1', () => log({ event: 'ready', port: (server.address() as { port: number }).port, grpc: grpcUrl }));
process.once('SIGTERM', () => server.close(() => void app.close()));
