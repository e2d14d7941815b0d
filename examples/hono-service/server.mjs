// Hono on Node (@hono/node-server) with meshless's server: serve() takes a `createServer`, and
// the Node request is `c.env.incoming`, so the recipe is a Hono middleware over routePolicy.
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { fileSource } from '@meshless/core';
import { createServer, peerOf, routePolicy } from '@meshless/http';

const td = process.env.TRUST_DOMAIN ?? 'prod.example';
const log = (event) => console.log(JSON.stringify({ service: 'hono', ...event }));
const source = await fileSource({ dir: process.env.CERTS_DIR ?? '/var/run/secrets/spiffe.io' });

/** Hono middleware: 401/403 JSON (the same body as every meshless integration) unless `rules` allow the caller. */
const requirePeer = (rules) => {
  const policy = routePolicy(rules);
  return async (c, next) => {
    const verdict = policy(c.env.incoming);
    if (!verdict.allowed) return c.json(verdict.body, verdict.status);
    await next();
  };
};

const app = new Hono();
app.use(async (c, next) => {
  c.set('peer', peerOf(c.env.incoming)); // the verified caller, cached on the connection
  await next();
});
app.get('/whoami', (c) => c.json({ peer: c.get('peer').spiffeId }));
app.get('/admin', requirePeer(`spiffe://${td}/ns/web/sa/admin`), (c) => c.json({ peer: c.get('peer').spiffeId, admin: true }));

// Who may connect at all: checked at the TLS handshake, before Hono sees a request.
const server = serve({
  fetch: app.fetch,
  port: Number(process.env.PORT ?? 8443),
  hostname: process.env.HOST ?? '127.0.0.1',
  createServer: (_options, listener) => createServer({ source, allow: `spiffe://${td}/ns/web/**` }, listener),
});
server.on('peerRefused', (r) => log({ event: 'refused', peer: String(r.peer ?? 'no certificate'), failure: r.failure }));
server.once('listening', () => log({ event: 'ready', port: server.address().port }));
process.once('SIGTERM', () => {
  server.close(() => source.close());
  server.closeIdleConnections();
});
