import { findRow, type Results, type Row } from './results.js';
import { median } from './stats.js';
import { explainMisses } from './explanations.js';
import { ROTATION_SERVED } from '../scenarios/rotation.js';

type Cell = string | number | undefined;

function num(value: number | undefined, digits = 3): string {
  if (value === undefined || !Number.isFinite(value)) return '–';
  const abs = Math.abs(value);
  if (abs >= 1000) return Math.round(value).toLocaleString('en-US');
  if (abs >= 100) return value.toFixed(0);
  return Number(value.toPrecision(digits)).toString();
}

const ratio = (value: number | undefined): string => (value === undefined || !Number.isFinite(value) ? '–' : `${value.toFixed(2)}×`);

function table(header: string[], lines: Cell[][]): string {
  const cell = (c: Cell) => (c === undefined ? '–' : String(c).replace(/\|/g, '\\|'));
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...lines.map((l) => `| ${l.map(cell).join(' | ')} |`)].join('\n');
}

/** Status and the first words of the reason (the full reason is listed under the tables). */
function skipCell(row: Row): string {
  const reason = (row.reason ?? '').split(' | ')[0]!;
  return `${row.status}: ${reason.length > 90 ? `${reason.slice(0, 87)}…` : reason}`;
}

const labels: Record<string, string> = {
  plaintext: 'plaintext (node:http ← undici Pool)',
  pool: 'hand-written mTLS, leanest (node:https ← bare undici Pool `connect` + SPIFFE `checkServerIdentity`)',
  'pool-full': 'hand-written bare Pool, undici session cache off (full handshakes)',
  mtls: 'hand-written mTLS (node:https ← undici Agent `connect`)',
  'mtls-full': 'hand-written mTLS, undici session cache off (full handshakes)',
  meshless: '**meshless** (createServer ← createAgent)',
  'meshless-server': 'meshless createServer ← hand-written client (bare Pool)',
  stunnel: 'sidecar pair: stunnel → stunnel',
  nginx: 'sidecar pair: nginx → nginx',
};

const variantLabels: Record<string, string> = {
  c1: 'small responses (13 B), concurrency 1',
  c32: 'small responses (13 B), concurrency 32',
  'c32-64k': '64 KiB responses, concurrency 32',
  'c8-new': 'new connection per request, concurrency 8',
  'grpc-unary': 'gRPC unary calls, 32 in flight on one connection',
};

/** A column of a report table: its header and its cell for a row with figures. */
interface Column {
  header: string;
  cell: (r: Row, m: Record<string, number | undefined>) => Cell;
}

/**
 * The one table renderer: a row per result, a column per entry of the schema. A row without
 * figures (`measured` false) keeps its first `names` columns and shows its status and reason.
 */
function rowTable(columns: Column[], rows: Row[], names = 1, measured = (r: Row) => r.status === 'ok' && r.median !== undefined): string {
  const lines = rows.map((r): Cell[] =>
    measured(r) ? columns.map((c) => c.cell(r, r.median ?? {})) : [...columns.slice(0, names).map((c) => c.cell(r, {})), skipCell(r), ...columns.slice(names + 1).map(() => '')],
  );
  return table(columns.map((c) => c.header), lines);
}

const figure = (header: string, key = header): Column => ({ header, cell: (_r, m) => num(m[key]) });
const ratioTo = (header: string, key: string): Column => ({ header, cell: (r) => ratio(r.ratios?.[key]) });
const scenarioColumn: Column = { header: 'scenario', cell: (r) => labels[r.scenario] ?? r.scenario };
const hasFigures = (r: Row) => r.status !== 'skipped' && r.median !== undefined;

const httpColumns: Column[] = [
  scenarioColumn,
  { header: 'req/s', cell: (r, m) => num(m.rps) + (r.status === 'failed' ? ` (${skipCell(r)})` : '') },
  figure('p50 ms', 'p50Ms'),
  figure('p99 ms', 'p99Ms'),
  { header: 'CPU s per 10k req (serving + client)', cell: (_r, m) => `${num(m.cpuSecPer10k)} (${num(m.serverCpuSecPer10k)} + ${num(m.clientCpuSecPer10k)})` },
  ratioTo('req/s ÷ plaintext', 'rps/plaintext'),
  ratioTo('req/s ÷ bare Pool pair', 'rps/pool'),
  ratioTo('req/s ÷ Agent pair', 'rps/mtls'),
];

