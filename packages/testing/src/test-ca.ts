import { randomBytes } from 'node:crypto';
import { x509 } from './x509.js';
import { assertKeyType, generateKey, signingKey } from './key-types.js';
import { caConstraints, subjectAltName } from './extensions.js';
import { mint, type Signer } from './mint.js';
import { MintingCA, ORGANIZATION, type TestCA } from './minting-ca.js';
import { toPem } from './pem.js';
import { randomSerialNumber } from './serial-number.js';
import type { TestCAOptions } from './options.js';
import { checkTrustDomain } from './trust-domain.js';

const CA_TTL_MS = 365 * 24 * 3_600_000;
const CA_BACKDATE_MS = 3_600_000;

/**
 * Creates a fresh test CA: a self-signed root (basicConstraints CA:true critical, keyUsage
 * keyCertSign|cRLSign, URI SAN `spiffe://<trustDomain>`), and with `intermediate: true` an
 * intermediate CA under it that signs the leaves.
 *
 * @example
 * const ca = await createTestCA({ trustDomain: 'prod.example' });
 * const { cert, key, ca: bundle } = await ca.issue('spiffe://prod.example/ns/pay/sa/api');
 */
export async function createTestCA(options: TestCAOptions): Promise<TestCA> {
  const trustDomain = checkTrustDomain(options?.trustDomain, 'createTestCA');
  const keyType = assertKeyType(options.keyType ?? 'ec-p256');
  const ttlMs = options.ttlMs ?? CA_TTL_MS;
  const now = Date.now();
  const window = { notBefore: new Date(now - CA_BACKDATE_MS), notAfter: new Date(now + ttlMs) };
  const tag = randomBytes(4).toString('hex');
  const trustDomainSan = subjectAltName({ uris: [`spiffe://${trustDomain}`] })!;

  const rootKey = await signingKey(await generateKey(keyType));
  const root = await mint({
    subject: caName(`meshless test root ${trustDomain}`, tag),
    subjectKey: rootKey,
    serialNumber: randomSerialNumber(),
    ...window,
    extensions: [...caConstraints(), trustDomainSan],
  });
  const rootSigner: Signer = { certificate: root.certificate, key: rootKey, keyId: root.keyId };

  let intermediate: Signer | undefined;
  if (options.intermediate) {
    const key = await signingKey(await generateKey(keyType));
    const minted = await mint({
      subject: caName(`meshless test intermediate ${trustDomain}`, tag),
      subjectKey: key,
      issuer: rootSigner,
      serialNumber: randomSerialNumber(),
      ...window,
      extensions: [...caConstraints(), trustDomainSan],
    });
    intermediate = { certificate: minted.certificate, key, keyId: minted.keyId };
  }
  return new MintingCA(trustDomain, rootSigner, toPem(rootKey.pkcs8, 'PRIVATE KEY'), intermediate);
}

function caName(commonName: string, tag: string): x509.JsonName {
  // The random OU keeps two CAs of one trust domain apart by name, not only by key identifier.
  return [{ O: [ORGANIZATION] }, { OU: [`ca ${tag}`] }, { CN: [commonName] }];
}
