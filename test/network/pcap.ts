import { readFileSync } from 'node:fs';

/** One TCP segment's payload from a pcap file. */
export interface Segment {
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  payload: Buffer;
}

/** Reads a classic pcap (Ethernet or Linux cooked) file into TCP payloads, in order. */
export function readPcap(file: string): { raw: Buffer; segments: Segment[] } {
  const raw = readFileSync(file);
  const segments: Segment[] = [];
  if (raw.length < 24) return { raw, segments };
  const magic = raw.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  const u32 = (o: number) => (le ? raw.readUInt32LE(o) : raw.readUInt32BE(o));
  const linkType = u32(20);
  let off = 24;
  while (off + 16 <= raw.length) {
    const incl = u32(off + 8);
    const frame = raw.subarray(off + 16, off + 16 + incl);
    off += 16 + incl;
    let ipOff: number;
    if (linkType === 1) ipOff = 14; // Ethernet
    else if (linkType === 113) ipOff = 16; // Linux cooked v1
    else if (linkType === 276) ipOff = 20; // Linux cooked v2
    else continue;
    if (frame.length < ipOff + 20 || frame[ipOff]! >> 4 !== 4) continue;
    const ihl = (frame[ipOff]! & 0x0f) * 4;
    if (frame[ipOff + 9] !== 6) continue; // TCP only
    const totalLen = frame.readUInt16BE(ipOff + 2);
    const tcpOff = ipOff + ihl;
    const dataOff = (frame[tcpOff + 12]! >> 4) * 4;
    const payload = frame.subarray(tcpOff + dataOff, ipOff + totalLen);
    if (payload.length === 0) continue;
    const addr = (o: number) => `${frame[o]}.${frame[o + 1]}.${frame[o + 2]}.${frame[o + 3]}`;
    segments.push({ src: addr(ipOff + 12), dst: addr(ipOff + 16), srcPort: frame.readUInt16BE(tcpOff), dstPort: frame.readUInt16BE(tcpOff + 2), payload });
  }
  return { raw, segments };
}

/** Concatenated payload of one direction. */
export function stream(segments: Segment[], dstPort: number): Buffer {
  return Buffer.concat(segments.filter((s) => s.dstPort === dstPort).map((s) => s.payload));
}

export interface TlsRecord {
  type: number;
  version: number;
  body: Buffer;
}

/** Splits a byte stream into TLS records; `rest` is what did not parse as records. */
export function tlsRecords(bytes: Buffer): { records: TlsRecord[]; rest: number } {
  const records: TlsRecord[] = [];
  let off = 0;
  while (off + 5 <= bytes.length) {
    const type = bytes[off]!;
    const version = bytes.readUInt16BE(off + 1);
    const len = bytes.readUInt16BE(off + 3);
    if (type < 20 || type > 24 || (version & 0xff00) !== 0x0300 || off + 5 + len > bytes.length) break;
    records.push({ type, version, body: bytes.subarray(off + 5, off + 5 + len) });
    off += 5 + len;
  }
  return { records, rest: bytes.length - off };
}

/** True when a ServerHello in these records selects TLS 1.3 (supported_versions = 0x0304). */
export function serverHelloIsTls13(records: TlsRecord[]): boolean {
  const hello = records.find((r) => r.type === 22 && r.body[0] === 2);
  return !!hello && hello.body.includes(Buffer.from([0x00, 0x2b, 0x00, 0x02, 0x03, 0x04]));
}
