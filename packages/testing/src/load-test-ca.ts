import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { x509 } from './x509.js';
import { keyIdentifier } from './key-identifier.js';
import { signingKey, type KeyType } from './key-types.js';
import { MintingCA, type TestCA } from './minting-ca.js';
import { toPem } from './pem.js';
import { checkTrustDomain } from './trust-domain.js';

/** Options of {@link loadTestCA}. */
export interface LoadTestCAOptions {
  /** The CA certificate PEM, e.g. a persisted `TestCA#certPem`. */
  certPem: string;
  /** Its private key, unencrypted PKCS#8 PEM (`TestCA#keyPem`). */
  keyPem: string;
  /** The trust domain. Default: from the certificate's `spiffe://<td>` URI SAN. */
  trustDomain?: string;
}

/**
 * Re-opens a persisted CA (what `meshless ca init` saved from {@link TestCA.certPem} and
 * {@link TestCA.keyPem}) to issue more certificates from it. Leaves are signed by that
 * certificate directly; its key must be EC P-256/P-384, RSA-2048 or Ed25519.
 */
export async function loadTestCA(options: LoadTestCAOptions): Promise<TestCA> {
  const node = new X509Certificate(options.certPem);
  if (!node.ca) throw new Error('loadTestCA: the certificate is not a CA (basicConstraints CA:false or missing)');
  const privateKey = createPrivateKey(options.keyPem);
  const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  if (!spki.equals(node.publicKey.export({ type: 'spki', format: 'der' }))) {
    throw new Error('loadTestCA: the private key does not belong to the certificate');
  }
  const trustDomain = checkTrustDomain(options.trustDomain ?? trustDomainOf(node), 'loadTestCA');
  const type = keyTypeOf(privateKey);
  const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'der' });
  const certificate = new x509.X509Certificate(node.raw);
  const keyId = certificate.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId ?? keyIdentifier(spki);
  const key = await signingKey({ type, spki, pkcs8 });
  return new MintingCA(trustDomain, { certificate, key, keyId }, toPem(pkcs8, 'PRIVATE KEY'), undefined);
}

function keyTypeOf(key: ReturnType<typeof createPrivateKey>): KeyType {
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'ec' && details.namedCurve === 'prime256v1') return 'ec-p256';
  if (key.asymmetricKeyType === 'ec' && details.namedCurve === 'secp384r1') return 'ec-p384';
  if (key.asymmetricKeyType === 'rsa' && details.modulusLength === 2048) return 'rsa-2048';
  if (key.asymmetricKeyType === 'ed25519') return 'ed25519';
  throw new Error(
    `loadTestCA: unsupported CA key (${key.asymmetricKeyType}${details.namedCurve ? ` ${details.namedCurve}` : ''}${details.modulusLength ? ` ${details.modulusLength} bits` : ''}); use EC P-256/P-384, RSA-2048 or Ed25519`,
  );
}

function trustDomainOf(cert: X509Certificate): string | undefined {
  const match = /(?:^|, )URI:spiffe:\/\/([a-z0-9._-]+)\/?(?:,|$)/.exec(cert.subjectAltName ?? '');
  if (match) return match[1];
  throw new Error('loadTestCA: the certificate has no spiffe://<trust-domain> URI SAN; pass trustDomain');
}
