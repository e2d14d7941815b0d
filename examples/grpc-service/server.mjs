// payments: a gRPC service with mutual TLS and no sidecar. Its identity comes from the mounted
// directory CERTS_DIR (rotated live); only `orders` may charge, only `support` may refund.
import diagnostics_channel from 'node:diagnostics_channel';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { channels, fileSource } from '@meshless/core';
import { authorizeMethods, peerOf, serverCredentials, serverOptions } from '@meshless/grpc';

const td = process.env.TRUST_DOMAIN ?? 'prod.example';
const log = (event) => console.log(JSON.stringify({ service: 'payments', ...event }));

const source = await fileSource({ dir: process.env.CERTS_DIR ?? '/var/run/secrets/spiffe.io' });
source.on('update', (c) => log({ event: 'rotated', generation: c.generation, serial: c.leaf.serialNumber }));
source.on('error', (err) => log({ event: 'reload-failed', code: err.code, reason: err.message }));
diagnostics_channel.subscribe(channels.peerRefused.name, (m) => {
  if (m.side === 'server') log({ event: 'refused', peer: String(m.peer ?? 'no certificate'), failure: m.failure, reason: m.reason });
});

const protoFile = fileURLToPath(new URL('./payments.proto', import.meta.url));
const { shop } = grpc.loadPackageDefinition(protoLoader.loadSync(protoFile, { keepCase: true, longs: Number }));
const server = new grpc.Server(
  serverOptions({
    interceptors: [
      authorizeMethods({
        '/shop.payments.v1.Payments/Charge': `spiffe://${td}/ns/shop/sa/orders`,
        '/shop.payments.v1.Payments/Refund': `spiffe://${td}/ns/shop/sa/support`,
      }),
    ],
  }),
);
let charges = 0;
const reply = (call, chargeId) => ({ charge_id: chargeId, caller: peerOf(call)?.spiffeId ?? '', served_serial: source.current().leaf.serialNumber });
server.addService(shop.payments.v1.Payments.service, {
  Charge: (call, callback) => callback(null, reply(call, `ch_${++charges}`)),
  Refund: (call, callback) => callback(null, reply(call, call.request.charge_id)),
});

// Who may connect at all: any workload of namespace shop. Per-method rules above narrow it.
const credentials = serverCredentials({ source, allow: `spiffe://${td}/ns/shop/**` });
server.bindAsync(`${process.env.HOST ?? '127.0.0.1'}:${process.env.PORT ?? 9443}`, credentials, (err, port) => {
  if (err) throw err;
  log({ event: 'ready', port });
});
process.once('SIGTERM', () => server.tryShutdown(() => source.close()));
