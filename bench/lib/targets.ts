import { findRow as find, type Row, type TargetCheck } from './results.js';
import { round } from './stats.js';

function check(target: string, value: number | undefined, met: (v: number) => boolean, note?: string): TargetCheck {
  if (value === undefined || !Number.isFinite(value)) return { target, note: note ?? 'not measured in this run' };
  return { target, value: round(value, 3), met: met(value), ...(note ? { note } : {}) };
}

/** Checks issue 9's targets (and issue 2's 2× rule) against this run's rows. */
export function checkTargets(rows: Row[]): TargetCheck[] {
  const out: TargetCheck[] = [];
  const ratio = (variant: string, key: string) => find(rows, 'http', 'meshless', variant)?.ratios?.[key];
  /** "rounds a–b": the spread of the per-round ratios behind a median ratio. */
  const spread = (variant: string | undefined, key: string, group: Row['group'] = 'http', scenario = 'meshless') => {
    const r = find(rows, group, scenario, variant)?.ratioRanges?.[key];
    return r ? `rounds ${r[0]}–${r[1]}` : undefined;
  };
  for (const v of ['c1', 'c32', 'c32-64k']) {
    out.push(check(`meshless HTTP ${v}: req/s ≥ 0.97× hand-written mTLS`, ratio(v, 'rps/mtls'), (x) => x >= 0.97, spread(v, 'rps/mtls')));
  }
  for (const v of ['c1', 'c32']) {
    out.push(check(`meshless HTTP ${v}: req/s ≥ 2× stunnel pair`, ratio(v, 'rps/stunnel'), (x) => x >= 2, spread(v, 'rps/stunnel')));
    out.push(check(`meshless HTTP ${v}: req/s ≥ 1.7× nginx pair`, ratio(v, 'rps/nginx'), (x) => x >= 1.7, spread(v, 'rps/nginx')));
    out.push(check(`meshless HTTP ${v}: p99 lower than stunnel pair (ratio < 1)`, ratio(v, 'p99/stunnel'), (x) => x < 1, spread(v, 'p99/stunnel')));
    out.push(check(`meshless HTTP ${v}: p99 lower than nginx pair (ratio < 1)`, ratio(v, 'p99/nginx'), (x) => x < 1, spread(v, 'p99/nginx')));
    out.push(check(`meshless HTTP ${v}: CPU/request ≤ 0.5× stunnel pair`, ratio(v, 'cpu/stunnel'), (x) => x <= 0.5, spread(v, 'cpu/stunnel')));
    out.push(check(`meshless HTTP ${v}: CPU/request ≤ 0.5× nginx pair`, ratio(v, 'cpu/nginx'), (x) => x <= 0.5, spread(v, 'cpu/nginx')));
    out.push(check(`meshless HTTP ${v}: req/s ≥ 0.92× plaintext (stretch)`, ratio(v, 'rps/plaintext'), (x) => x >= 0.92, spread(v, 'rps/plaintext')));
  }
  // Issue 15: a permissive listener costs its first-byte check once per connection, nothing per request.
  for (const v of ['c1', 'c32']) {
    const r = find(rows, 'http', 'meshless-permissive', v);
    out.push(check(`meshless permissive HTTP ${v}: mTLS req/s ≥ 0.97× strict meshless`, r?.ratios?.['rps/meshless'], (x) => x >= 0.97, spread(v, 'rps/meshless', 'http', 'meshless-permissive')));
  }
  // Issue 18: the leanest hand-written pair (node:https ← bare undici Pool) is the baseline.
  for (const v of ['c1', 'c32', 'c32-64k']) {
    out.push(check(`meshless HTTP ${v}: req/s ≥ 1.0× bare Pool pair`, ratio(v, 'rps/pool'), (x) => x >= 1, spread(v, 'rps/pool')));
    out.push(check(`meshless HTTP ${v}: CPU/request ≤ bare Pool pair (ratio ≤ 1)`, ratio(v, 'cpu/pool'), (x) => x <= 1, spread(v, 'cpu/pool')));
  }
  out.push(
    check('new connections: meshless ≥ 2× bare Pool full-handshake rate', find(rows, 'new-connections', 'meshless')?.ratios?.['rps/pool-full'], (x) => x >= 2, spread('c8-new', 'rps/pool-full', 'new-connections')),
  );
  out.push(
    check(
      "server-only import ≤ 5 MB RSS over node:https (import '@meshless/http', MB)",
      find(rows, 'footprint', 'http')?.median?.rssOverBaselineMB,
      (x) => x <= 5,
    ),
  );
  const idleMeshless = find(rows, 'scale', 'idle meshless createServer')?.median?.rssPerConnectionKB;
  const idleHand = find(rows, 'scale', 'idle hand-written node:https')?.median?.rssPerConnectionKB;
  out.push(
    check(
      'memory per idle connection ≤ 1.1× the hand-written server (RSS per connection, meshless ÷ node:https)',
      idleMeshless !== undefined && idleHand !== undefined && idleHand > 0 ? idleMeshless / idleHand : undefined,
      (x) => x <= 1.1,
      idleMeshless !== undefined && idleHand !== undefined ? `${idleMeshless} KB vs ${idleHand} KB` : undefined,
    ),
  );
  const rotationRow = rows.find((r) => r.group === 'scale' && r.scenario === 'rotation with live connections' && r.median);
  const liveConnections = rotationRow?.median?.liveConnections;
  out.push(
    check(
      `rotation with ${liveConnections === undefined ? '10,000' : liveConnections.toLocaleString('en-US')} live connections: zero failed requests, none closed (failed + closed)`,
      rotationRow?.median === undefined ? undefined : (rotationRow.median.failedRequests ?? 0) + (rotationRow.median.connectionsClosed ?? 0),
      (x) => x === 0,
    ),
  );
  out.push(
    check(
      'rotation with live connections: p99 swap ≤ 100 ms (update → first new connection served with the new certificate, ms)',
      rotationRow?.median?.servedP99Ms,
      (x) => x <= 100,
      rotationRow?.median?.swapP99Ms === undefined ? undefined : `the server's own synchronous swap: p99 ${rotationRow.median.swapP99Ms} ms`,
    ),
  );
  const grpc = find(rows, 'grpc', 'meshless')?.median?.ratioToCreateSsl;
  out.push(check('meshless gRPC ≥ 0.95× grpc-js createSsl', grpc, (x) => x >= 0.95, spread(undefined, 'rps/createSsl', 'grpc')));
  out.push(check('meshless gRPC unary ≥ 1.0× grpc-js createSsl (issue 18)', grpc, (x) => x >= 1, spread(undefined, 'rps/createSsl', 'grpc')));
  out.push(
    check('new connections: meshless ≥ 2× hand-written full-handshake rate', find(rows, 'new-connections', 'meshless')?.ratios?.['rps/mtls-full'], (x) => x >= 2, spread('c8-new', 'rps/mtls-full', 'new-connections')),
  );
  const rotation = find(rows, 'rotation', 'rotation');
  out.push(check('rotation p99 ≤ 100 ms (..data rename → first new connection served with the new certificate)', rotation?.median?.p99Ms, (x) => x <= 100));
  out.push(check('per-request decision (peer lookup + allowList) ≤ 1 µs at 10,000 rules (ns)', find(rows, 'per-request', 'request-10k')?.median?.nsPerOp, (x) => x <= 1000));
  const a10 = find(rows, 'per-request', 'allow-10')?.median?.nsPerOp;
  const a10kRow = find(rows, 'per-request', 'allow-10k');
  const a10k = a10kRow?.median?.nsPerOp;
  // The paired ratio (batches run side by side) when the microbench reports it.
  const paired = (a10kRow?.details as { ratio10kTo10?: number } | undefined)?.ratio10kTo10;
  out.push(check('allowList at 10,000 rules within 2× of 10 rules (issue 2)', paired ?? (a10 && a10k ? a10k / a10 : undefined), (x) => x <= 2));
  for (const side of ['server', 'client']) {
    out.push(check(`meshless ${side} heap growth < 10 MB after rotations and requests (MB)`, find(rows, 'memory', `meshless ${side}`)?.median?.heapGrowthMB, (x) => x < 10));
  }
  return out;
}
