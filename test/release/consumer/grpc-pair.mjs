// A gRPC server and client with @grpc/grpc-js and @grpc/proto-loader from the user's project.
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { loadCredential, staticSource, silentLogger } from '@meshless/core';
import { channelCredentials, peerOf, serverCredentials, serverOptions } from '@meshless/grpc';
import { createTestCA } from '@meshless/testing';

const SERVER = 'spiffe://consumer.example/ns/shop/sa/payments';
const CLIENT = 'spiffe://consumer.example/ns/shop/sa/orders';
const ca = await createTestCA({ trustDomain: 'consumer.example' });
const serverSource = staticSource(loadCredential(await ca.issue(SERVER)));
const clientSource = staticSource(loadCredential(await ca.issue(CLIENT)));

const definition = protoLoader.loadSync(fileURLToPath(new URL('./echo.proto', import.meta.url)));
const { consumer } = grpc.loadPackageDefinition(definition);
const server = new grpc.Server(serverOptions());
server.addService(consumer.Echo.service, {
  who: (call, callback) => callback(null, { caller: peerOf(call)?.spiffeId ?? '' }),
});
const port = await new Promise((resolve, reject) =>
  server.bindAsync('127.0.0.1:0', serverCredentials({ source: serverSource, allow: CLIENT, logger: silentLogger }), (err, p) => (err ? reject(err) : resolve(p))),
);
const echo = new consumer.Echo(`localhost:${port}`, channelCredentials({ source: clientSource, allow: SERVER, logger: silentLogger }));
const reply = await new Promise((resolve, reject) => echo.who({}, (err, r) => (err ? reject(err) : resolve(r))));
console.log(JSON.stringify(reply));
echo.close();
server.forceShutdown();
