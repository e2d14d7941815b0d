import type { TLSSocket } from 'node:tls';
import { MeshlessError, codes, type Authorizer, type Decision, type Peer, type RefusalClass } from '@meshless/core';

/** The verdict on one server connection. */
export type ServerCheck =
  | { readonly ok: true; readonly peer: Peer; readonly decision: Decision }
  | { readonly ok: false; readonly failure: RefusalClass; readonly error: MeshlessError; readonly peer?: Peer; readonly decision?: Decision };

export interface ServerCheckInput {
  /** `https://host[:port]`, for messages. */
  readonly origin: string;
  /** The identity the server proved: from its certificate (full handshake) or from the cached session (resumed). */
  readonly peer: Peer | undefined;
  readonly resumed: boolean;
  readonly authorize: Authorizer;
  readonly now: number;
}

/**
 * Checks the server of one new connection, full or resumed: OpenSSL's chain verdict, an identity,
 * a certificate still valid now, and the allow rules for the origin. Called once per connection,
 * before the socket is handed to undici; nothing of a request is written before it passes.
 */
export function checkServer(socket: TLSSocket, input: ServerCheckInput): ServerCheck {
  const { origin, peer, resumed } = input;
  const what = resumed ? 'resumed session' : 'certificate';
  if (!socket.authorized) {
    const presented = peer === undefined ? 'a certificate' : String(peer);
    return unverified(`server at ${origin} presented ${presented}, which does not verify to our trust bundle (${String(socket.authorizationError)})`, peer);
  }
  if (peer === undefined) {
    return unverified(
      resumed
        ? `server at ${origin} resumed a TLS session meshless did not verify; the connection was closed`
        : `server at ${origin} presented no certificate meshless could read`,
    );
  }
  if (peer.notAfter.getTime() <= input.now) {
    return unverified(`server at ${origin} presented ${String(peer)} on a ${what} whose certificate expired at ${peer.notAfter.toISOString()}`, peer);
  }
  const decision = input.authorize(peer);
  if (!decision.allowed) {
    const details: { peer: string; rule?: string } = { peer: String(peer) };
    if (decision.rule !== undefined) details.rule = decision.rule;
    const error = new MeshlessError(
      codes.PEER_DENIED,
      `server at ${origin} presented ${String(peer)}, which is not allowed: ${decision.reason}. ` +
        `If this server is the one you meant to call, add its identity to the agent's allow rules for ${origin}`,
      details,
    );
    return { ok: false, failure: 'denied', error, peer, decision };
  }
  return { ok: true, peer, decision };
}

function unverified(message: string, peer?: Peer): ServerCheck {
  const error = new MeshlessError(codes.PEER_UNVERIFIED, message, peer === undefined ? {} : { peer: String(peer) });
  return peer === undefined ? { ok: false, failure: 'unverified', error } : { ok: false, failure: 'unverified', error, peer };
}

/**
 * The error for a handshake Node refused after the server's certificate arrived: its chain does
 * not verify to our bundle (another CA, a self-signed impostor, an expired certificate).
 */
export function untrustedServerError(origin: string, peer: Peer | undefined, cause: Error & { code?: string }): MeshlessError {
  const presented = peer === undefined ? 'a certificate' : String(peer);
  const why = cause.code ?? cause.message;
  return new MeshlessError(
    codes.PEER_UNVERIFIED,
    `server at ${origin} presented ${presented}, which does not verify to our trust bundle (${why}: ${cause.message}). ` +
      'Either something else answers at this address (a proxy or a man in the middle), or our bundle lacks the CA that issued the server certificate',
    peer === undefined ? { cause } : { cause, peer: String(peer) },
  );
}

/** The error for a connection whose TCP connect and TLS handshake took longer than allowed. */
export function handshakeTimeoutError(origin: string, timeoutMs: number): MeshlessError {
  return new MeshlessError(
    codes.HANDSHAKE_TIMEOUT,
    `TLS handshake with ${origin} did not complete within ${timeoutMs} ms; check that the server is up and speaks TLS on that port (connectTimeout sets the limit)`,
  );
}
