// gRPC unary calls/s, 32 in flight on one channel: meshless credentials (serverCredentials ←
// channelCredentials) against grpc-js's own createSsl with the same certificates (client
// certificates required on both), and insecure grpc-js as the ceiling. Server and client are
// separate processes (proc/grpc-server.ts, proc/load.ts), measured in the shared interleaved
// rounds; besides calls/s, the CPU per call of each side (throughput is bounded by the busier one).
import type { BenchContext } from '../lib/context.js';
import { startPairs, type PairSpec } from '../lib/pairs.js';
import type { Row } from '../lib/results.js';
import { runInterleaved } from '../lib/rounds.js';
import { round } from '../lib/stats.js';

const specs: PairSpec[] = [
  { id: 'insecure', label: 'grpc-js insecure', server: 'grpc-insecure', load: 'grpc-insecure' },
  { id: 'createSsl', label: 'grpc-js createSsl, client certificates required', server: 'grpc-createSsl', load: 'grpc-createSsl' },
  { id: 'meshless', label: 'meshless serverCredentials ← channelCredentials', server: 'grpc-meshless', load: 'grpc-meshless' },
];
const IN_FLIGHT = 32;

export async function runGrpc(ctx: BenchContext): Promise<Row[]> {
  console.log('\n== gRPC ==');
  const targets = await startPairs(ctx, specs, false);
  const variant = { id: `unary, ${IN_FLIGHT} in flight`, concurrency: IN_FLIGHT, path: '', newConnection: false };
  const rows = await runInterleaved(ctx, 'grpc', targets, [variant], ctx.options.measureMs, () => ['createSsl', 'insecure']);
  return rows.map((r) => {
    const m = r.median;
    if (!m) return r;
    const self = (base: string, key: string) => (r.scenario === base ? 1 : r.ratios?.[key]);
    const cpu = self('createSsl', 'cpu/createSsl');
    return {
      ...r,
      median: {
        callsPerSec: round(m.rps, 4),
        serverCpuUsPerCall: round((m.serverCpuSecPer10k ?? NaN) * 100, 3),
        clientCpuUsPerCall: round((m.clientCpuSecPer10k ?? NaN) * 100, 3),
        ratioToCreateSsl: self('createSsl', 'rps/createSsl'),
        ratioToInsecure: self('insecure', 'rps/insecure'),
        // createSsl's CPU per call over this one's: 1 = same cost.
        cpuEfficiencyToCreateSsl: cpu ? round(1 / cpu, 3) : undefined,
      },
    };
  });
}
