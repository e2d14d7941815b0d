/**
 * What an allow-list rule matches, in one sentence (for `meshless inspect --policy`). The rule is
 * assumed valid (it compiled).
 */
export function describeRule(rule: string): string {
  if (rule === '*') return 'any peer whose certificate chain verifies';
  if (rule.startsWith('dns:')) {
    const name = rule.slice(4);
    return name.startsWith('*.')
      ? `a certificate with a DNS name of exactly one label under ${name.slice(2)} (case-insensitive)`
      : `a certificate with the DNS name ${name} (case-insensitive)`;
  }
  if (rule.startsWith('cn:')) return `a certificate whose subject CN is exactly ${JSON.stringify(rule.slice(3))} (weak: CN is not a SPIFFE identity)`;
  if (rule.startsWith('spiffe://')) {
    const rest = rule.slice('spiffe://'.length);
    const slash = rest.indexOf('/');
    const td = rest.slice(0, slash);
    const segs = rest.slice(slash + 1).split('/');
    const last = segs[segs.length - 1];
    if (segs.length === 1 && last === '**') return `any workload in the trust domain ${td}`;
    const stars = segs.filter((s) => s === '*').length;
    if (last === '**') {
      const prefix = `spiffe://${td}/${segs.slice(0, -1).join('/')}`;
      return `any SPIFFE ID under ${prefix}/ (one or more more segments; not ${prefix} itself)${stars ? `, "*" standing for any one segment` : ''}`;
    }
    if (stars > 0) return `SPIFFE IDs of ${segs.length} segments in ${td} where each "*" is any one segment`;
    return `exactly the SPIFFE ID ${rule}`;
  }
  return 'a custom rule';
}
