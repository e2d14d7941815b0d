// A gRPC server process for the bench: `--kind grpc-insecure | grpc-createSsl | grpc-meshless --certs <dir>`.
// Serves the echo method on 127.0.0.1 (port 0): grpc-js insecure, grpc-js createSsl with client
// certificates required (the hand-written version), or meshless serverCredentials.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import grpc from '@grpc/grpc-js';
import { silentLogger } from '@meshless/core';
import { serverCredentials } from '@meshless/grpc';
import { CLIENT_ID, certFiles } from '../lib/certs.js';
import { echoService } from '../lib/grpc-echo.js';
import { BenchSource } from '../lib/meshless.js';
import { handle, onExit, ready } from './ipc.js';
import './profiler.js';

const { values } = parseArgs({ options: { kind: { type: 'string' }, certs: { type: 'string' } } });
const files = certFiles(values.certs!);
const credentials =
  values.kind === 'grpc-insecure'
    ? grpc.ServerCredentials.createInsecure()
    : values.kind === 'grpc-createSsl'
      ? grpc.ServerCredentials.createSsl(readFileSync(files.ca), [{ cert_chain: readFileSync(files.serverCert()), private_key: readFileSync(files.serverKey()) }], true)
      : serverCredentials({ source: new BenchSource(files.dir, 'server'), allow: CLIENT_ID, logger: silentLogger });
const server = new grpc.Server();
server.addService(echoService, {
  echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => callback(null, call.request),
});
const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', credentials, (err, p) => (err ? reject(err) : resolve(p))));
onExit(() => server.forceShutdown());
// One HTTP/2 connection per channel: no handshakes to count.
handle('stats', () => ({ tlsConnections: 0, resumed: 0 }));
ready({ port, kind: values.kind });
