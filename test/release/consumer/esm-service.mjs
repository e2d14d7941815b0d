// An ESM service as a user writes it against the installed packages: createServer + createAgent,
// one mTLS request each way, Node's global fetch through setGlobalDispatcher, and Express 4
// middleware (mtls(), requirePeer()). Prints one JSON line; exits 0 only when all of it held.
import { once } from 'node:events';
import express from 'express';
import { request, setGlobalDispatcher } from 'undici';
import { loadCredential, staticSource, silentLogger } from '@meshless/core';
import { createAgent, createServer, peerOf } from '@meshless/http';
import { mtls, requirePeer } from '@meshless/http/express';
import { createTestCA } from '@meshless/testing';

const SERVER = 'spiffe://consumer.example/ns/shop/sa/payments';
const CLIENT = 'spiffe://consumer.example/ns/shop/sa/orders';
const ca = await createTestCA({ trustDomain: 'consumer.example' });
const server = staticSource(loadCredential(await ca.issue(SERVER)));
const client = staticSource(loadCredential(await ca.issue(CLIENT)));

const app = express();
app.use(mtls());
app.get('/who', (req, res) => res.json({ peer: req.peer?.spiffeId, direct: peerOf(req)?.spiffeId, express: express.application ? 'ok' : 'missing' }));
app.get('/admin', requirePeer('spiffe://consumer.example/ns/ops/**'), (_req, res) => res.send('admin'));
const https = createServer({ source: server, allow: CLIENT, logger: silentLogger }, app);
https.listen(0, '127.0.0.1');
await once(https, 'listening');
const origin = `https://localhost:${https.address().port}`;

const agent = createAgent({ source: client, allow: SERVER, logger: silentLogger });
const who = await (await request(`${origin}/who`, { dispatcher: agent })).body.json();
const admin = await request(`${origin}/admin`, { dispatcher: agent });
await admin.body.dump();
setGlobalDispatcher(agent);
const fetched = await (await fetch(`${origin}/who`)).json();

console.log(JSON.stringify({ who, adminStatus: admin.statusCode, fetched, expressVersion: (await import('express/package.json', { with: { type: 'json' } })).default.version }));
await agent.close();
https.close();
https.closeAllConnections();