const newConnectionColumns: Column[] = [
  scenarioColumn,
  figure('connections/s', 'rps'),
  figure('p50 ms', 'p50Ms'),
  figure('p99 ms', 'p99Ms'),
  figure('CPU s per 10k conn', 'cpuSecPer10k'),
  { header: 'resumed', cell: (_r, m) => (m.resumedShare === undefined ? '–' : `${Math.round(m.resumedShare * 100)} %`) },
  ratioTo('÷ full handshakes (bare Pool)', 'rps/pool-full'),
  ratioTo('÷ full handshakes (Agent)', 'rps/mtls-full'),
];

/** Rows whose schema is their figures: scenario, variant, then every figure key in the order the rows have them. */
function genericTable(rows: Row[]): string {
  const keys = [...new Set(rows.flatMap((r) => Object.keys(r.median ?? {})))];
  const name = (header: 'scenario' | 'variant'): Column => ({ header, cell: (r) => r[header] });
  return rowTable([name('scenario'), name('variant'), ...(keys.length ? keys.map((k) => figure(k)) : [figure('result')])], rows, 2);
}

const ROTATION_TEXT =
  'Each swap is timed from just before the rename: until a meshless `createServer` (its `source` a `fileSource` on the volume) ' +
  'serves a new mTLS connection with the new certificate (the `rotation` row, which the rotation target reads), and until the ' +
  "file source's `update` event (`rotation-update`). A client in its own thread opens new connections one after another " +
  '(no session reuse) from the rename on, so the server keeps handshaking while it reloads. The `workload-api` rows time the ' +
  'same from the moment a SPIFFE Workload API server (grpc-js on a Unix socket) pushes a new SVID to a `workloadApiSource`.';

const get = (results: Results, group: Row['group'], scenario: string, variant?: string) => findRow(results.rows, group, scenario, variant);

