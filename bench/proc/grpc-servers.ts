// The bench's gRPC servers, by kind (proc/grpc-server.ts: one per process; proc/two-servers.ts: two
// in one process): grpc-insecure | grpc-createSsl (client certificates required) | grpc-meshless.
import { readFileSync } from 'node:fs';
import grpc from '@grpc/grpc-js';
import { silentLogger } from '@meshless/core';
import { serverCredentials } from '@meshless/grpc';
import { CLIENT_ID, certFiles } from '../lib/certs.js';
import { echoService } from '../lib/grpc-echo.js';
import { BenchSource } from '../lib/meshless.js';

/** A gRPC server of `kind` with the echo method, and the credentials to bind it with. */
export function grpcServer(kind: string, certs: string): { server: grpc.Server; credentials: grpc.ServerCredentials } {
  const files = certFiles(certs);
  const credentials =
    kind === 'grpc-insecure'
      ? grpc.ServerCredentials.createInsecure()
      : kind === 'grpc-createSsl'
        ? grpc.ServerCredentials.createSsl(readFileSync(files.ca), [{ cert_chain: readFileSync(files.serverCert()), private_key: readFileSync(files.serverKey()) }], true)
        : kind === 'grpc-meshless'
          ? serverCredentials({ source: new BenchSource(files.dir, 'server'), allow: CLIENT_ID, logger: silentLogger })
          : undefined;
  if (!credentials) throw new Error(`unknown --kind ${kind}`);
  const server = new grpc.Server();
  server.addService(echoService, {
    echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => callback(null, call.request),
  });
  return { server, credentials };
}

/** Binds a gRPC server on 127.0.0.1 (port 0); resolves with the port. */
export function bindGrpc(server: grpc.Server, credentials: grpc.ServerCredentials): Promise<number> {
  return new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', credentials, (err, p) => (err ? reject(err) : resolve(p))));
}
