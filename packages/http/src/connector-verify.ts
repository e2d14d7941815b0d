import type { TLSSocket } from 'node:tls';
import { MeshlessError, codes, verifyPeer, type Authorizer, type Credential, type Peer, type PeerCheck, type PresentedChain } from '@meshless/core';
import { refusal } from '@meshless/core/internal';

/** The verdict on one server connection: core's one verifier's. */
export type ServerCheck = PeerCheck;

export interface ServerCheckInput {
  /** `https://host[:port]`, for messages. */
  readonly origin: string;
  /**
   * What the server proved: its certificate (full handshake) or, on a resumed session, the
   * certificate and path verified when the session was made. Undefined when nothing was readable.
   */
  readonly presented: PresentedChain | undefined;
  readonly resumed: boolean;
  readonly authorize: Authorizer;
  /** The credential in force: the bundles the server must verify to. */
  readonly credential: Credential;
  readonly now: number;
}

/**
 * Checks the server of one new connection, full or resumed: OpenSSL's chain verdict, then core's
 * verifier (chain against the bundle of the server's own trust domain, validity, identity, the
 * allow rules for the origin). Called once per connection, before the socket is handed to undici;
 * nothing of a request is written before it passes.
 */
export function checkServer(socket: TLSSocket, input: ServerCheckInput): ServerCheck {
  const { origin, presented, resumed } = input;
  const who = `server at ${origin}`;
  if (!socket.authorized) {
    const peer = presented?.peer;
    const shown = peer === undefined ? 'a certificate' : String(peer);
    return unverified(`${who} presented ${shown}, which does not verify to our trust bundle (${String(socket.authorizationError)})`, peer);
  }
  if (presented === undefined) {
    return unverified(resumed ? `${who} resumed a TLS session meshless did not verify; the connection was closed` : `${who} presented no certificate meshless could read`);
  }
  const check = verifyPeer(presented, { credential: input.credential, authorize: input.authorize, now: input.now, who });
  if (check.ok) return check;
  if (check.failure === 'denied') {
    const error = new MeshlessError(
      codes.PEER_DENIED,
      `${check.error.message}. If this server is the one you meant to call, add its identity to the agent's allow rules for ${origin}`,
      { ...(check.peer ? { peer: String(check.peer) } : {}), ...(check.decision?.rule !== undefined ? { rule: check.decision.rule } : {}) },
    );
    return { ...check, error };
  }
  if (resumed) return refusal(who, 'unverified', `resumed session: ${check.reason}`, check.peer, check.certificate, check.error.code);
  return check;
}

function unverified(message: string, peer?: Peer): ServerCheck {
  const error = new MeshlessError(codes.PEER_UNVERIFIED, message, peer === undefined ? {} : { peer: String(peer) });
  return peer === undefined ? { ok: false, failure: 'unverified', reason: message, error } : { ok: false, failure: 'unverified', reason: message, error, peer };
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