/** The "what it means" section, written from this run's figures. */
function meaning(results: Results): string {
  const out: string[] = [];
  const c32 = (s: string) => get(results, 'http', s, 'c32');
  const c1 = (s: string) => get(results, 'http', s, 'c1');
  const inProcess = c32('meshless') ? 'meshless' : 'mtls';
  const who = inProcess === 'meshless' ? 'meshless' : 'in-process mTLS (the hand-written version; meshless was not measurable in this run)';
  const ip = c32(inProcess);
  const ip1 = c1(inProcess);
  const plain = c32('plaintext');
  for (const side of ['stunnel', 'nginx']) {
    const sc = c32(side);
    const sc1 = c1(side);
    if (ip?.median && sc?.median) {
      // Paired per-round ratios when the row has them (as in the targets), else ratios of medians.
      const rps = ip.ratios?.[`rps/${side}`] ?? (ip.median.rps ?? 0) / (sc.median.rps ?? 1);
      const cpu = ip.ratios?.[`cpu/${side}`] ?? (ip.median.cpuSecPer10k ?? 0) / (sc.median.cpuSecPer10k ?? 1);
      let s = `- Against a **${side} sidecar pair**, ${who} served **${rps.toFixed(2)}×** the requests/s at concurrency 32 for **${cpu.toFixed(2)}×** the CPU per request (p99 ${num(ip.median.p99Ms)} ms vs ${num(sc.median.p99Ms)} ms)`;
      if (ip1?.median && sc1?.median) s += `; one request at a time it answered in ${num(ip1.median.p50Ms)} ms vs ${num(sc1.median.p50Ms)} ms (p50)`;
      out.push(`${s}.`);
    }
  }
  const over = (x: Row | undefined) => (x?.median?.cpuSecPer10k !== undefined && plainCpu !== undefined ? x.median.cpuSecPer10k - plainCpu : undefined);
  const plainCpu = c32('plaintext')?.median?.cpuSecPer10k;
  const added = [
    [inProcess === 'meshless' ? 'meshless' : 'hand-written in-process mTLS', over(ip)],
    ['the nginx pair', over(c32('nginx'))],
    ['the stunnel pair', over(c32('stunnel'))],
  ].filter((a): a is [string, number] => a[1] !== undefined);
  if (added.length > 1) {
    out.push(
      `- What mTLS adds over plaintext, in CPU-seconds per 10,000 requests at concurrency 32 (server, proxies and client together): ${added.map(([w, v]) => `${w} +${num(v)}`).join(', ')}. ` +
        'The rest of each row is the same HTTP work in the application and the load generator.',
    );
  }
  const ms = c32('meshless-server');
  // The server alone: same hand-written client on both sides (bare Pool; the Agent in older results).
  const sameClient = ms?.ratios?.['rps/pool'] !== undefined ? 'pool' : 'mtls';
  if (ms?.ratios?.[`rps/${sameClient}`] !== undefined) {
    out.push(`- The meshless **server** alone (same hand-written undici client) served ${ratio(ms.ratios[`rps/${sameClient}`])} the requests/s of the hand-written \`node:https\` server at concurrency 32, at ${ratio(ms.ratios[`cpu/${sameClient}`])} its CPU per request.`);
  }
  const mp = c32('meshless');
  if (mp?.ratios?.['rps/pool'] !== undefined) {
    out.push(`- Against the **leanest hand-written pair** (\`node:https\` ← a bare undici \`Pool\` with \`connect\` options), meshless served ${ratio(mp.ratios['rps/pool'])} its requests/s at concurrency 32 for ${ratio(mp.ratios['cpu/pool'])} its CPU per request.`);
  }
  if (ip?.median && plain?.median) {
    out.push(`- TLS itself, on kept-alive connections, costs ${who} ${((1 - (ip.median.rps ?? 0) / (plain.median.rps ?? 1)) * 100).toFixed(0)} % of plaintext requests/s at concurrency 32 here.`);
  }
  const nc = get(results, 'new-connections', 'meshless');
  const fullId = get(results, 'new-connections', 'pool-full') ? 'pool-full' : 'mtls-full';
  const ncFull = get(results, 'new-connections', fullId);
  if (nc?.median && ncFull?.median) {
    out.push(`- With a new connection per request, meshless made ${num(nc.median.rps)} connections/s vs ${num(ncFull.median.rps)}/s for full handshakes with undici \`connect\` options (${ratio(nc.ratios?.[`rps/${fullId}`])}).`);
  } else if (ncFull?.median) {
    out.push(`- A full mTLS handshake per request limits a client to about ${num(ncFull.median.rps)} connections/s on this machine: keep connections alive (both meshless and sidecars do).`);
  }
  const prof = (scenario: string, variant: string) => get(results, 'profile', scenario, variant)?.median;
  const ps = prof('meshless server', 'c32');
  const pc = prof('meshless client', 'c32');
  if (ps && pc) {
    const psn = prof('meshless server', 'c8-new');
    out.push(
      `- Where the time goes (in-process profiles, keep-alive c32): of the meshless server's ${num(ps.usPerRequest)} µs of CPU per request, meshless's own code caused ${num(ps['us.meshless'] ?? 0)} µs; ` +
        `of the client's ${num(pc.usPerRequest)} µs, meshless ${num(pc['us.meshless'] ?? 0)} µs and undici ${num(pc['us.undici'] ?? 0)} µs. The rest is TLS records, HTTP and the application.` +
        (psn ? ` With a new connection per request, meshless caused ${num(psn['us.meshless'] ?? 0)} µs of the server's ${num(psn.usPerRequest)} µs per connection: reading and checking the client certificate, tracking the connection (see the per-function list below); Node's own HTTP connection set-up, which runs inside meshless's request gate (a wrapper of the server's emit), is counted as Node's.` : ''),
    );
  }
  if (out.length === 0) out.push('- The comparison rows did not run in this run; see the skipped rows below.');
  const rotation = get(results, 'rotation', 'rotation');
  if (rotation?.median && rotation.variant.includes(ROTATION_SERVED)) {
    out.push(`- After a kubelet-style certificate swap, new connections were served with the new certificate ${num(rotation.median.p50Ms)} ms after the rename (p50; p99 ${num(rotation.median.p99Ms)} ms), without a restart.`);
  }
  return [
    '## What it means when choosing between meshless and a sidecar',
    '',
    ...out,
    '',
    'A sidecar pair adds two proxies to every request: each request is copied through user space four more times and',
    'crosses two extra TLS-terminating processes, which is where the extra CPU and latency above come from. In-process',
    'mTLS does the same cryptography once per connection and nothing more per request, and the application sees the',
    "caller's verified identity directly (meshless: `peerOf(req)`, an O(1) lookup) instead of trusting a header a proxy set.",
    '',
    'Choose **meshless** when your services are Node.js, you want the identity in the application (per-route',
    'authorization, audit logs), and you want no extra containers, no extra hop and less CPU per request. Choose a',
    '**sidecar or mesh** when services are written in many languages and must share one policy point, when the platform',
    'team must own TLS without touching application code, or when you need mesh features beyond mTLS (traffic',
    'shifting, retries, telemetry for every protocol). Both rotate certificates without restarts; with meshless the',
    'rotation happens in the process, and its cost shows in the rotation and memory rows.',
  ].join('\n');
}

