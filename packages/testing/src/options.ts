import type { KeyType } from './key-types.js';

/** Names accepted in `extendedKeyUsage`, besides dotted OIDs. */
export type ExtendedKeyUsageName = 'serverAuth' | 'clientAuth' | 'codeSigning' | 'emailProtection' | 'timeStamping' | 'ocspSigning';

/** Options of {@link createTestCA}. */
export interface TestCAOptions {
  /** The SPIFFE trust domain, e.g. `prod.example`. Put in the root's URI SAN as `spiffe://<td>`. */
  trustDomain: string;
  /** Key type of the CA, and the default key type of the certificates it issues. Default `ec-p256`. */
  keyType?: KeyType;
  /** Also mint an intermediate CA signed by the root, and sign leaves with it. Default `false`. */
  intermediate?: boolean;
  /** Validity of the CA certificates in milliseconds from now (they start an hour ago). Default one year. */
  ttlMs?: number;
}

/** What to put in a certificate that {@link TestCA.issue} or {@link TestCA.selfSigned} mints. */
export interface IssueOptions {
  /** The SPIFFE ID, written as the first URI SAN. */
  spiffeId?: string;
  /**
   * Extra URI SANs, written raw after `spiffeId`, exactly as given: nothing is validated, so
   * hostile certificates can be made (two URI SANs, `'spiffe://evil.example/x, URI:spiffe://good.example/y'`).
   */
  uris?: string[];
  /** DNS SANs. */
  dnsNames?: string[];
  /** IP address SANs (IPv4 or IPv6 text form). */
  ipAddresses?: string[];
  /** The subject CN. Default: none (the subject is then `O=meshless testing`). */
  commonName?: string;
  /** Default: one minute ago; or, when only `notAfter` is given, `ttlMs` before it if that is earlier. */
  notBefore?: Date;
  /** Default: `ttlMs` after `notBefore` if given, else `ttlMs` from now. */
  notAfter?: Date;
  /** Lifetime in milliseconds, used where `notBefore` or `notAfter` is not given. Default one hour. */
  ttlMs?: number;
  /** Key type of the new certificate's key. Default: the CA's key type. */
  keyType?: KeyType;
  /**
   * Mint a CA certificate (basicConstraints CA:true, keyCertSign) that is nevertheless handed out
   * as a leaf: a leaf that is a CA is never a valid identity. Default `false`.
   */
  isCA?: boolean;
  /** Hex serial number. Default: random, positive, 128 bits. */
  serialNumber?: string;
  /**
   * Extended key usages, as names or dotted OIDs. Default `['serverAuth', 'clientAuth']`.
   * An empty list leaves the extension out.
   */
  extendedKeyUsage?: Array<ExtendedKeyUsageName | string>;
}

/** One minted credential, as PEM strings ready for `tls.createSecureContext` or a volume. */
export interface IssuedCertificate {
  /** The leaf certificate, followed by the intermediate CA certificate when the CA has one. */
  cert: string;
  /** The leaf's private key: unencrypted PKCS#8 (`PRIVATE KEY`) PEM. */
  key: string;
  /** The CA's trust bundle: the root certificate PEM. */
  ca: string;
  /** The leaf's serial number as upper-case hex, as `X509Certificate#serialNumber` shows it. */
  serialNumber: string;
}
