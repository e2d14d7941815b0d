// Koa 3 behind meshless's server: the recipe is Koa's own middleware over routePolicy (the check
// every meshless integration shares), so no Koa-specific package is needed.
import Koa from 'koa';
import { fileSource } from '@meshless/core';
import { createServer, peerOf, routePolicy } from '@meshless/http';

const td = process.env.TRUST_DOMAIN ?? 'prod.example';
const log = (event) => console.log(JSON.stringify({ service: 'koa', ...event }));
const source = await fileSource({ dir: process.env.CERTS_DIR ?? '/var/run/secrets/spiffe.io' });

/** Koa middleware: 401/403 JSON (the same body as every meshless integration) unless `rules` allow the caller. */
const requirePeer = (rules) => {
  const policy = routePolicy(rules);
  return async (ctx, next) => {
    const verdict = policy(ctx.req);
    if (!verdict.allowed) return void ((ctx.status = verdict.status), (ctx.body = verdict.body));
    await next();
  };
};

const app = new Koa();
app.use(async (ctx, next) => {
  ctx.state.peer = peerOf(ctx.req); // the verified caller, cached on the connection
  await next();
});
const admin = requirePeer(`spiffe://${td}/ns/web/sa/admin`);
app.use((ctx, next) => (ctx.path === '/admin' ? admin(ctx, next) : next()));
app.use((ctx) => {
  if (ctx.path === '/whoami' || ctx.path === '/admin') ctx.body = { peer: ctx.state.peer.spiffeId };
});

// Who may connect at all: checked at the TLS handshake, before Koa sees a request.
const server = createServer({ source, allow: `spiffe://${td}/ns/web/**` }, app.callback());
server.on('peerRefused', (r) => log({ event: 'refused', peer: String(r.peer ?? 'no certificate'), failure: r.failure }));
server.listen(Number(process.env.PORT ?? 8443), process.env.HOST ?? '127.0.0.1', () => log({ event: 'ready', port: server.address().port }));
process.once('SIGTERM', () => {
  server.close(() => source.close());
  server.closeIdleConnections();
});