function otherLoadSamples(results: Results): number[] {
  return results.rows.flatMap((r) => (r.rounds ?? []).map((x) => x.otherCoresBusy as number | undefined)).filter((x): x is number => typeof x === 'number');
}

/** How busy the machine was with other work during the measured windows. */
function otherLoad(results: Results): string {
  const samples = otherLoadSamples(results);
  const med = median(samples);
  if (med === undefined) return 'not measured';
  const max = Math.max(...samples);
  const verdict = med < 0.2 ? 'a quiet machine' : med < 0.6 ? 'some noise: compare ratios, not absolute figures' : 'a busy machine: figures are noisy, compare ratios and rerun on a quiet machine';
  return `other processes kept a median of ${med.toFixed(2)} (max ${max.toFixed(2)}) of ${results.machine.nproc} cores busy during the measured windows: ${verdict}`;
}

const AREAS = ['meshless', 'undici', 'grpc-js', 'bench harness', 'node http', 'node tls/net/streams', 'gc', 'native (program)', 'other'];
const AREA_LABELS: Record<string, string> = { 'bench harness': 'application (bench handler / load loop)' };

/** Where the CPU goes per request, from the in-process profiles of one window per pair and shape. */
function profileSection(results: Results): string[] {
  const rows = results.rows.filter((r) => r.group === 'profile');
  if (rows.length === 0) return [];
  const out = [
    '## Profile summary: where the CPU goes per request',
    '',
    'V8 CPU profiles taken inside the server and the client around one measured window (after warm-up), ' +
      'the meshless pair against the leanest hand-written pair (node:https ← bare undici Pool), and meshless gRPC ' +
      'credentials against grpc-js createSsl. Each process\'s own CPU ' +
      'time per request (process.cpuUsage over the window) is split in the proportions of its samples by the code that ' +
      'caused them: meshless, undici, grpc-js and the bench harness (the application) each own what they call (node internals, ' +
      'native work such as certificate parsing and socket writes: the server application\'s `res.end` owns the TLS ' +
      'write of the response); node-internal work with no such caller (TLS handshakes, the HTTP parser, timers) counts ' +
      'as node\'s. Profiling (1 ms sampling) costs a little CPU itself. In-process profiles say where time goes; the ' +
      'keep-alive and new-connection tables say how fast it is.',
    '',
  ];
  for (const variant of [...new Set(rows.map((r) => r.variant))]) {
    const mine = rows.filter((r) => r.variant === variant);
    out.push(`### ${variantLabels[variant] ?? variant}`, '');
    const process: Column = { header: 'process', cell: (r) => r.scenario };
    out.push(rowTable([process, figure('CPU µs per request', 'usPerRequest'), ...AREAS.map((a) => figure(AREA_LABELS[a] ?? a, `us.${a}`))], mine), '');
    for (const r of mine.filter((x) => x.status === 'ok')) {
      const top = ((r.details as { top?: { fn: string; usPerRequest: number }[] } | undefined)?.top ?? []).slice(0, 6);
      if (top.length) out.push(`- **${r.scenario}**, top self time (µs per request): ${top.map((t) => `\`${t.fn}\` ${num(t.usPerRequest)}`).join(' · ')}`);
      const inMeshless = ((r.details as { meshlessTop?: { fn: string; usPerRequest: number }[] } | undefined)?.meshlessTop ?? []).slice(0, 6);
      if (inMeshless.length) out.push(`  - meshless's share by its own function nearest the work (µs per request): ${inMeshless.map((t) => `\`${t.fn}\` ${num(t.usPerRequest)}`).join(' · ')}`);
    }
    out.push('');
  }
  return out;
}

