import { formatDuration } from '../io.js';
import type { ProbeReport } from './probe.js';

/** The human-readable form of a probe report. */
export function renderProbe(r: ProbeReport): string {
  const rows: Array<[string, string]> = [];
  if (r.connection) {
    const c = r.connection;
    rows.push(['tls', `${c.tlsVersion ?? '?'}, ${c.cipher}${c.alpn ? `, ALPN ${c.alpn}` : ''}, handshake ${c.handshakeMs} ms`]);
  }
  if (r.server) {
    const s = r.server;
    const left = s.timeLeftMs >= 0 ? `${formatDuration(s.timeLeftMs)} left` : `EXPIRED ${formatDuration(-s.timeLeftMs)} ago`;
    rows.push(['server', `${s.id}${s.dnsNames.length ? ` (dns ${s.dnsNames.join(', ')})` : ''}`]);
    rows.push(['validity', `until ${s.notAfter} (${left}), serial ${s.serialNumber}`]);
  }
  r.chain.forEach((c, i) => rows.push([i === 0 ? 'chain' : '', `${c.spiffeId ?? c.subject}  ← issued by ${c.issuer}`]));
  if (r.verified !== undefined) rows.push(['verified', r.verified ? 'yes, to our bundle' : `NO: ${r.verifyError ?? 'does not verify'}`]);
  if (r.allow) rows.push(['allow', r.allow.checked ? `${r.allow.allowed ? 'accepted' : 'REFUSED'}: ${r.allow.reason}` : r.allow.reason]);
  if (r.client?.asked === false) rows.push(['we sent', `nothing (${r.client.answer.replace(/^not asked: /, '')})`]);
  else if (r.client) rows.push(['we sent', `${r.client.id}; server ${r.client.accepted ? 'accepted it' : 'did NOT accept it'}: ${r.client.answer}${r.client.error ? ` (${r.client.error})` : ''}`]);
  if (r.resumption) rows.push(['resumption', r.resumption.resumed ? 'yes: a second connection resumed the TLS session' : `no${r.resumption.note ? ` (${r.resumption.note})` : ''}`]);
  const width = Math.max(0, ...rows.map(([k]) => k.length));
  let out = `${r.url}\n` + rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`).join('\n') + (rows.length ? '\n' : '');
  out += r.ok ? 'OK\n' : `ERROR ${r.error!.code}: ${r.error!.message}\n`;
  return out;
}
