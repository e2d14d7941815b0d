import { loadCredential, type Credential, type FederatedBundles } from '@meshless/core';
import type { TestCA } from './minting-ca.js';
import type { IssuedCertificate, TestCAOptions } from './options.js';
import { createTestCA } from './test-ca.js';

/** Two trust domains, each with its own CA, federated with each other. */
export interface TwoTrustDomains {
  /** Our own trust domain's CA (default `prod.example`). */
  readonly home: TestCA;
  /** The federated trust domain's CA (default `partner.example`). */
  readonly partner: TestCA;
  /** What `ca`'s workloads federate with: the other trust domain's bundle, keyed by its name. */
  federationOf(ca: TestCA): FederatedBundles;
  /**
   * A credential for a certificate `ca` issued: its own bundle is `ca`'s, and it federates with
   * the other trust domain (unless `federate: false`).
   */
  credential(ca: TestCA, issued: IssuedCertificate, options?: { federate?: boolean; generation?: number }): Credential;
}

/**
 * Two CAs for two trust domains, for federation tests: a peer of either is verified against the
 * bundle of the trust domain its SPIFFE ID names, so `partner.issue('spiffe://prod.example/…')` is
 * the forgery every federation test should see refused.
 *
 * @example
 * const { home, partner, credential } = await twoTrustDomains();
 * const server = createServer({ source: credential(home, await home.issue({ spiffeId: API, dnsNames: ['localhost'] })), allow: '*' }, app);
 * const client = createAgent({ source: credential(partner, await partner.issue(CHECKOUT)), allow: API });
 */
export async function twoTrustDomains(options: { home?: string; partner?: string } & Omit<TestCAOptions, 'trustDomain'> = {}): Promise<TwoTrustDomains> {
  const { home: homeDomain = 'prod.example', partner: partnerDomain = 'partner.example', ...caOptions } = options;
  const [home, partner] = await Promise.all([createTestCA({ ...caOptions, trustDomain: homeDomain }), createTestCA({ ...caOptions, trustDomain: partnerDomain })]);
  const federationOf = (ca: TestCA): FederatedBundles => {
    const other = ca === home ? partner : home;
    return { [other.trustDomain]: other.bundle };
  };
  return {
    home,
    partner,
    federationOf,
    credential: (ca, issued, { federate = true, generation = 1 } = {}) =>
      loadCredential({ cert: issued.cert, key: issued.key, ca: ca.bundle, ...(federate ? { federation: federationOf(ca) } : {}) }, { generation }),
  };
}
