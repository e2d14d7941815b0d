import { findRow, type Results, type Row, type TargetCheck } from './results.js';

const row = (results: Results, group: Row['group'], scenario: string, variant?: string) => findRow(results.rows, group, scenario, variant);
const n = (v: number | undefined, d = 3) => (v === undefined || !Number.isFinite(v) ? '–' : Number(v.toPrecision(d)).toString());

/** Where the CPU of a keep-alive row goes: serving side (server, sidecars) and client. */
function cpuSplit(r: Row | undefined): string {
  const m = r?.median;
  return m ? `${n(m.cpuSecPer10k)} CPU s/10k = ${n(m.serverCpuSecPer10k)} serving + ${n(m.clientCpuSecPer10k)} client` : 'not measured';
}

type Explainer = (results: Results, missed: TargetCheck[]) => string | undefined;

/** What the gRPC profile rows say meshless's own code costs per call, when they ran. */
function profiled(results: Results): string {
  const side = (s: string) => row(results, 'profile', `grpc meshless ${s}`, 'grpc-unary')?.median;
  const server = side('server');
  const client = side('client');
  if (server === undefined || client === undefined) return '';
  return `In the profile of one window, meshless's own code took ${n(server['us.meshless'] ?? 0)} µs of the server's ${n(server.usPerRequest)} µs per call and ${n(client['us.meshless'] ?? 0)} µs of the client's ${n(client.usPerRequest)} µs. `;
}

/** What the same-process rows say (bench/scenarios/same-process.ts), for `scenarios` of that group; '' when they did not run. */
function sameProcess(results: Results, scenarios: string[]): string {
  const parts = scenarios
    .map((s) => {
      const r = results.rows.find((x) => x.group === 'same-process' && x.scenario === s && x.status === 'ok' && x.ratios);
      if (!r) return undefined;
      const side = (r.details as { side?: string } | undefined)?.side ?? '';
      const rr = r.ratioRanges ?? {};
      return `${s} ${n(r.ratios!.rps)}× req/s (${rr.rps ? `${n(rr.rps[0])}–${n(rr.rps[1])}` : '–'}), ${side} CPU per request ${n(r.ratios!.cpu)}× (${rr.cpu ? `${n(rr.cpu[0])}–${n(rr.cpu[1])}` : '–'})`;
    })
    .filter(Boolean);
  return parts.length
    ? `Side by side in one process, where placement and optimisation are shared (same-process rows, meshless ÷ hand-written, median of alternating windows): ${parts.join('; ')}. `
    : '';
}

const variantOf = (t: TargetCheck) => /HTTP (c\w+(?:-64k)?):/.exec(t.target)?.[1];