const SCALE_TEXT =
  'How cost grows with the work (bench/scenarios/scale.ts). **Idle**: N keep-alive mTLS connections held open to one ' +
  'server (each sent one request; resumed sessions, as a fleet of clients would), server RSS and heap after GC per ' +
  'connection, time and server CPU to accept them. **Rotation**: with those connections still open to the meshless ' +
  'server, rotations of its own certificate (every other one also a trust-bundle change under which every peer still ' +
  'verifies, so the server re-checks each live connection) while requests run on 32 of them: the server\'s synchronous ' +
  'swap, update → first new connection served with the new certificate, event-loop stall, failed requests, connections ' +
  'closed. **Origins**: one client, one request to each of M servers on 127.1.x.y (every connection kept open), memory ' +
  'per live origin, then after the servers closed every connection and the pools went (twice: the bounds hold when ' +
  'nothing more stays behind the second time).';

/** What the scale rows say, computed from their figures. */
function scaleNotes(rows: Row[]): string[] {
  const out: string[] = [];
  const m = rows.find((r) => r.scenario === 'idle meshless createServer' && r.median)?.median;
  const h = rows.find((r) => r.scenario === 'idle hand-written node:https' && r.median)?.median;
  if (m && h && m.rssPerConnectionKB !== undefined && h.rssPerConnectionKB !== undefined && m.heapPerConnectionKB !== undefined && h.heapPerConnectionKB !== undefined) {
    const heap = m.heapPerConnectionKB - h.heapPerConnectionKB;
    const native = m.rssPerConnectionKB - m.heapPerConnectionKB - (h.rssPerConnectionKB - h.heapPerConnectionKB);
    out.push(
      `- Per idle connection the meshless server keeps ${num(m.rssPerConnectionKB - h.rssPerConnectionKB)} KB more than node:https: ${num(heap)} KB of JavaScript heap and ${num(native)} KB outside it ` +
        '(native: OpenSSL objects such as the client certificate kept per connection as an X509Certificate for re-verification).',
    );
  }
  const rot = rows.find((r) => r.scenario === 'rotation with live connections' && r.median);
  const swaps = (rot?.details as { swaps?: number[] } | undefined)?.swaps;
  if (swaps && swaps.length > 1) {
    const trust = swaps.filter((_, i) => i % 2 === 0);
    const own = swaps.filter((_, i) => i % 2 === 1);
    out.push(
      `- The server's synchronous swap: own-certificate rotations median ${num(median(own))} ms (max ${num(Math.max(...own))}); trust-bundle changes median ${num(median(trust))} ms (max ${num(Math.max(...trust))}).`,
    );
    const r = rot!.median!;
    if (r.reviewMaxSliceMs !== undefined) {
      out.push(
        `- After a trust-bundle change the server re-checks all ${num(r.liveConnections)} live connections in slices across event-loop turns: longest slice ${num(r.reviewMaxSliceMs)} ms of wall clock (${num(r.reviewMaxSliceCpuMs)} ms of CPU), ${num(r.reviewBusyMaxMs)} ms of slices in all, every connection checked within ${num(r.reviewDurationMaxMs)} ms (worst of the run).`,
      );
    }
  }
  return out.length ? [...out, ''] : [];
}

