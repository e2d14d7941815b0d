/**
 * The verified identity of the other side of one TLS connection (or of our own certificate).
 * Computed once per connection and cached on it; frozen.
 */
export interface Peer {
  /** The SPIFFE ID, when the certificate is an X509-SVID (exactly one URI SAN, valid, not a CA). */
  readonly spiffeId?: string;
  /** The trust domain of `spiffeId`. */
  readonly trustDomain?: string;
  /** DNS SANs, as presented. */
  readonly dnsNames: readonly string[];
  /** All URI SANs, as presented. */
  readonly uris: readonly string[];
  /** The subject CN, when there is exactly one. */
  readonly commonName?: string;
  /** Serial number, uppercase hex, as Node prints it. */
  readonly serialNumber: string;
  /** SHA-256 fingerprint, colon-separated uppercase hex, as Node prints it. */
  readonly fingerprint256: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** The SPIFFE ID, else the first DNS name, else `cn:<CN>`, else `serial:<serial>`. */
  toString(): string;
}

/** Fields of a Peer, as plain data. */
export type PeerFields = Omit<Peer, 'toString'>;

function peerToString(this: PeerFields): string {
  if (this.spiffeId !== undefined) return this.spiffeId;
  if (this.dnsNames.length > 0) return this.dnsNames[0]!;
  if (this.commonName !== undefined) return `cn:${this.commonName}`;
  return `serial:${this.serialNumber}`;
}

/** Builds a frozen Peer from its fields. */
export function createPeer(fields: PeerFields): Peer {
  const peer: Record<string, unknown> = {};
  if (fields.spiffeId !== undefined) peer.spiffeId = fields.spiffeId;
  if (fields.trustDomain !== undefined) peer.trustDomain = fields.trustDomain;
  peer.dnsNames = Object.freeze([...fields.dnsNames]);
  peer.uris = Object.freeze([...fields.uris]);
  if (fields.commonName !== undefined) peer.commonName = fields.commonName;
  peer.serialNumber = fields.serialNumber;
  peer.fingerprint256 = fields.fingerprint256;
  peer.notBefore = fields.notBefore;
  peer.notAfter = fields.notAfter;
  Object.defineProperty(peer, 'toString', { value: peerToString, enumerable: false });
  return Object.freeze(peer) as unknown as Peer;
}
