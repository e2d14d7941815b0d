import { formatDuration } from '../io.js';
import type { CertificateSummary, InspectReport } from './report.js';

function certLine(c: CertificateSummary): string {
  const id = c.spiffeId ?? c.dnsNames[0] ?? c.subject;
  const left = c.timeLeftMs >= 0 ? `${formatDuration(c.timeLeftMs)} left` : `EXPIRED ${formatDuration(-c.timeLeftMs)} ago`;
  return `${id}  [${c.isCA ? 'CA' : 'leaf'}, serial ${c.serialNumber}, until ${c.notAfter}, ${left}]`;
}

/** The human-readable form of an inspection report. */
export function renderReport(r: InspectReport): string {
  const rows: Array<[string, string]> = [];
  if (r.layout) {
    const l = r.layout;
    const how = l.atomicSwap ? `atomic ..data swap (current: ${l.dataTarget})` : 'plain files';
    rows.push(['layout', `${l.name} (${l.from}); ${how}`]);
    rows.push(['files', `${l.files.cert}, ${l.files.key}, ${l.files.ca}`]);
  }
  if (r.identity) {
    rows.push(['identity', r.identity.id]);
    if (r.identity.dnsNames.length) rows.push(['dns', r.identity.dnsNames.join(', ')]);
  }
  if (r.validity) {
    const v = r.validity;
    const left = v.timeLeftMs >= 0 ? `${formatDuration(v.timeLeftMs)} left, ${Math.round(v.lifetimeUsed * 100)}% of lifetime used` : `expired ${formatDuration(-v.timeLeftMs)} ago`;
    rows.push(['validity', `${v.notBefore} → ${v.notAfter} (${left})`]);
  }
  if (r.key) rows.push(['key', `${r.key.type}, ${r.key.matchesLeaf ? 'matches the leaf' : 'DOES NOT match the leaf'}`]);
  r.chain.forEach((c, i) => rows.push([i === 0 ? 'chain' : '', certLine(c)]));
  if (r.bundles && r.bundles.some((b) => !b.own)) {
    for (const b of r.bundles) {
      const facts = [b.own ? 'own' : 'federated', b.format === 'jwks' ? 'SPIFFE bundle' : 'PEM', ...(b.sequence === undefined ? [] : [`sequence ${b.sequence}`]), `${b.authorities.length} CA${b.authorities.length === 1 ? '' : 's'}`];
      rows.push([`bundle ${b.trustDomain}`, `${b.file} (${facts.join(', ')})${b.ignored ? ` IGNORED: ${b.ignored}` : b.authorities.length === 0 ? ' REVOKED: its peers are refused' : ''}`]);
      for (const c of b.authorities) rows.push(['', certLine(c)]);
    }
  } else {
    r.bundle.forEach((c, i) => rows.push([i === 0 ? `bundle (${r.bundle.length})` : '', certLine(c)]));
  }
  rows.push(['verifies', r.verifiedPath ? r.verifiedPath.join(' → ') : 'NO: the chain does not verify to the bundle']);
  const width = Math.max(...rows.map(([k]) => k.length));
  let out = `${r.path}\n` + rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`).join('\n') + '\n';
  for (const w of r.warnings) out += `warning [${w.kind}]: ${w.message}\n`;
  out += r.ok ? `OK${r.warnings.length ? ` with ${r.warnings.length} warning(s)` : ''}\n` : `ERROR ${r.error!.code}: ${r.error!.message}\n`;
  return out;
}
