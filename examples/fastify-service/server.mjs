// Fastify 5 served by meshless: mutual TLS from the identity mounted in CERTS_DIR (rotated live),
// the web tier may connect, /admin only for its admin workload. `request.peer` is the caller.
import Fastify from 'fastify';
import { fileSource } from '@meshless/core';
import { meshless, serverFactory } from '@meshless/http/fastify';

const td = process.env.TRUST_DOMAIN ?? 'prod.example';
const log = (event) => console.log(JSON.stringify({ service: 'fastify', ...event }));
const source = await fileSource({ dir: process.env.CERTS_DIR ?? '/var/run/secrets/spiffe.io' });

// Who may connect at all: checked at the TLS handshake, before Fastify sees a request.
const app = Fastify({ serverFactory: serverFactory({ source, allow: `spiffe://${td}/ns/web/**` }) });
app.server.on('peerRefused', (r) => log({ event: 'refused', peer: String(r.peer ?? 'no certificate'), failure: r.failure }));
await app.register(meshless); // request.peer, and route config { allow } (register before the routes)

app.get('/whoami', async (request) => ({ peer: request.peer.spiffeId }));
// Per-route rule on top: anyone else the server admits gets 403 {"error":"forbidden","code":…}.
app.get('/admin', { config: { allow: `spiffe://${td}/ns/web/sa/admin` } }, async (request) => ({ peer: request.peer.spiffeId, admin: true }));

await app.listen({ port: Number(process.env.PORT ?? 8443), host: process.env.HOST ?? '127.0.0.1' });
log({ event: 'ready', port: app.server.address().port });
process.once('SIGTERM', async () => {
  await app.close();
  await source.close();
});
