/**
 * Reading OpenSSL's serialized TLS session (`socket.getSession()`, the `'session'` event): the
 * DER `SSL_SESSION` of ssl/ssl_asn1.c, a SEQUENCE whose optional `[3] EXPLICIT Certificate`
 * field is the peer's certificate (the same object `SSL_get_peer_certificate` returns).
 *
 * Why meshless reads it:
 * - **Server:** `getSession()` hands over the client certificate's DER in ~10 µs, where
 *   `getPeerCertificate()` builds a large object (names, fingerprints, public key) in ~60–110 µs
 *   per connection, resumed ones included.
 * - **Client:** `tls.connect({ session })` decodes every certificate in the session (~300 µs on
 *   OpenSSL 3). Node never shows a client the server certificate of a resumed session, and meshless
 *   keeps the identity it verified next to the session, so the certificate in a cached TLS 1.3
 *   session is dead weight: the cache stores the session without it.
 *
 * Every reader is strict and fails soft: anything but the exact expected shape returns
 * `undefined` (callers then take the slow, documented path), never a guess.
 */

const SEQUENCE = 0x30;
const INTEGER = 0x02;
/** `[3] EXPLICIT` (context-specific, constructed, tag 3): the peer certificate. */
const PEER_CERTIFICATE = 0xa3;

/** A top-level field of a session: its tag, [start, end) and where its content starts. */
type Field = { tag: number; start: number; end: number; contentStart: number };

/** A DER element's tag, header length and content length at `offset`, or undefined when malformed. */
function elementAt(der: Uint8Array, offset: number, end: number): { tag: number; header: number; length: number } | undefined {
  if (offset + 2 > end) return undefined;
  const tag = der[offset]!;
  // Multi-byte tags (low five bits all set) never occur in SSL_SESSION: refuse them.
  if ((tag & 0x1f) === 0x1f) return undefined;
  const first = der[offset + 1]!;
  if (first < 0x80) return offset + 2 + first <= end ? { tag, header: 2, length: first } : undefined;
  const bytes = first & 0x7f;
  // Definite lengths of 1–3 bytes (a session is a few KB); indefinite (0x80) is not DER.
  if (bytes === 0 || bytes > 3 || offset + 2 + bytes > end) return undefined;
  let length = 0;
  for (let i = 0; i < bytes; i++) length = length * 256 + der[offset + 2 + i]!;
  const header = 2 + bytes;
  return offset + header + length <= end ? { tag, header, length } : undefined;
}

/** The top-level fields of a session: [start, end) of each element, or undefined when malformed. */
function fieldsOf(session: Uint8Array): Field[] | undefined {
  const outer = elementAt(session, 0, session.length);
  if (outer === undefined || outer.tag !== SEQUENCE || outer.header + outer.length !== session.length) return undefined;
  const fields: Field[] = [];
  let offset = outer.header;
  while (offset < session.length) {
    const field = elementAt(session, offset, session.length);
    if (field === undefined) return undefined;
    const end = offset + field.header + field.length;
    fields.push({ tag: field.tag, start: offset, end, contentStart: offset + field.header });
    offset = end;
  }
  return fields;
}

/** The session's one `[3]` field, when it holds exactly one Certificate (a SEQUENCE); undefined otherwise. */
function peerCertificateField(session: Uint8Array, fields: Field[]): Field | undefined {
  const peer = fields.filter((f) => f.tag === PEER_CERTIFICATE);
  if (peer.length !== 1) return undefined;
  const { contentStart, end } = peer[0]!;
  const certificate = elementAt(session, contentStart, end);
  if (certificate === undefined || certificate.tag !== SEQUENCE || contentStart + certificate.header + certificate.length !== end) return undefined;
  return peer[0];
}

/**
 * Node 22 and later hand a client its session inside an envelope that binds it to the server
 * name: `"\0nodejs:tls:session:1\0"`, the name's length (2 bytes, big-endian), the name, then the
 * DER `SSL_SESSION`. Node 20 and every server-side session: the bare DER.
 */
const ENVELOPE = Buffer.from('\0nodejs:tls:session:1\0', 'latin1');

/** Where the DER `SSL_SESSION` starts in a session buffer (after Node's envelope, if any); undefined when the envelope is malformed. */
function derStart(session: Buffer): number | undefined {
  if (session.length === 0 || session[0] !== 0) return 0;
  if (session.length < ENVELOPE.length + 2 || !session.subarray(0, ENVELOPE.length).equals(ENVELOPE)) return undefined;
  const start = ENVELOPE.length + 2 + session.readUInt16BE(ENVELOPE.length);
  return start < session.length ? start : undefined;
}

/**
 * The DER of the peer certificate in a serialized session; undefined when the session holds none
 * or is not a well-formed `SSL_SESSION` (then read the certificate another way).
 */
export function sessionPeerCertificate(envelope: Buffer): Buffer | undefined {
  const start = derStart(envelope);
  if (start === undefined) return undefined;
  const session = envelope.subarray(start);
  const fields = fieldsOf(session);
  const peer = fields === undefined ? undefined : peerCertificateField(session, fields);
  return peer === undefined ? undefined : session.subarray(peer.contentStart, peer.end);
}

function lengthHeader(length: number): number[] {
  if (length < 0x80) return [length];
  if (length < 0x100) return [0x81, length];
  if (length < 0x10000) return [0x82, length >> 8, length & 0xff];
  return [0x83, length >> 16, (length >> 8) & 0xff, length & 0xff];
}

/** Whether the session's second field (`ssl_version INTEGER`) is TLS 1.3 (0x0304). */
function isTls13(session: Uint8Array, fields: Field[]): boolean {
  const version = fields[1];
  return version !== undefined && version.tag === INTEGER && version.end - version.contentStart === 2 && session[version.contentStart] === 0x03 && session[version.contentStart + 1] === 0x04;
}

/**
 * The session without its peer certificate (same bytes otherwise), for a client that resumes it:
 * OpenSSL resumes it the same way and skips decoding the certificate. TLS 1.3 sessions only: on a
 * resumed TLS 1.2 session Node takes a missing server certificate for a failed verification
 * (`unable to get issuer certificate`), while a resumed TLS 1.3 session never shows one. The
 * session unchanged when it is not TLS 1.3, holds no certificate or is not a well-formed `SSL_SESSION`.
 */
export function withoutPeerCertificate(envelope: Buffer): Buffer {
  const start = derStart(envelope);
  if (start === undefined) return envelope;
  const session = envelope.subarray(start);
  const fields = fieldsOf(session);
  if (fields === undefined || !isTls13(session, fields)) return envelope;
  // The same shape the reader accepts (one [3] holding one certificate), or the session as it is.
  const peer = peerCertificateField(session, fields);
  if (peer === undefined) return envelope;
  const kept = fields.filter((f) => f !== peer);
  const length = kept.reduce((sum, f) => sum + (f.end - f.start), 0);
  const header = [SEQUENCE, ...lengthHeader(length)];
  const out = Buffer.alloc(start + header.length + length);
  envelope.copy(out, 0, 0, start);
  out.set(header, start);
  let offset = start + header.length;
  for (const f of kept) {
    session.copy(out, offset, f.start, f.end);
    offset += f.end - f.start;
  }
  return out;
}
