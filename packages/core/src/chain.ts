import type { X509Certificate } from 'node:crypto';

const MAX_DEPTH = 8;

/**
 * Finds a path from `leaf` through `intermediates` to one of `roots`, checking issuer names and
 * signatures with Node's X509Certificate, and that every issuer is a CA valid at `now`.
 * Returns the path (leaf first, root last), or a sentence saying why there is none.
 */
export function verifyChain(
  leaf: X509Certificate,
  intermediates: readonly X509Certificate[],
  roots: readonly X509Certificate[],
  now: number,
): { path: X509Certificate[] } | { problem: string } {
  const path: X509Certificate[] = [leaf];
  let current = leaf;
  let lastProblem = `no certificate in the bundle issued ${JSON.stringify(leaf.issuer.replace(/\n/g, ', '))}`;
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    for (const root of roots) {
      if (isIssuer(root, current)) {
        const problem = issuerProblem(root, now);
        if (problem) {
          lastProblem = problem;
          continue;
        }
        path.push(root);
        return { path };
      }
    }
    const next = intermediates.find((c) => !path.includes(c) && isIssuer(c, current));
    if (!next) return { problem: lastProblem };
    const problem = issuerProblem(next, now);
    if (problem) return { problem };
    path.push(next);
    current = next;
    lastProblem = `no certificate in the bundle issued the intermediate ${JSON.stringify(next.subject.replace(/\n/g, ', '))}`;
  }
  return { problem: `the chain is longer than ${MAX_DEPTH} certificates` };
}

function isIssuer(issuer: X509Certificate, cert: X509Certificate): boolean {
  try {
    return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

function issuerProblem(ca: X509Certificate, now: number): string | undefined {
  const subject = JSON.stringify(ca.subject.replace(/\n/g, ', '));
  if (!ca.ca) return `issuer ${subject} is not a CA certificate`;
  if (Date.parse(ca.validTo) < now) return `issuer ${subject} expired at ${new Date(ca.validTo).toISOString()}`;
  if (Date.parse(ca.validFrom) > now) return `issuer ${subject} is not valid before ${new Date(ca.validFrom).toISOString()}`;
  return undefined;
}

/**
 * Why a peer's certificate does not verify to `bundle` (undefined when it does): the leaf alone
 * first, then with the intermediates the peer sent (asked for only then: reading them costs
 * ~200 µs). Used when a connection is checked, a session resumes or the bundle rotates — never
 * per request.
 */
export function peerChainProblem(
  leaf: X509Certificate,
  bundle: readonly X509Certificate[],
  now: number,
  intermediates: () => readonly X509Certificate[] = () => [],
): string | undefined {
  const direct = verifyChain(leaf, [], bundle, now);
  if (!('problem' in direct)) return undefined;
  const sent = intermediates();
  if (sent.length === 0) return direct.problem;
  const withIssuers = verifyChain(leaf, sent, bundle, now);
  return 'problem' in withIssuers ? withIssuers.problem : undefined;
}
