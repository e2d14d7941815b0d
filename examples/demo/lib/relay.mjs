// A TCP relay on loopback that copies bytes between a client and a server and keeps what it
// saw, to show what is on the wire between two services.
import net from 'node:net';

const KEEP_PER_DIRECTION = 2 * 1024 * 1024;

/** Starts the relay in front of `target`; connections to `relay.port` are forwarded there. */
export async function startRelay(targetPort, targetHost = '127.0.0.1') {
  const connections = [];
  const sockets = new Set();
  const server = net.createServer((inbound) => {
    const record = { up: [], down: [], upBytes: 0, downBytes: 0 };
    connections.push(record);
    const outbound = net.connect(targetPort, targetHost);
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        inbound.destroy();
        outbound.destroy();
      });
    }
    const copy = (from, to, chunks, counter) =>
      from.on('data', (chunk) => {
        if (record[counter] < KEEP_PER_DIRECTION) chunks.push(Buffer.from(chunk));
        record[counter] += chunk.length;
        to.write(chunk);
      });
    copy(inbound, outbound, record.up, 'upBytes');
    copy(outbound, inbound, record.down, 'downBytes');
    inbound.on('end', () => outbound.end());
    outbound.on('end', () => inbound.end());
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    connections,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

const RECORD_TYPES = { 20: 'change_cipher_spec', 21: 'alert', 22: 'handshake', 23: 'application_data' };

/**
 * Reads a byte stream as TLS records (type, version, length, payload). Returns the counts per
 * record type, or the offset and reason where the stream stops being TLS.
 */
export function parseTlsRecords(bytes) {
  const counts = {};
  let offset = 0;
  while (offset + 5 <= bytes.length) {
    const type = bytes[offset];
    const version = bytes.readUInt16BE(offset + 1);
    const length = bytes.readUInt16BE(offset + 3);
    if (!RECORD_TYPES[type]) return { ok: false, counts, offset, reason: `byte ${offset} starts no TLS record (type 0x${type.toString(16)})` };
    if (version < 0x0301 || version > 0x0304) return { ok: false, counts, offset, reason: `record at ${offset} has version 0x${version.toString(16)}` };
    if (length > 16384 + 2048) return { ok: false, counts, offset, reason: `record at ${offset} is ${length} bytes long` };
    if (offset + 5 + length > bytes.length) break; // the kept bytes end inside this record
    counts[RECORD_TYPES[type]] = (counts[RECORD_TYPES[type]] ?? 0) + 1;
    offset += 5 + length;
  }
  return { ok: true, counts, offset };
}
