import type { MeshlessErrorCode } from '@meshless/core';
import type { FetchedSvids } from '@meshless/workload-api';
import { formatDuration } from '../io.js';
import { summarize, type CertificateSummary } from './report.js';

/** What `meshless inspect --workload-api` found: every SVID the agent hands us, and the bundles. */
export interface WorkloadApiReport {
  address: string;
  svids: Array<{
    index: number;
    spiffeId: string;
    hint: string;
    /** True for the SVID a default `workloadApiSource()` serves (`svids[0]`). */
    default: boolean;
    chain: CertificateSummary[];
    ok: boolean;
    error?: { code: MeshlessErrorCode; message: string };
  }>;
  /** Trust domain → its roots (our own from the default SVID, then federated ones). */
  bundles: Array<{ trustDomain: string; federated: boolean; roots: CertificateSummary[]; error?: string }>;
  crls: number;
  /** The default SVID validates: a service would start on it. */
  ok: boolean;
  error?: { code: MeshlessErrorCode; message: string };
}

export function workloadApiReport(fetched: FetchedSvids, now = Date.now()): WorkloadApiReport {
  const svids = fetched.svids.map((s) => ({
    index: s.index,
    spiffeId: s.spiffeId,
    hint: s.hint,
    default: s.index === 0,
    chain: s.chain.map((c) => summarize(c, now)),
    ok: s.problem === undefined,
    ...(s.problem ? { error: { code: s.problem.code, message: s.problem.message } } : {}),
  }));
  const bundles: WorkloadApiReport['bundles'] = [];
  const first = fetched.svids[0]?.credential;
  if (first?.trustDomain !== undefined) bundles.push({ trustDomain: first.trustDomain, federated: false, roots: first.bundle.map((c) => summarize(c, now)) });
  for (const [td, value] of fetched.federatedBundles) {
    const trustDomain = td.replace(/^spiffe:\/\//, '');
    if (value instanceof Error) bundles.push({ trustDomain, federated: true, roots: [], error: value.message });
    else bundles.push({ trustDomain, federated: true, roots: value.map((c) => summarize(c, now)) });
  }
  const def = svids[0];
  const error = def === undefined ? { code: 'MESHLESS_ERR_WORKLOAD_API_MESSAGE_INVALID' as MeshlessErrorCode, message: 'the message carries no SVID' } : def.error;
  return { address: fetched.address, svids, bundles, crls: fetched.crlCount, ok: error === undefined, ...(error ? { error } : {}) };
}

function left(c: CertificateSummary): string {
  return c.timeLeftMs >= 0 ? `${formatDuration(c.timeLeftMs)} left` : `EXPIRED ${formatDuration(-c.timeLeftMs)} ago`;
}

export function renderWorkloadApiReport(r: WorkloadApiReport): string {
  let out = `${r.address} (SPIFFE Workload API)\n`;
  for (const s of r.svids) {
    const leaf = s.chain[0];
    out += `  svids[${s.index}]${s.default ? ' (default)' : ''}  ${s.spiffeId}${s.hint ? `  hint ${JSON.stringify(s.hint)}` : ''}\n`;
    if (leaf) out += `    leaf      serial ${leaf.serialNumber}, until ${leaf.notAfter} (${left(leaf)})\n`;
    for (const c of s.chain.slice(1)) out += `    via       ${c.subject} (until ${c.notAfter})\n`;
    out += s.ok ? '    valid     yes: key matches, chain verifies to its bundle\n' : `    valid     NO ${s.error!.code}: ${s.error!.message}\n`;
  }
  for (const b of r.bundles) {
    out += `  bundle    ${b.trustDomain}${b.federated ? ' (federated)' : ' (own)'}: `;
    if (b.error) out += `UNUSABLE: ${b.error}\n`;
    else if (b.roots.length === 0) out += 'no keys (that trust domain revoked its keys)\n';
    else out += b.roots.map((c) => `${c.subject} [until ${c.notAfter}, ${left(c)}]`).join('; ') + '\n';
  }
  if (r.crls > 0) out += `  crl       ${r.crls} (not applied by meshless)\n`;
  out += r.ok ? 'OK\n' : `ERROR ${r.error!.code}: ${r.error!.message}\n`;
  return out;
}
