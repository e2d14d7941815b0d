import { createTestCA, type IssuedCertificate, type TestCA } from '@meshless/testing';

export const TD = 'td.example';
export const SERVER_ID = `spiffe://${TD}/ns/app/sa/server`;
export const CLIENT_ID = `spiffe://${TD}/ns/web/sa/client`;
export const ADMIN_ID = `spiffe://${TD}/ns/ops/sa/admin`;
export const DENIED_ID = `spiffe://${TD}/ns/evil/sa/mallory`;

export interface Pki {
  ca: TestCA;
  /** Another CA of the same trust domain: its certificates must never verify. */
  otherCa: TestCA;
  server: IssuedCertificate;
  client: IssuedCertificate;
  admin: IssuedCertificate;
  denied: IssuedCertificate;
  otherCaClient: IssuedCertificate;
  /** Issues a fresh server certificate (same identity, new serial). */
  issueServer(): Promise<IssuedCertificate>;
  issueClient(id?: string): Promise<IssuedCertificate>;
}

/** A CA, a server certificate for localhost, and clients: allowed, admin, denied, and one from another CA. */
export async function createPki(options: { intermediate?: boolean } = {}): Promise<Pki> {
  const [ca, otherCa] = await Promise.all([createTestCA({ trustDomain: TD, intermediate: options.intermediate ?? false }), createTestCA({ trustDomain: TD })]);
  const issueServer = () => ca.issue({ spiffeId: SERVER_ID, dnsNames: ['localhost'] });
  const issueClient = (id = CLIENT_ID) => ca.issue(id);
  const [server, client, admin, denied, otherCaClient] = await Promise.all([issueServer(), issueClient(), issueClient(ADMIN_ID), issueClient(DENIED_ID), otherCa.issue(CLIENT_ID)]);
  return { ca, otherCa, server, client, admin, denied, otherCaClient, issueServer, issueClient };
}
