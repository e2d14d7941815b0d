// orders: an Express app behind meshless's HTTPS server, calling payments over gRPC. Both
// directions use the identity mounted in CERTS_DIR, rotated live; no sidecar.
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import express from 'express';
import { fileSource } from '@meshless/core';
import { channelCredentials } from '@meshless/grpc';
import { createServer } from '@meshless/http';
import { mtls, requirePeer } from '@meshless/http/express';

const td = process.env.TRUST_DOMAIN ?? 'prod.example';
const log = (event) => console.log(JSON.stringify({ service: 'orders', ...event }));

const source = await fileSource({ dir: process.env.CERTS_DIR ?? '/var/run/secrets/spiffe.io' });
source.on('update', (c) => log({ event: 'rotated', generation: c.generation, serial: c.leaf.serialNumber }));
source.on('error', (err) => log({ event: 'reload-failed', code: err.code, reason: err.message }));

const protoFile = fileURLToPath(new URL('../grpc-service/payments.proto', import.meta.url));
const { shop } = grpc.loadPackageDefinition(protoLoader.loadSync(protoFile, { keepCase: true, longs: Number }));
// The server must prove it is payments; its host name does not matter.
const payments = new shop.payments.v1.Payments(
  process.env.PAYMENTS_ADDR ?? 'payments.shop.svc:9443',
  channelCredentials({ source, allow: `spiffe://${td}/ns/shop/sa/payments` }),
);

const app = express();
app.use(express.json(), mtls());
let orders = 0;
app.post('/orders', requirePeer(`spiffe://${td}/ns/web/**`), (req, res, next) => {
  const order = { order_id: `o_${++orders}`, amount_cents: req.body.amount_cents, note: req.body.note };
  payments.Charge(order, (err, charge) => {
    if (err) return next(err);
    res.status(201).json({ ...order, charge, caller: req.peer.spiffeId, servedSerial: source.current().leaf.serialNumber });
  });
});

// Who may connect at all: the web tier.
const server = createServer({ source, allow: `spiffe://${td}/ns/web/**` }, app);
server.on('peerRefused', (r) => log({ event: 'refused', peer: String(r.peer ?? 'no certificate'), failure: r.failure, reason: r.reason }));
server.listen(Number(process.env.PORT ?? 8443), process.env.HOST ?? '127.0.0.1', () => log({ event: 'ready', port: server.address().port }));
process.once('SIGTERM', () => {
  server.close(() => source.close());
  server.closeIdleConnections();
  payments.close();
});
