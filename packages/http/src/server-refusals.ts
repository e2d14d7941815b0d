import type { TLSSocket } from 'node:tls';
import { MeshlessError, channels, codes, type Decision, type Logger, type MeshlessMetrics, type Peer, type RefusalClass } from '@meshless/core';

/**
 * Why a client was refused: `unverified` (no certificate, or one that does not verify to the
 * bundle), `denied` (verified, but the allow-list refuses it), `handshake` (the TLS handshake
 * itself failed: protocol version, cipher, not TLS at all) or `handshake-timeout`.
 */
export type ServerRefusalClass = RefusalClass | 'handshake' | 'handshake-timeout';

/** The payload of a server's `'peerRefused'` event. Never carries key material. */
export interface PeerRefusal {
  readonly failure: ServerRefusalClass;
  /** The identity the client presented, when it presented a certificate. */
  readonly peer?: Peer;
  /** The allow-list decision, for `denied` (its `rule` is the deny rule that matched, if any). */
  readonly decision?: Decision;
  /** A sentence for logs: what was presented and why it was refused. */
  readonly reason: string;
  readonly remoteAddress?: string;
  /** True when the client resumed a TLS session. */
  readonly resumed: boolean;
  /** The coded error (`MESHLESS_ERR_PEER_DENIED`, `…_PEER_UNVERIFIED`, `…_HANDSHAKE_TIMEOUT`). */
  readonly error: MeshlessError;
}

/** Reports refusals everywhere they are observable: log, metric, diagnostics channel, server event. */
export class RefusalReporter {
  constructor(
    private readonly logger: Logger,
    private readonly metrics: MeshlessMetrics,
    private readonly emit: (refusal: PeerRefusal) => void,
  ) {}

  report(refusal: PeerRefusal): void {
    const fields = {
      failure: refusal.failure,
      peer: refusal.peer === undefined ? undefined : String(refusal.peer),
      serialNumber: refusal.peer?.serialNumber,
      rule: refusal.decision?.rule,
      reason: refusal.reason,
      code: refusal.error.code,
      remoteAddress: refusal.remoteAddress,
      resumed: refusal.resumed,
    };
    const message = 'meshless server: refused a client';
    if (refusal.failure === 'denied' || refusal.failure === 'unverified') this.logger.warn(fields, message);
    else this.logger.info(fields, message);
    this.metrics.refusals.add(1, { side: 'server', failure: refusal.failure });
    if (channels.peerRefused.hasSubscribers) {
      channels.peerRefused.publish({
        side: 'server',
        peer: refusal.peer,
        decision: refusal.decision,
        failure: refusal.failure,
        reason: refusal.reason,
        remoteAddress: refusal.remoteAddress,
      });
    }
    this.emit(refusal);
  }
}

/** Error codes with which a client merely went away before finishing its handshake: not a refusal. */
const ABORTS = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ETIMEDOUT']);

/**
 * Turns a `tlsClientError` into a refusal, or undefined when the client just went away (a
 * connection reset before the handshake ended is logged at debug level, not counted).
 */
export function handshakeRefusal(err: Error & { code?: string }, socket: TLSSocket | undefined, remoteAddress: string | undefined): PeerRefusal | undefined {
  const code = err.code ?? 'UNKNOWN';
  const from = remoteAddress ? ` from ${remoteAddress}` : '';
  if (code === 'ERR_TLS_HANDSHAKE_TIMEOUT') {
    const reason = `TLS handshake${from} did not finish in time`;
    return { failure: 'handshake-timeout', reason, remoteAddress, resumed: false, error: new MeshlessError(codes.HANDSHAKE_TIMEOUT, `client refused: ${reason} (handshakeTimeoutMs)`) };
  }
  const authorizationError = socket?.authorizationError;
  if (authorizationError) {
    const reason = `client certificate does not verify: ${String(authorizationError)}`;
    return { failure: 'unverified', reason, remoteAddress, resumed: false, error: new MeshlessError(codes.PEER_UNVERIFIED, `client refused: ${reason}`) };
  }
  if (ABORTS.has(code)) return undefined;
  const reason = `TLS handshake${from} failed: ${describeTlsError(err, code)}`;
  return { failure: 'handshake', reason, remoteAddress, resumed: false, error: new MeshlessError(codes.PEER_UNVERIFIED, `client refused: ${reason}`) };
}

function describeTlsError(err: Error, code: string): string {
  switch (code) {
    case 'ERR_SSL_UNSUPPORTED_PROTOCOL':
    case 'ERR_SSL_WRONG_VERSION_NUMBER':
      return `the client's TLS version is not accepted (${code}); the server's minVersion is TLS 1.3 unless set to 'TLSv1.2'`;
    case 'ERR_SSL_HTTP_REQUEST':
      return `the client sent plain HTTP to the HTTPS port (${code})`;
    case 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE':
      return `the client sent no certificate (${code})`;
    case 'ERR_SSL_NO_SHARED_CIPHER':
      return `no cipher in common with the client (${code})`;
    default: {
      // OpenSSL messages look like "8000…:error:0A00009C:SSL routines:fn:reason:file:line:"; keep the reason.
      const parts = err.message.split(':');
      const what = parts.length >= 6 ? parts[parts.length - 4] : err.message;
      return `${what} (${code})`;
    }
  }
}
