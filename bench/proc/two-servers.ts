// Two servers in one process, for the same-process comparison (scenarios/same-process.ts):
// `--kinds mtls,meshless` (HTTP) or `--kinds grpc-createSsl,grpc-meshless` (gRPC) `--certs <dir>`.
// Both listen on 127.0.0.1 (port 0 each); `ready` carries their ports, in the order given.
import { parseArgs } from 'node:util';
import { handle, onExit, ready } from './ipc.js';
import './profiler.js';

const { values } = parseArgs({ options: { kinds: { type: 'string' }, certs: { type: 'string' } } });
const kinds = (values.kinds ?? '').split(',');
const ports: number[] = [];
for (const kind of kinds) {
  if (kind.startsWith('grpc-')) {
    const { bindGrpc, grpcServer } = await import('./grpc-servers.js');
    const { server, credentials } = grpcServer(kind, values.certs!);
    ports.push(await bindGrpc(server, credentials));
    onExit(() => server.forceShutdown());
  } else {
    const { httpServer, listen } = await import('./http-servers.js');
    const { server } = httpServer(kind, values.certs);
    server.keepAliveTimeout = 60_000;
    ports.push(await listen(server));
  }
}
// This process's CPU time in µs (finer than /proc's 10 ms ticks, for short windows).
handle('cpu', () => {
  const { user, system } = process.cpuUsage();
  return { us: user + system };
});
ready({ ports, kinds });
