import type { X509Certificate } from 'node:crypto';

const MAX_DEPTH = 8;

/**
 * Finds a path from `leaf` through `intermediates` to one of `roots`, checking issuer names and
 * signatures with Node's X509Certificate, and that every issuer is a CA valid at `now`. Every
 * candidate issuer is tried, as OpenSSL does: an expired old intermediate sent next to its
 * renewed successor does not hide the renewed one (and the answer never depends on what was
 * verified before). Returns the path (leaf first, root last), or a sentence saying why there is none.
 */
export function verifyChain(
  leaf: X509Certificate,
  intermediates: readonly X509Certificate[],
  roots: readonly X509Certificate[],
  now: number,
  /** Tolerance for the issuers' validity windows, in ms (a credential's `clockSkewMs`); default 0. */
  skewMs = 0,
): { path: X509Certificate[] } | { problem: string } {
  const state = { problem: `no certificate in the bundle issued ${quoted(leaf.issuer)}`, steps: 0, skewMs };
  const path = search([leaf], intermediates, roots, now, state);
  return path === undefined ? { problem: state.problem } : { path };
}

// Bounds the work an adversarial chain (many look-alike issuers) can cause.
const MAX_STEPS = 64;

function search(
  path: X509Certificate[],
  intermediates: readonly X509Certificate[],
  roots: readonly X509Certificate[],
  now: number,
  state: { problem: string; steps: number; skewMs: number },
): X509Certificate[] | undefined {
  const current = path[path.length - 1]!;
  for (const root of roots) {
    if (!isIssuer(root, current)) continue;
    const problem = issuerProblem(root, now, state.skewMs);
    if (problem === undefined) return [...path, root];
    state.problem = problem;
  }
  if (path.length >= MAX_DEPTH) {
    state.problem = `the chain is longer than ${MAX_DEPTH} certificates`;
    return undefined;
  }
  for (const next of intermediates) {
    if (path.includes(next) || ++state.steps > MAX_STEPS || !isIssuer(next, current)) continue;
    const problem = issuerProblem(next, now, state.skewMs);
    if (problem !== undefined) {
      state.problem = problem;
      continue;
    }
    const found = search([...path, next], intermediates, roots, now, state);
    if (found !== undefined) return found;
    if (state.problem.startsWith('no certificate in the bundle issued')) state.problem = `no certificate in the bundle issued the intermediate ${quoted(next.subject)}`;
  }
  return undefined;
}

function quoted(name: string): string {
  return JSON.stringify(name.replace(/\n/g, ', '));
}

function isIssuer(issuer: X509Certificate, cert: X509Certificate): boolean {
  try {
    return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

function issuerProblem(ca: X509Certificate, now: number, skewMs: number): string | undefined {
  const subject = quoted(ca.subject);
  if (!ca.ca) return `issuer ${subject} is not a CA certificate`;
  if (Date.parse(ca.validTo) + skewMs < now) return `issuer ${subject} expired at ${new Date(ca.validTo).toISOString()}`;
  if (Date.parse(ca.validFrom) - skewMs > now) return `issuer ${subject} is not valid before ${new Date(ca.validFrom).toISOString()}`;
  return undefined;
}
