import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PeerCertificate } from 'node:tls';
import { createTestCA } from '@meshless/testing';

export const TRUST_DOMAIN = 'bench.example';
export const SERVER_ID = `spiffe://${TRUST_DOMAIN}/ns/bench/sa/server`;
export const CLIENT_ID = `spiffe://${TRUST_DOMAIN}/ns/bench/sa/client`;
/** DNS SAN on the server certificate, for the clients that check host names (undici, nginx, stunnel). */
export const SERVER_NAME = 'server.bench.local';
/** The hand-written clients' server check: exactly one URI SAN, equal to SERVER_ID (in place of the host name). */
export function checkSpiffeServer(_host: string, cert: PeerCertificate): Error | undefined {
  const uris = (cert.subjectaltname ?? '').split(', ').filter((san) => san.startsWith('URI:'));
  return uris.length === 1 && uris[0] === `URI:${SERVER_ID}` ? undefined : new Error(`unexpected server identity: ${cert.subjectaltname}`);
}
/** Certificate generations minted per side, cycled through by rotations. */
export const GENERATIONS = 4;

/** Paths of the bench's certificate files (one CA, same certificates for every scenario). */
export interface CertFiles {
  dir: string;
  ca: string;
  /** The bundle with a second, unrelated root added: a trust change that still trusts every peer. */
  caPlus: string;
  serverCert: (generation?: number) => string;
  serverKey: (generation?: number) => string;
  clientCert: (generation?: number) => string;
  clientKey: (generation?: number) => string;
}

/** The file names inside a certificate directory (children compute them from the directory). */
export function certFiles(dir: string): CertFiles {
  return {
    dir,
    ca: join(dir, 'ca.crt'),
    caPlus: join(dir, 'ca-plus.crt'),
    serverCert: (g = 0) => join(dir, `server.g${g % GENERATIONS}.crt`),
    serverKey: (g = 0) => join(dir, `server.g${g % GENERATIONS}.key`),
    clientCert: (g = 0) => join(dir, `client.g${g % GENERATIONS}.crt`),
    clientKey: (g = 0) => join(dir, `client.g${g % GENERATIONS}.key`),
  };
}

/**
 * Mints a test CA (EC P-256) and GENERATIONS server and client certificates into `dir`. The server
 * certificate carries its SPIFFE ID and a DNS name so that host-name-checking clients accept it.
 */
export async function mintCertificates(dir: string): Promise<CertFiles> {
  mkdirSync(dir, { recursive: true });
  const files = certFiles(dir);
  const ca = await createTestCA({ trustDomain: TRUST_DOMAIN });
  writeFileSync(files.ca, ca.bundle);
  const other = await createTestCA({ trustDomain: `other.${TRUST_DOMAIN}` });
  writeFileSync(files.caPlus, ca.bundle.trimEnd() + '\n' + other.bundle);
  for (let g = 0; g < GENERATIONS; g++) {
    const server = await ca.issue({ spiffeId: SERVER_ID, dnsNames: [SERVER_NAME] });
    writeFileSync(files.serverCert(g), server.cert);
    writeFileSync(files.serverKey(g), server.key, { mode: 0o600 });
    const client = await ca.issue({ spiffeId: CLIENT_ID });
    writeFileSync(files.clientCert(g), client.cert);
    writeFileSync(files.clientKey(g), client.key, { mode: 0o600 });
  }
  return files;
}