/** The scale rows: from this run, or from the separate `--only scale` run when this one skipped them. */
function scaleSection(results: Results, scaleRun?: Results): string[] {
  const own = results.rows.filter((r) => r.group === 'scale');
  const measured = own.filter((r) => r.status === 'ok' || r.median);
  const fromRun = measured.length === 0 && scaleRun?.rows.some((r) => r.group === 'scale' && r.median) ? scaleRun : undefined;
  const rows = fromRun ? fromRun.rows.filter((r) => r.group === 'scale') : own;
  if (rows.length === 0) return [];
  return [
    '## Scale: idle connections, rotation under them, many origins',
    '',
    ...(fromRun
      ? [
          `From \`${fromRun.command}\` (${fromRun.date}, ${Math.round(fromRun.durationSeconds)} s, load average at start ${fromRun.machine.loadAverageAtStart.join(' / ')} on ${fromRun.machine.nproc} CPUs), run on its own: the complete run has no time left for it.`,
          '',
        ]
      : []),
    SCALE_TEXT,
    '',
    // One table per kind of row (idle, rotation, origins): each has its own figures.
    ...['idle', 'rotation', 'origins'].flatMap((kind) => {
      const mine = rows.filter((r) => r.scenario.startsWith(kind));
      return mine.length ? [genericTable(mine), ''] : [];
    }),
    ...scaleNotes(rows),
    ...(fromRun
      ? [
          'Targets of that run:',
          '',
          ...fromRun.targets.filter((t) => /idle connection|live connections/.test(t.target)).map((t) => `- ${t.target}: ${t.value === undefined ? (t.note ?? '–') : `${num(t.value)}${t.note ? ` (${t.note})` : ''}`} — ${t.met === undefined ? 'n/a' : t.met ? 'met' : '**missed**'}`),
          '',
        ]
      : []),
  ];
}

/** The same-process comparison (bench/scenarios/same-process.ts): meshless's own cost without two processes' placement. */
function sameProcessSection(results: Results): string[] {
  const rows = results.rows.filter((r) => r.group === 'same-process');
  if (rows.length === 0) return [];
  const range = (r: Row, k: string) => {
    const x = r.ratioRanges?.[k];
    return x ? ` (${num(x[0])}–${num(x[1])})` : '';
  };
  const lines = rows.map((r): Cell[] => {
    const d = r.details as { label?: string; side?: string; windowMs?: number } | undefined;
    if (r.status !== 'ok' || !r.median) return [r.scenario, r.variant, skipCell(r), '', '', ''];
    const m = r.median;
    return [
      d?.label ?? r.scenario,
      r.variant,
      `${num(m.meshlessRps)} vs ${num(m.baseRps)}`,
      `${num(r.ratios?.rps)}${range(r, 'rps')}`,
      `${d?.side ?? ''}: ${num(m.meshlessCpuUs)} vs ${num(m.baseCpuUs)}`,
      `${num(r.ratios?.cpu)}${range(r, 'cpu')}`,
    ];
  });
  const w = rows.find((r) => r.median)?.median?.windows;
  return [
    '## Same process: meshless beside the hand-written code (bench/scenarios/same-process.ts)',
    '',
    'The pair rows above run every scenario in its own server and load-generator processes, and two processes of the same',
    'code can land a few per cent apart (where the scheduler puts them, how their code was optimised): at concurrency 1 that',
    'is more than anything meshless adds per request. Here the two things compared share one process (two clients in one load',
    `generator, or two servers on two ports of one server process), and their windows alternate, A B then B A (${w ?? '–'} pairs of windows).`,
    'Ratios are meshless ÷ hand-written, the median of the per-pair ratios, with their range.',
    '',
    table(['compared', 'load', 'req/s (meshless vs hand-written)', 'req/s ratio (range)', 'CPU µs per request (side: meshless vs hand-written)', 'CPU ratio (range)'], lines),
    '',
  ];
}

