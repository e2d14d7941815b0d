/**
 * What an allow-list rule matches, in one sentence (for `meshless inspect --policy`). The rule is
 * assumed valid (it compiled).
 */
export function describeRule(rule: string): string {
  if (rule === '*') return 'any peer whose certificate chain verifies';
  if (rule.startsWith('dns:')) {
    const name = rule.slice(4);
    return name.startsWith('*.')
      ? `a certificate without a SPIFFE ID whose DNS name is one label under ${name.slice(2)} (case-insensitive)`
      : `a certificate without a SPIFFE ID whose DNS name is ${name} (case-insensitive)`;
  }
  if (rule.startsWith('cn:')) return `a certificate without a SPIFFE ID whose subject CN is exactly ${JSON.stringify(rule.slice(3))} (weak: a CN is not an identity)`;
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
      return `any SPIFFE ID under ${prefix}/ (one or more further segments; not ${prefix} itself)${stars ? `, each "*" being any one segment` : ''}`;
    }
    if (stars > 0) return `SPIFFE IDs of exactly ${segs.length} path segments in ${td}, each "*" being any one segment`;
    return `exactly the SPIFFE ID ${rule}`;
  }
  return 'a custom rule';
}
