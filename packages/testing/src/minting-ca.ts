import type { x509 } from './x509.js';
import { assertKeyType, generateKey, type KeyType } from './key-types.js';
import { caConstraints, caLeafConstraints, extendedKeyUsage, leafConstraints, subjectAltName } from './extensions.js';
import { mint, type Signer } from './mint.js';
import { toPem } from './pem.js';
import { normalizeSerialNumber, randomSerialNumber } from './serial-number.js';
import { validity } from './validity.js';
import type { IssuedCertificate, IssueOptions } from './options.js';

export const ORGANIZATION = 'meshless testing';

/**
 * An in-memory certificate authority for one SPIFFE trust domain, for tests. Everything it holds
 * was minted when it was created; nothing is shared with other instances.
 */
export interface TestCA {
  /** The trust domain, e.g. `prod.example`. */
  readonly trustDomain: string;
  /** Key type of the CA, and the default key type of what it issues. */
  readonly keyType: KeyType;
  /** The self-signed root certificate, PEM. */
  readonly certPem: string;
  /** The root's private key, unencrypted PKCS#8 PEM (what `meshless ca init` persists). */
  readonly keyPem: string;
  /** The roots to trust, PEM: the root certificate. */
  readonly bundle: string;
  /** The intermediate CA certificate PEM, when created with `intermediate: true`. */
  readonly intermediateCertPem: string | undefined;
  /**
   * Mints a leaf signed by this CA (by the intermediate, when there is one): a SPIFFE ID, or
   * options for anything else, hostile certificates included.
   */
  issue(spiffeIdOrOptions: string | IssueOptions): Promise<IssuedCertificate>;
  /**
   * Mints a self-signed leaf that does not chain to this CA, with the same options as
   * {@link TestCA.issue}: an impostor for hostile tests. Its `ca` is still this CA's bundle, the
   * roots a victim would be configured with.
   */
  selfSigned(spiffeIdOrOptions: string | IssueOptions): Promise<IssuedCertificate>;
  /**
   * Re-issues the intermediate CA certificate (same subject, same key, signed by the root) with
   * another validity window, PEM — e.g. an expired old copy sent next to the renewed one. Only
   * for a CA created with `intermediate: true`.
   */
  reissueIntermediate(window: { notBefore: Date; notAfter: Date }): Promise<string>;
}

/** The TestCA behind {@link createTestCA} and {@link loadTestCA}. */
export class MintingCA implements TestCA {
  readonly keyType: KeyType;
  readonly certPem: string;
  readonly bundle: string;
  readonly intermediateCertPem: string | undefined;

  constructor(
    readonly trustDomain: string,
    private readonly root: Signer,
    readonly keyPem: string,
    private readonly intermediate: Signer | undefined,
  ) {
    this.keyType = root.key.type;
    this.certPem = toPem(root.certificate.rawData, 'CERTIFICATE');
    this.bundle = this.certPem;
    this.intermediateCertPem = intermediate && toPem(intermediate.certificate.rawData, 'CERTIFICATE');
  }

  issue(spiffeIdOrOptions: string | IssueOptions): Promise<IssuedCertificate> {
    return this.mintLeaf(spiffeIdOrOptions, this.intermediate ?? this.root, this.intermediateCertPem ?? '');
  }

  selfSigned(spiffeIdOrOptions: string | IssueOptions): Promise<IssuedCertificate> {
    return this.mintLeaf(spiffeIdOrOptions, undefined, '');
  }

  async reissueIntermediate(window: { notBefore: Date; notAfter: Date }): Promise<string> {
    if (this.intermediate === undefined) throw new TypeError('reissueIntermediate() needs a CA created with { intermediate: true }');
    const minted = await mint({
      subject: this.intermediate.certificate.subjectName.toJSON(),
      subjectKey: this.intermediate.key,
      issuer: this.root,
      serialNumber: randomSerialNumber(),
      notBefore: window.notBefore,
      notAfter: window.notAfter,
      extensions: [...caConstraints(), subjectAltName({ uris: [`spiffe://${this.trustDomain}`] })!],
    });
    return toPem(minted.certificate.rawData, 'CERTIFICATE');
  }

  private async mintLeaf(spiffeIdOrOptions: string | IssueOptions, issuer: Signer | undefined, chain: string): Promise<IssuedCertificate> {
    const options = typeof spiffeIdOrOptions === 'string' ? { spiffeId: spiffeIdOrOptions } : spiffeIdOrOptions;
    if (options === null || typeof options !== 'object') {
      throw new TypeError('issue() and selfSigned() take a SPIFFE ID string or an options object');
    }
    const key = await generateKey(assertKeyType(options.keyType ?? this.keyType));
    const serialNumber = options.serialNumber === undefined ? randomSerialNumber() : normalizeSerialNumber(options.serialNumber);
    const san = subjectAltName({
      uris: [...(options.spiffeId === undefined ? [] : [options.spiffeId]), ...(options.uris ?? [])],
      dnsNames: options.dnsNames,
      ipAddresses: options.ipAddresses,
    });
    const eku = extendedKeyUsage(options.extendedKeyUsage);
    const minted = await mint({
      subject: leafName(options.commonName),
      subjectKey: key,
      ...(issuer ? { issuer } : {}),
      serialNumber,
      ...validity(options),
      extensions: [...(options.isCA ? caLeafConstraints() : leafConstraints()), ...(eku ? [eku] : []), ...(san ? [san] : [])],
    });
    return {
      cert: toPem(minted.certificate.rawData, 'CERTIFICATE') + chain,
      key: toPem(key.pkcs8, 'PRIVATE KEY'),
      ca: this.bundle,
      serialNumber,
    };
  }
}

function leafName(commonName: string | undefined): x509.JsonName {
  return commonName === undefined ? [{ O: [ORGANIZATION] }] : [{ O: [ORGANIZATION] }, { CN: [commonName] }];
}

