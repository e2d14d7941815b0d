// The Koa and Hono recipes of docs/frameworks.md, in TypeScript, held to the framework contract.
import { once } from 'node:events';
import type https from 'node:https';
import type { AddressInfo } from 'node:net';
import { serve, type HttpBindings } from '@hono/node-server';
import { Hono, type MiddlewareHandler } from 'hono';
import Koa from 'koa';
import type { Peer, Rules } from '@meshless/core';
import { createServer, peerOf, routePolicy, type MeshlessServer, type PeerRefusal } from '@meshless/http';
import { closeServer } from '@meshless/fixtures/http-server';
import { ADMIN_ALLOW, SERVER_ALLOW, conformance } from './conformance.js';
import { recordingLogger } from '@meshless/testing';

// --- Koa recipe ---------------------------------------------------------------------------
const koaRequirePeer = (rules: Rules): Koa.Middleware => {
  const policy = routePolicy(rules, { logger: recordingLogger() });
  return async (ctx, next) => {
    const verdict = policy(ctx.req);
    if (!verdict.allowed) {
      ctx.status = verdict.status;
      ctx.body = verdict.body;
      return;
    }
    await next();
  };
};

conformance('Koa 3 (recipe)', async (pki) => {
  let handled = 0;
  const refusals: PeerRefusal[] = [];
  const app = new Koa<{ peer?: Peer }>();
  app.use(async (ctx, next) => {
    ctx.state.peer = peerOf(ctx.req);
    await next();
  });
  const admin = koaRequirePeer(ADMIN_ALLOW);
  app.use((ctx, next) => (ctx.path === '/admin' ? admin(ctx, next) : next()));
  app.use((ctx) => {
    handled++;
    ctx.body = { peer: ctx.state.peer?.spiffeId };
  });
  const server = createServer({ source: pki.server, allow: SERVER_ALLOW, logger: recordingLogger() }, app.callback());
  server.on('peerRefused', (r: PeerRefusal) => refusals.push(r));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as AddressInfo).port, handled: () => handled, refusals: () => refusals, close: () => closeServer(server) };
});

// --- Hono recipe --------------------------------------------------------------------------
type Env = { Bindings: HttpBindings; Variables: { peer: Peer | undefined } };
const honoRequirePeer = (rules: Rules): MiddlewareHandler<Env> => {
  const policy = routePolicy(rules, { logger: recordingLogger() });
  return async (c, next) => {
    const verdict = policy(c.env.incoming);
    if (!verdict.allowed) return c.json(verdict.body, verdict.status);
    await next();
  };
};

conformance('Hono 4 on @hono/node-server (recipe)', async (pki) => {
  let handled = 0;
  const refusals: PeerRefusal[] = [];
  const app = new Hono<Env>();
  app.use(async (c, next) => {
    c.set('peer', peerOf(c.env.incoming));
    await next();
  });
  const echo = (c: { get(key: 'peer'): Peer | undefined; json(body: unknown): Response }) => {
    handled++;
    return c.json({ peer: c.get('peer')?.spiffeId });
  };
  app.get('/whoami', (c) => echo(c));
  app.get('/admin', honoRequirePeer(ADMIN_ALLOW), (c) => echo(c));
  const server = serve({
    fetch: app.fetch,
    port: 0,
    hostname: '127.0.0.1',
    createServer: ((_options: unknown, listener: Parameters<typeof createServer>[1]) =>
      createServer({ source: pki.server, allow: SERVER_ALLOW, logger: recordingLogger() }, listener)) as unknown as typeof https.createServer,
  }) as unknown as MeshlessServer;
  server.on('peerRefused', (r: PeerRefusal) => refusals.push(r));
  if (!server.listening) await once(server, 'listening');
  return { port: (server.address() as AddressInfo).port, handled: () => handled, refusals: () => refusals, close: () => closeServer(server) };
});