/** The markdown report (docs/benchmarks.md), with the full-count memory run when there is one. */
export function renderMarkdown(results: Results, memoryRun?: Results, scaleRun?: Results): string {
  const m = results.machine;
  const s = results.settings;
  const parts: string[] = [
    '# Benchmarks',
    '',
    '<!-- Generated by `npm run bench` (bench/run.mjs → bench/main.ts); edit bench/lib/report.ts, not this file. -->',
    '',
    `- **Command:** \`${results.command}\` (${results.mode} mode; ${String(s.rounds)} interleaved round(s), ${String(s.warmupMs)} ms warm-up (round 1: 1 s more, for freshly started processes) + ${String(s.measureMs)} ms measured per scenario, variant and round; took ${Math.round(results.durationSeconds)} s)`,
    `- **Date:** ${results.date}`,
    `- **Machine:** ${m.nproc} CPUs (\`nproc\`), ${m.cpuModel}, ${m.os}, load average at start ${m.loadAverageAtStart.join(' / ')}`,
    `- **Software:** Node ${m.node}, OpenSSL ${m.tools.openssl}, undici ${m.tools.undici ?? '?'}, @grpc/grpc-js ${m.tools['@grpc/grpc-js'] ?? '?'}, ${m.tools.stunnel ?? 'stunnel: not installed'}, ${m.tools.nginx ?? 'nginx: not installed'}`,
    `- **Other load:** ${otherLoad(results)}`,
    '- **Raw results:** `bench/results/latest.json` (every round of every row).',
    ...(results.notes.length ? ['', ...results.notes.map((n) => `> ${n}`)] : []),
    '',
    meaning(results),
    '',
    '## HTTP/1.1 keep-alive',
    '',
    'Each scenario is a server process and a separate load-generator process (undici) on 127.0.0.1; every row is the',
    'median over the rounds, and ratios are medians of per-round ratios (rounds run A B C …, then B C … A, the order rotating each round). CPU is the',
    'serving side (server and sidecars, from /proc) plus the load generator (`process.cpuUsage`), per 10,000 requests.',
    '',
  ];
  const http = results.rows.filter((r) => r.group === 'http');
  for (const v of [...new Set(http.map((r) => r.variant))]) {
    parts.push(`### ${variantLabels[v] ?? v}`, '', rowTable(httpColumns, http.filter((r) => r.variant === v), 1, hasFigures), '');
  }
  const nc = results.rows.filter((r) => r.group === 'new-connections');
  if (nc.length) parts.push('## New connection per request', '', `${variantLabels['c8-new']}: undici \`reset: true\`, the server sees one TLS handshake per request.`, '', rowTable(newConnectionColumns, nc, 1, hasFigures), '');
  const pr = results.rows.filter((r) => r.group === 'per-request');
  if (pr.length) {
    parts.push('## Per request: identity and allow-list decision', '');
    const operation: Column = { header: 'operation', cell: (r) => (r.status === 'ok' ? String((r.details as { label?: string } | undefined)?.label ?? r.scenario) : r.scenario) };
    parts.push(rowTable([operation, figure('ns/op (median)', 'nsPerOp')], pr), '');
  }
  for (const [group, title] of [
    ['memory', 'Memory (heap after forced GC)'],
    ['rotation', 'Rotation: kubelet-style `..data` swaps (bench/scenarios/rotation.ts says exactly what it times)'],
    ['grpc', 'gRPC, unary, 32 in flight (bench/scenarios/grpc.ts)'],
    ['http-client', 'meshless HTTP client (bench/scenarios/http-client.ts)'],
    ['footprint', 'Footprint: import cost and an idle server (fresh plain Node processes, built packages; medians of interleaved samples)'],
  ] as const) {
    const rows = results.rows.filter((r) => r.group === group);
    if (rows.length) parts.push(`## ${title}`, '', ...(rows.some((r) => r.variant.includes(ROTATION_SERVED)) ? [ROTATION_TEXT, ''] : []), genericTable(rows), '');
    if (group === 'memory') {
      const grown = rows.filter((r) => (r.median?.rssGrowthMB ?? 0) > 20 && (r.median?.rssGrowthMB ?? 0) > 5 * Math.abs(r.median?.heapGrowthMB ?? 0));
      if (grown.length) {
        parts.push(
          `RSS grew much more than the heap (${grown.map((r) => `${r.scenario}: RSS +${num(r.median!.rssGrowthMB)} MB, heap +${num(r.median!.heapGrowthMB)} MB`).join('; ')}): ` +
            'native memory (OpenSSL contexts, sessions, sockets) or allocator fragmentation. To tell requests from rotations: ' +
            '`npm run bench -- --only memory --memory-requests 200000 --memory-rotations 1`, then `--memory-rotations 2000`.',
          '',
        );
      }
    }
  }
  parts.push(...profileSection(results));
  parts.push(...sameProcessSection(results));
  parts.push(...scaleSection(results, scaleRun));
  const fullMemory = memoryRun?.rows.filter((r) => r.group === 'memory');
  const capped = results.rows.some((r) => r.group === 'memory' && (r.details as { capped?: boolean } | undefined)?.capped);
  if (capped && fullMemory?.length) {
    parts.push(
      `### Memory, full count: \`${memoryRun!.command}\` (${memoryRun!.date}, ${Math.round(memoryRun!.durationSeconds)} s)`,
      '',
      'The complete run above caps its memory part in time to stay under 10 minutes; this separate run gets up to 8 minutes.',
      '',
      genericTable(fullMemory),
      '',
    );
  }
  parts.push(
    '## Targets (issues 9 and 18)',
    '',
    table(
      ['target', 'this run (median; spread of the per-round ratios)', 'met'],
      results.targets.map((own) => {
        // The scale rows run apart (`--only scale`): their targets come from that run when this one skipped them.
        const scale = own.met === undefined ? scaleRun?.targets.find((s) => s.target === own.target && s.met !== undefined) : undefined;
        const t = scale ?? own;
        const from = scale ? `; \`--only scale\` run of ${scaleRun!.date}` : '';
        return [t.target, t.value === undefined ? (t.note ?? '–') : `${num(t.value)}${t.note || from ? ` (${[t.note, from.slice(2)].filter(Boolean).join('; ')})` : ''}`, t.met === undefined ? 'n/a' : t.met ? 'yes' : '**no**'];
      }),
    ),
    '',
  );
  const misses = explainMisses(results);
  const busy = median(otherLoadSamples(results)) ?? 0;
  if (misses.length) {
    parts.push(
      '### Why targets were missed in this run',
      '',
      ...(busy >= 0.6 ? [`Other processes kept ${busy.toFixed(1)} cores busy (median) while this ran: ratios near a target can fall either side on a rerun.`, ''] : []),
      ...misses,
      '',
    );
  }
  const notOk = results.rows.filter((r) => r.status !== 'ok' || r.reason);
  if (notOk.length) {
    parts.push('## Skipped, failed or incomplete rows', '', ...notOk.map((r) => `- ${r.group} / ${r.scenario} / ${r.variant}: ${r.status}: ${r.reason ?? ''}`), '');
  }
  parts.push(
    '## Method',
    '',
    '- Certificates: one test CA (EC P-256), the same server and client certificates for every scenario; TLS 1.3 everywhere.',
    '- Servers answer `GET /` with 13 bytes and `GET /64k` with 64 KiB. The hand-written server does no per-request work',
    '  beyond TLS; the meshless server reads `peerOf(req)` on every request, as an application would.',
    '- Sidecars: stunnel (client mode with `checkHost`, server with `verifyChain` + `requireCert`, TCP_NODELAY) and nginx',
    '  (1 worker each, `ssl_verify_client on`, upstream keep-alive, `keepalive_requests` raised to 1,000,000).',
    '- Each window starts with a fresh client pool and a warm-up; the load generator runs N concurrent request loops.',
    '- The machine is shared: compare rows of one run (the ratios), not absolute figures across runs.',
    '',
    '## Running it',
    '',
    '- `npm run bench`: everything, under 10 minutes on 2 cores; writes `bench/results/latest.json` and this page.',
    '- `npm run bench -- --quick`: a ~1-minute smoke run (writes `bench/results/quick.json`, leaves this page alone);',
    '  `test/bench/` runs it with even shorter windows in `npm test` and checks that every row has figures or a reason.',
    '- `--only http,new-connections,per-request,memory,rotation,grpc,same-process,http-client,…`, `--rounds N`, `--measure-ms N`,',
    '  `--warmup-ms N`, `--scenarios mtls,meshless,…`; partial runs write `bench/results/partial.json` and leave this page alone.',
    '- `--only memory` (`--memory-requests N`, `--memory-rotations N`) gets up to 8 minutes; it writes `bench/results/memory.json`,',
    '  which this page shows when the complete run had to cap its memory part. `--render` rebuilds this page from the JSON.',
    '- `--cpu-prof`: a V8 CPU profile of every server and load generator in `bench/results/profiles/` (by pid).',
    '- The per-request microbench alone: `node --conditions=source --import tsx bench/scenarios/per-request.ts`.',
    '',
  );
  return parts.join('\n');
}
