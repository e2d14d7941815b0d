// A gRPC server process for the bench: `--kind grpc-insecure | grpc-createSsl | grpc-meshless --certs <dir>`.
// Serves the echo method on 127.0.0.1 (port 0): grpc-js insecure, grpc-js createSsl with client
// certificates required (the hand-written version), or meshless serverCredentials.
import { parseArgs } from 'node:util';
import { handle, onExit, ready } from './ipc.js';
import { bindGrpc, grpcServer } from './grpc-servers.js';
import './profiler.js';

const { values } = parseArgs({ options: { kind: { type: 'string' }, certs: { type: 'string' } } });
const { server, credentials } = grpcServer(values.kind ?? '', values.certs!);
const port = await bindGrpc(server, credentials);
onExit(() => server.forceShutdown());
// One HTTP/2 connection per channel: no handshakes to count.
handle('stats', () => ({ tlsConnections: 0, resumed: 0 }));
ready({ port, kind: values.kind });
