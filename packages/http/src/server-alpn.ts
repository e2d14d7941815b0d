import type { MeshlessError } from '@meshless/core';

/** The ALPN names an `https` (HTTP/1.x) server can serve. */
const HTTP1 = new Set(['http/1.1', 'http/1.0']);

/** The protocol names of an `ALPNProtocols` value: names, buffers of one name each, or the wire format. */
function alpnNames(value: unknown): string[] | undefined {
  if (Array.isArray(value)) return value.map((p) => (typeof p === 'string' ? p : p instanceof Uint8Array ? Buffer.from(p).toString('latin1') : String(p)));
  if (value instanceof Uint8Array) {
    const names: string[] = [];
    for (let i = 0; i < value.length; ) {
      const length = value[i]!;
      names.push(Buffer.from(value.subarray(i + 1, i + 1 + length)).toString('latin1'));
      i += 1 + length;
    }
    return names;
  }
  return undefined;
}

/**
 * createServer is an `https` server: it speaks HTTP/1.1. Offering `h2` (or any protocol other than
 * HTTP/1.x) in ALPN makes every client that prefers it (Go's net/http, curl --http2, browsers,
 * undici with allowH2) send HTTP/2 frames that the server cannot parse: their requests fail with
 * an unexpected EOF. Refused at construction, naming the protocol.
 */
export function checkAlpnProtocols(value: unknown, invalid: (field: string, message: string) => MeshlessError): void {
  if (value === undefined) return;
  const names = alpnNames(value);
  if (names === undefined) throw invalid('ALPNProtocols', 'ALPNProtocols must be an array of protocol names (or Node\'s ALPN wire format)');
  const other = names.filter((name) => !HTTP1.has(name));
  if (other.length > 0) {
    throw invalid(
      'ALPNProtocols',
      `ALPNProtocols offers ${other.map((n) => JSON.stringify(n)).join(', ')}, but createServer serves HTTP/1.1 only: clients that negotiate it (Go's net/http and curl --http2 choose h2) would fail. List only "http/1.1" (or leave ALPNProtocols out: Node selects http/1.1)`,
    );
  }
}
