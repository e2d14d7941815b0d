import { x509 } from './x509.js';
import { keyIdentifier } from './key-identifier.js';
import { signingAlgorithm, signingKey, type KeyMaterial, type SigningKey } from './key-types.js';
import { authorityKeyIdentifier, subjectKeyIdentifier } from './extensions.js';

type CryptoKeyParam = x509.X509CertificateCreateWithKeyParams['signingKey'];

/** A certificate that signs others: its subject name, key, and key identifier. */
export interface Signer {
  readonly certificate: x509.X509Certificate;
  readonly key: SigningKey;
  readonly keyId: string;
}

export interface MintParams {
  subject: x509.JsonName;
  /** The subject's key; a self-signed certificate signs with it (imported into WebCrypto if needed). */
  subjectKey: KeyMaterial | SigningKey;
  /** Who signs; absent for a self-signed certificate. */
  issuer?: Signer;
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
  /** Every extension except the key identifiers, which are added here. */
  extensions: x509.Extension[];
}

export interface Minted {
  readonly certificate: x509.X509Certificate;
  readonly keyId: string;
}

/** Signs one certificate, adding subjectKeyIdentifier and authorityKeyIdentifier. */
export async function mint(params: MintParams): Promise<Minted> {
  const keyId = keyIdentifier(params.subjectKey.spki);
  const signerKey = params.issuer?.key ?? ('privateKey' in params.subjectKey ? params.subjectKey : await signingKey(params.subjectKey));
  const subject = new x509.Name(params.subject);
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: params.serialNumber,
    subject,
    issuer: params.issuer?.certificate.subjectName ?? subject,
    notBefore: params.notBefore,
    notAfter: params.notAfter,
    publicKey: params.subjectKey.spki,
    signingKey: signerKey.privateKey as unknown as CryptoKeyParam,
    signingAlgorithm: signingAlgorithm(signerKey.type),
    extensions: [
      ...params.extensions,
      subjectKeyIdentifier(keyId),
      authorityKeyIdentifier(params.issuer?.keyId ?? keyId),
    ],
  });
  return { certificate, keyId };
}
