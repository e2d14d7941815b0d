import { generateKeyPair as generateKeyPairCallback, generateKeyPairSync, type KeyObject, type webcrypto as WebCrypto } from 'node:crypto';
import { promisify } from 'node:util';
import { webcrypto } from './x509.js';

/** Key algorithms the test CA can mint. `ec-p256` is the default and by far the fastest. */
export type KeyType = 'ec-p256' | 'ec-p384' | 'rsa-2048' | 'ed25519';

/** Every {@link KeyType}, for tests that loop over them. */
export const keyTypes: readonly KeyType[] = Object.freeze(['ec-p256', 'ec-p384', 'rsa-2048', 'ed25519'] as const);

const generateKeyPairAsync = promisify(generateKeyPairCallback);

/** How WebCrypto imports a key of this type to sign with it. */
const importAlgorithm: Record<KeyType, WebCrypto.EcKeyImportParams | WebCrypto.RsaHashedImportParams | WebCrypto.Algorithm> = {
  'ec-p256': { name: 'ECDSA', namedCurve: 'P-256' },
  'ec-p384': { name: 'ECDSA', namedCurve: 'P-384' },
  'rsa-2048': { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
  ed25519: { name: 'Ed25519' },
};

/** The signature algorithm a key of this type signs certificates with. */
const signing: Record<KeyType, WebCrypto.Algorithm | WebCrypto.EcdsaParams> = {
  'ec-p256': { name: 'ECDSA', hash: 'SHA-256' },
  'ec-p384': { name: 'ECDSA', hash: 'SHA-384' },
  'rsa-2048': { name: 'RSASSA-PKCS1-v1_5' },
  ed25519: { name: 'Ed25519' },
};

/** A freshly generated key pair, as DER. */
export interface KeyMaterial {
  readonly type: KeyType;
  /** SubjectPublicKeyInfo DER. */
  readonly spki: Buffer;
  /** PKCS#8 PrivateKeyInfo DER. */
  readonly pkcs8: Buffer;
}

/** A key that signs certificates: its DER forms and the WebCrypto private key. */
export interface SigningKey extends KeyMaterial {
  readonly privateKey: WebCrypto.CryptoKey;
}

export function assertKeyType(value: unknown, what = 'keyType'): KeyType {
  if (typeof value === 'string' && (keyTypes as readonly string[]).includes(value)) return value as KeyType;
  throw new TypeError(`${what} must be one of ${keyTypes.join(', ')}; got ${JSON.stringify(value)}`);
}

/**
 * Generates a key pair with node:crypto. EC and Ed25519 keys take well under 0.1 ms, so they
 * are generated synchronously (a WebCrypto round trip through the thread pool costs more than
 * the work); RSA goes to the thread pool. Leaf keys never sign anything, so they stay as DER.
 */
export async function generateKey(type: KeyType): Promise<KeyMaterial> {
  const { publicKey, privateKey } = await generatePair(type);
  return {
    type,
    spki: publicKey.export({ type: 'spki', format: 'der' }),
    pkcs8: privateKey.export({ type: 'pkcs8', format: 'der' }),
  };
}

async function generatePair(type: KeyType): Promise<{ publicKey: KeyObject; privateKey: KeyObject }> {
  switch (type) {
    case 'ec-p256':
      return generateKeyPairSync('ec', { namedCurve: 'P-256' });
    case 'ec-p384':
      return generateKeyPairSync('ec', { namedCurve: 'P-384' });
    case 'ed25519':
      return generateKeyPairSync('ed25519');
    case 'rsa-2048':
      return generateKeyPairAsync('rsa', { modulusLength: 2048, publicExponent: 0x10001 });
  }
}

/** Imports a key into WebCrypto so that @peculiar/x509 can sign with it. */
export async function signingKey(material: KeyMaterial): Promise<SigningKey> {
  const privateKey = await webcrypto.subtle.importKey('pkcs8', material.pkcs8, importAlgorithm[material.type], false, ['sign']);
  return { ...material, privateKey };
}

export function signingAlgorithm(type: KeyType): WebCrypto.Algorithm | WebCrypto.EcdsaParams {
  return signing[type];
}
