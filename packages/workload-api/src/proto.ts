/**
 * A minimal protobuf codec for the one call the source makes, `FetchX509SVID` of the SPIFFE
 * Workload API (proto/workloadapi.proto, vendored from spiffe/spiffe): the request is empty, the
 * response is decoded here. Unknown fields are skipped, as protobuf requires; a message that is
 * not well-formed protobuf throws `ProtoError`.
 */

/** One `X509SVID` entry, fields as on the wire (empty when absent, as proto3 defaults). */
export interface X509SvidMessage {
  readonly spiffeId: string;
  /** DER certificates, leaf first. */
  readonly x509Svid: Buffer;
  /** PKCS#8 DER private key. */
  readonly x509SvidKey: Buffer;
  /** DER certificates of the SVID's trust domain bundle. */
  readonly bundle: Buffer;
  readonly hint: string;
}

/** An `X509SVIDResponse`. */
export interface X509SvidResponseMessage {
  readonly svids: readonly X509SvidMessage[];
  readonly crl: readonly Buffer[];
  /** Trust domain SPIFFE ID (`spiffe://partner.example`) → DER certificates, in wire order (last duplicate wins). */
  readonly federatedBundles: ReadonlyMap<string, Buffer>;
}

export class ProtoError extends Error {}

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

class Reader {
  #pos = 0;
  constructor(readonly buf: Buffer) {}

  get done(): boolean {
    return this.#pos >= this.buf.length;
  }

  varint(): number {
    let result = 0;
    let shift = 0;
    for (let i = 0; i < 10; i++) {
      if (this.#pos >= this.buf.length) throw new ProtoError('truncated varint');
      const b = this.buf[this.#pos++]!;
      if (shift < 53) result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
    }
    throw new ProtoError('varint longer than 10 bytes');
  }

  bytes(): Buffer {
    const len = this.varint();
    if (len > this.buf.length - this.#pos) throw new ProtoError('length-delimited field runs past the end of the message');
    const out = this.buf.subarray(this.#pos, this.#pos + len);
    this.#pos += len;
    return out;
  }

  skip(wireType: number): void {
    switch (wireType) {
      case WIRE_VARINT:
        this.varint();
        return;
      case WIRE_I64:
        this.#advance(8);
        return;
      case WIRE_LEN:
        this.bytes();
        return;
      case WIRE_I32:
        this.#advance(4);
        return;
      default:
        throw new ProtoError(`unsupported wire type ${wireType}`);
    }
  }

  /** Reads the next tag: [field number, wire type]. */
  tag(): [number, number] {
    const tag = this.varint();
    const field = Math.floor(tag / 8);
    if (field === 0) throw new ProtoError('field number 0');
    return [field, tag % 8];
  }

  #advance(n: number): void {
    if (n > this.buf.length - this.#pos) throw new ProtoError('fixed-width field runs past the end of the message');
    this.#pos += n;
  }
}

function utf8(buf: Buffer): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(buf);
  } catch {
    throw new ProtoError('a string field is not valid UTF-8');
  }
}

/** Iterates the fields of a message; length-delimited values are handed as Buffers, others skipped. */
function fields(buf: Buffer, onLen: (field: number, value: Buffer) => void): void {
  const r = new Reader(buf);
  while (!r.done) {
    const [field, wire] = r.tag();
    if (wire === WIRE_LEN) onLen(field, r.bytes());
    else r.skip(wire);
  }
}

function decodeSvid(buf: Buffer): X509SvidMessage {
  const m = { spiffeId: '', x509Svid: Buffer.alloc(0), x509SvidKey: Buffer.alloc(0), bundle: Buffer.alloc(0), hint: '' };
  fields(buf, (field, value) => {
    if (field === 1) m.spiffeId = utf8(value);
    else if (field === 2) m.x509Svid = Buffer.from(value);
    else if (field === 3) m.x509SvidKey = Buffer.from(value);
    else if (field === 4) m.bundle = Buffer.from(value);
    else if (field === 5) m.hint = utf8(value);
  });
  return m;
}

/** Decodes an `X509SVIDResponse` (copies every byte field out of the transport's buffer). */
export function decodeX509SvidResponse(buf: Buffer): X509SvidResponseMessage {
  const svids: X509SvidMessage[] = [];
  const crl: Buffer[] = [];
  const federatedBundles = new Map<string, Buffer>();
  fields(buf, (field, value) => {
    if (field === 1) svids.push(decodeSvid(value));
    else if (field === 2) crl.push(Buffer.from(value));
    else if (field === 3) {
      let key = '';
      let bytes = Buffer.alloc(0);
      fields(value, (f, v) => {
        if (f === 1) key = utf8(v);
        else if (f === 2) bytes = Buffer.from(v);
      });
      federatedBundles.set(key, bytes);
    }
  });
  return { svids, crl, federatedBundles };
}

/** `X509SVIDRequest {}`: no fields, zero bytes. */
export function encodeX509SvidRequest(): Buffer {
  return Buffer.alloc(0);
}
