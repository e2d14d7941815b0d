import type { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import tls, { type TLSSocket } from 'node:tls';
import { MeshlessError, clientTlsOptions, codes, type Credential } from '@meshless/core';
import { peerCertificateOf, sentChainOf } from '@meshless/core/internal';

/** Where to connect and how. */
export interface HandshakeTarget {
  host: string;
  port: number;
  alpn: string[];
  servername?: string;
  session?: Buffer;
  timeoutMs: number;
}

/** What one TLS handshake showed. */
export interface Handshake {
  socket: TLSSocket;
  ms: number;
  version: string | null;
  cipher: string;
  alpn: string | null;
  /** The server's chain as sent (leaf first); empty on a resumed TLS 1.3 session. */
  chain: X509Certificate[];
  /** OpenSSL's verdict against our bundle. */
  authorized: boolean;
  authorizationError?: string;
  resumed: boolean;
  /** Resolves with the first session ticket the server sends (TLS 1.3 sends it after the handshake). */
  session: Promise<Buffer | undefined>;
}

/** The chain the server sent, leaf first. */
function chainOf(socket: TLSSocket): X509Certificate[] {
  const leaf = peerCertificateOf(socket);
  return leaf === undefined ? [] : [leaf, ...sentChainOf(socket)];
}

/**
 * One TLS handshake presenting `credential`, trusting only its bundle. The server is NOT refused
 * here (no checkServerIdentity, rejectUnauthorized off): a probe shows who answered and why it
 * would be refused, and decides afterwards.
 */
export function handshake(credential: Credential, target: HandshakeTarget): Promise<Handshake> {
  const base = clientTlsOptions(credential, { allow: '*' });
  const started = performance.now();
  return new Promise((resolve, reject) => {
    let settled = false;
    let resolveSession!: (s: Buffer | undefined) => void;
    const session = new Promise<Buffer | undefined>((r) => (resolveSession = r));
    const socket = tls.connect({
      ...base,
      host: target.host,
      port: target.port,
      ALPNProtocols: target.alpn,
      rejectUnauthorized: false,
      checkServerIdentity: () => undefined,
      ...(target.servername ? { servername: target.servername } : isIP(target.host) ? {} : { servername: target.host }),
      ...(target.session ? { session: target.session } : {}),
    });
    socket.once('session', (s: Buffer) => resolveSession(s));
    socket.once('close', () => resolveSession(undefined));
    const timer = setTimeout(() => {
      fail(new MeshlessError(codes.HANDSHAKE_TIMEOUT, `no TLS handshake with ${target.host}:${target.port} within ${target.timeoutMs} ms; is it a TLS port, and is a firewall in the way?`));
    }, target.timeoutMs);
    function fail(err: Error) {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    }
    socket.once('error', fail);
    socket.once('secureConnect', () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.off('error', fail);
      const cipher = socket.getCipher();
      const out: Handshake = {
        socket,
        ms: performance.now() - started,
        version: socket.getProtocol(),
        cipher: cipher.standardName ?? cipher.name,
        alpn: socket.alpnProtocol || null,
        chain: chainOf(socket),
        authorized: socket.authorized,
        resumed: socket.isSessionReused(),
        session,
      };
      if (socket.authorizationError) out.authorizationError = String(socket.authorizationError);
      resolve(out);
    });
  });
}