/** Explanations by kind of target; each gets every missed target of its kind at once. */
const explainers: [RegExp, Explainer][] = [
  [
    /(stunnel|nginx) pair/,
    (results, missed) => {
      const variants = [...new Set(missed.map(variantOf))].filter((v): v is string => v !== undefined);
      const splits = variants.map((v) => {
        const part = (s: string) => `${s} ${cpuSplit(row(results, 'http', s, v))}`;
        return `${v}: ${['meshless', 'mtls', 'stunnel', 'nginx'].map(part).join('; ')}`;
      });
      const plain = (v: string) => row(results, 'http', 'plaintext', v)?.median?.cpuSecPer10k;
      const added = variants
        .map((v) => {
          const p = plain(v);
          const over = (s: string) => {
            const c = row(results, 'http', s, v)?.median?.cpuSecPer10k;
            return c !== undefined && p !== undefined ? `${s} +${n(c - p)}` : undefined;
          };
          const parts = ['meshless', 'nginx', 'stunnel'].map(over).filter(Boolean);
          return parts.length > 1 ? `${v}: ${parts.join(', ')}` : undefined;
        })
        .filter(Boolean);
      return (
        `Where the CPU goes (serving = server plus both proxies; client = the load generator): ${splits.join(' — ')}. ` +
        (added.length
          ? `The CPU targets compare whole rows, which share the plaintext HTTP work of the application and the load generator; counting only what mTLS adds over plaintext (CPU s/10k): ${added.join(' — ')}. `
          : '') +
        'In the sidecar rows the load generator speaks plain HTTP to a local proxy, so their client side costs less than a TLS client, ' +
        'and the proxies are C programs on long-lived upstream connections. Every keep-alive row is bound by the undici client on these 2 cores, ' +
        'which narrows the gap. Meshless against hand-written mTLS is the figure that measures meshless itself.'
      );
    },
  ],
  [
    /≥ 0\.92× plaintext/,
    (results, missed) => {
      const parts = missed
        .map(variantOf)
        .map((v) => [v, row(results, 'http', 'mtls', v)?.ratios?.['rps/plaintext']] as const)
        .filter(([, r]) => r !== undefined)
        .map(([v, r]) => `${v} ${r!.toFixed(2)}×`);
      return parts.length
        ? `Hand-written mTLS reached ${parts.join(', ')} plaintext in the same rounds: the gap is TLS itself (record encryption and framing on both sides), not meshless's per-request work.`
        : undefined;
    },
  ],
  [
    /0\.97× hand-written mTLS/,
    (results, missed) => {
      const parts = missed
        .map(variantOf)
        .map((v) => [v, row(results, 'http', 'meshless-server', v)?.ratios?.['rps/pool'] ?? row(results, 'http', 'meshless-server', v)?.ratios?.['rps/mtls']] as const)
        .filter(([, r]) => r !== undefined)
        .map(([v, r]) => `${v} ${r!.toFixed(2)}×`);
      const spreads = missed
        .map((t) => {
          const v = variantOf(t);
          const r = row(results, 'http', 'meshless', v)?.ratioRanges?.['rps/mtls'];
          return r && r[0] < 0.97 && r[1] > 0.97 ? `${v}: per-round ratios ${n(r[0])}–${n(r[1])}` : undefined;
        })
        .filter(Boolean);
      return (
        (spreads.length ? `The rounds disagree more than the gap (${spreads.join('; ')}): rerun before reading it as a regression. ` : '') +
        (parts.length ? `The meshless server alone, behind the same hand-written client, reached ${parts.join(', ')} hand-written mTLS. ` : '') +
        'Profile with `npm run bench -- --only http --scenarios mtls,meshless --cpu-prof` and `node bench/profile-summary.mjs bench/results/profiles`.'
      );
    },
  ],
  [
    /bare Pool pair/,
    (results, missed) => {
      const variants = [...new Set(missed.map(variantOf))].filter((v): v is string => v !== undefined);
      const parts = variants.map((v) => {
        const server = row(results, 'http', 'meshless-server', v)?.ratios?.['rps/pool'];
        const range = row(results, 'http', 'meshless', v)?.ratioRanges?.['rps/pool'];
        return (
          `${v}: meshless ${cpuSplit(row(results, 'http', 'meshless', v))}; bare Pool pair ${cpuSplit(row(results, 'http', 'pool', v))}` +
          (server === undefined ? '' : `; the meshless server alone behind the same bare Pool: ${n(server)}× its req/s`) +
          (range ? `; per-round req/s ratios ${n(range[0])}–${n(range[1])}` : '')
        );
      });
      // The same bare-Pool client runs in two processes (the pool row and the meshless-server row):
      // how far apart they land is how much two processes of the same code differ in this run.
      const twins = variants
        .map((v) => {
          const a = row(results, 'http', 'pool', v)?.median?.clientCpuSecPer10k;
          const b = row(results, 'http', 'meshless-server', v)?.median?.clientCpuSecPer10k;
          return a !== undefined && b !== undefined && a > 0 ? `${v} ${n(a)} vs ${n(b)} CPU s/10k (${b >= a ? '+' : ''}${n(((b - a) / a) * 100, 2)} %)` : undefined;
        })
        .filter(Boolean);
      const own = row(results, 'profile', 'meshless server', 'c32')?.median;
      const ownClient = row(results, 'profile', 'meshless client', 'c32')?.median;
      return (
        `${parts.join(' — ')}. Compare the client shares (meshless createAgent vs the bare Pool) and the serving shares (meshless createServer vs node:https) ` +
        'to see which side the gap is on; per-round ratios that straddle 1.0 mean the machine moved more than the gap. ' +
        (twins.length ? `The same hand-written bare-Pool client, in two processes (the bare Pool row and the meshless-server row): ${twins.join('; ')} — the spread between two processes running the same code. ` : '') +
        (own && ownClient ? `meshless's own code per request (profile, c32): ${n(own['us.meshless'] ?? 0)} µs of the server's ${n(own.usPerRequest)} µs and ${n(ownClient['us.meshless'] ?? 0)} µs of the client's ${n(ownClient.usPerRequest)} µs. ` : '') +
        (variants.includes('c1') ? sameProcess(results, ['http client', 'http server']) : '') +
        'Profile: `npm run bench -- --only http --scenarios pool,meshless --cpu-prof`, then `node bench/profile-summary.mjs bench/results/profiles`.'
      );
    },
  ],
  [
    /new connections/,
    (results) => {
      const share = row(results, 'new-connections', 'meshless')?.median?.resumedShare;
      return (
        `${share === undefined ? '' : `${Math.round(share * 100)} % of meshless's connections resumed a session. `}` +
        'A resumed TLS 1.3 handshake in OpenSSL still runs an ECDHE key exchange (psk_dhe_ke) and a TCP handshake: it saves only the ' +
        'certificate signatures and chain verification on both sides (meshless also skips the SecureContext undici builds per connection), which bounds the gain.'
      );
    },
  ],
  [
    /per-request decision/,
    () =>
      "The decision is dominated by the Decision object's `reason` string, built on every call (String(peer) and the JSON-quoted rule); " +
      'the rule lookup itself is a Map hit. Building the reason lazily, or caching the Decision per peer, would make it tens of ns (core: allow-list.ts).',
  ],
  [/within 2× of 10 rules/, () => 'Both figures are a few hundred ns (the reason string dominates both); at that scale a busy neighbour moves the ratio. Run the microbench alone to confirm.'],
  [
    /gRPC/,
    (results) => {
      const mesh = row(results, 'grpc', 'meshless');
      const ssl = row(results, 'grpc', 'createSsl');
      const insecure = row(results, 'grpc', 'insecure');
      const range = mesh?.ratioRanges?.['rps/createSsl'];
      const per = (r: Row | undefined) => (r?.median ? `${n(r.median.serverCpuUsPerCall)} µs server + ${n(r.median.clientCpuUsPerCall)} µs client` : 'not measured');
      return (
        (range ? `Per-round ratios ${n(range[0])}–${n(range[1])}${range[0] < 1 && range[1] >= 1 ? ' straddle 1.0: the machine moved more than the gap' : ''}. ` : '') +
        `CPU per call: meshless ${per(mesh)}; createSsl ${per(ssl)}. ` +
        (insecure?.ratios?.['rps/createSsl'] !== undefined ? `Even plaintext (insecure) reached only ${n(insecure.ratios['rps/createSsl'])}× createSsl: grpc-js's own work per call dominates every row. ` : '') +
        profiled(results) +
        sameProcess(results, ['grpc client', 'grpc server']) +
        "meshless adds no per-call step on the client (grpc-js's certificate-provider credentials) and one cached verdict lookup per call on the server; " +
        'measured in interleaved rounds of their own (bench/scenarios/grpc.ts). Profile: `npm run bench -- --only grpc --rounds 1 --cpu-prof`, then `node bench/profile-summary.mjs bench/results/profiles`.'
      );
    },
  ],
  [
    /permissive/,
    (results, missed) => {
      const parts = [...new Set(missed.map((t) => /HTTP (c\w+(?:-64k)?):/.exec(t.target)?.[1]))]
        .filter((v): v is string => v !== undefined)
        .map((v) => {
          const r = row(results, 'http', 'meshless-permissive', v);
          const range = r?.ratioRanges?.['rps/meshless'];
          const mtls = r?.ratios?.['rps/mtls'];
          return `${v}: per-round ratios ${range ? `${n(range[0])}–${n(range[1])}` : '–'}, permissive ÷ hand-written mTLS ${n(mtls)}×, serving CPU ${n(r?.median?.serverCpuSecPer10k)} vs strict ${n(row(results, 'http', 'meshless', v)?.median?.serverCpuSecPer10k)} s/10k`;
        });
      return (
        `${parts.join('; ')}. Permissive mode adds one first-byte read per new connection and nothing per request on a TLS connection; ` +
        'each scenario keeps its own server process for the whole run, so a steady gap of a few per cent between two processes of the same code can come from the processes themselves.'
      );
    },
  ],
  [/rotation/, () => 'Measured by bench/scenarios/rotation.ts; every sample is in bench/results/latest.json.'],
  [/heap growth/, () => 'Heap after forced GCs: growth that keeps rising with more requests or rotations is a leak; growth that levels off is a cache filling.'],
];

/** Notes on missed targets, from this run's figures (markdown list items, one per kind). */
export function explainMisses(results: Results): string[] {
  const missed = results.targets.filter((t) => t.met === false);
  const out: string[] = [];
  const done = new Set<TargetCheck>();
  for (const [re, explain] of explainers) {
    const mine = missed.filter((t) => !done.has(t) && re.test(t.target));
    if (mine.length === 0) continue;
    mine.forEach((t) => done.add(t));
    const list = mine.map((t) => `${t.target} (${n(t.value)})`).join('; ');
    out.push(`- **${list}.** ${explain(results, mine) ?? ''}`.trim());
  }
  for (const t of missed.filter((x) => !done.has(x))) out.push(`- **${t.target} (${n(t.value)}).**`);
  return out;
}
