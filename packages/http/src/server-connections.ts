import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Peer } from '@meshless/core';

/**
 * Why a live connection is retired: the peer no longer verifies against a new trust bundle
 * (`trust-changed`), a changed allow-list refuses it (`policy-changed`), its certificate reached
 * `notAfter` (`certificate-expired`), or it reached `maxConnectionAgeMs` (`max-age`).
 */
export type RetireReason = 'trust-changed' | 'policy-changed' | 'certificate-expired' | 'max-age';

/** The payload of a server's `'peerRetired'` event. */
export interface PeerRetirement {
  readonly peer: Peer;
  readonly reason: RetireReason;
  /** A sentence for logs. */
  readonly detail: string;
  readonly remoteAddress?: string;
  /** Requests still in flight on the connection: they complete, with `Connection: close`. */
  readonly inFlight: number;
}

/** One accepted connection: its verified peer, the bundle it was verified against, its requests. */
export interface LiveConnection {
  readonly socket: TLSSocket;
  readonly peer: Peer;
  readonly remoteAddress: string | undefined;
  /** `bundleHash` of the credential the peer was last verified against. */
  bundleHash: string;
  inFlight: number;
  /** The latest response on the connection (HTTP/1.1 answers in order: the last one closes it). */
  lastResponse: ServerResponse | undefined;
  retiring: RetireReason | undefined;
  timer: NodeJS.Timeout | undefined;
}

// setTimeout's limit; longer deadlines are re-armed.
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The live connections of one server, with graceful retirement: an idle keep-alive connection
 * ends at once; one with a request in flight answers it with `Connection: close`, then ends.
 */
export class ConnectionRegistry {
  readonly #connections = new Set<LiveConnection>();
  readonly #bySocket = new WeakMap<TLSSocket, LiveConnection>();

  constructor(
    private readonly maxConnectionAgeMs: number | undefined,
    private readonly onRetire: (connection: LiveConnection, retirement: PeerRetirement) => void,
  ) {}

  get size(): number {
    return this.#connections.size;
  }

  [Symbol.iterator](): IterableIterator<LiveConnection> {
    return this.#connections.values();
  }

  /** Starts tracking an accepted socket; arms its retirement at notAfter / max age. */
  add(socket: TLSSocket, peer: Peer, bundleHash: string, now = Date.now()): LiveConnection {
    const connection: LiveConnection = {
      socket,
      peer,
      remoteAddress: socket.remoteAddress,
      bundleHash,
      inFlight: 0,
      lastResponse: undefined,
      retiring: undefined,
      timer: undefined,
    };
    this.#connections.add(connection);
    this.#bySocket.set(socket, connection);
    socket.once('close', () => {
      if (connection.timer) clearTimeout(connection.timer);
      connection.timer = undefined;
      this.#connections.delete(connection);
    });
    const expiry = peer.notAfter.getTime();
    let deadline = expiry;
    let reason: RetireReason = 'certificate-expired';
    if (this.maxConnectionAgeMs !== undefined) {
      const aged = now + this.maxConnectionAgeMs * (0.9 + 0.2 * Math.random());
      if (aged < deadline) {
        deadline = aged;
        reason = 'max-age';
      }
    }
    this.#arm(connection, deadline, reason);
    return connection;
  }

  #arm(connection: LiveConnection, deadline: number, reason: RetireReason): void {
    const delay = Math.max(0, deadline - Date.now());
    const timer = setTimeout(() => {
      connection.timer = undefined;
      if (delay > MAX_TIMER_MS - 1) return this.#arm(connection, deadline, reason);
      const detail =
        reason === 'max-age'
          ? `connection of ${String(connection.peer)} reached maxConnectionAgeMs (${String(this.maxConnectionAgeMs)} ms, jittered)`
          : `certificate of ${String(connection.peer)} expired at ${connection.peer.notAfter.toISOString()}`;
      this.retire(connection, reason, detail);
    }, Math.min(delay, MAX_TIMER_MS - 1));
    timer.unref();
    connection.timer = timer;
  }

  /** Counts a request on its connection (call from the server's first `request` listener). */
  onRequest(req: IncomingMessage, res: ServerResponse): void {
    const connection = this.#bySocket.get(req.socket as TLSSocket);
    if (connection === undefined) return;
    connection.inFlight++;
    connection.lastResponse = res;
    if (connection.retiring !== undefined) res.setHeader('Connection', 'close');
    res.once('close', () => {
      connection.inFlight--;
      if (connection.lastResponse === res) connection.lastResponse = undefined;
      if (connection.retiring !== undefined && connection.inFlight === 0) endGracefully(connection.socket);
    });
  }

  /**
   * Retires a connection gracefully (once): idle, it ends now; busy, its latest response gets
   * `Connection: close` (when its headers are not sent yet) and the socket ends after it.
   */
  retire(connection: LiveConnection, reason: RetireReason, detail: string): void {
    if (connection.retiring !== undefined || connection.socket.destroyed) return;
    connection.retiring = reason;
    if (connection.timer) {
      clearTimeout(connection.timer);
      connection.timer = undefined;
    }
    this.onRetire(connection, { peer: connection.peer, reason, detail, remoteAddress: connection.remoteAddress, inFlight: connection.inFlight });
    if (connection.inFlight === 0) {
      endGracefully(connection.socket);
      return;
    }
    const res = connection.lastResponse;
    if (res !== undefined && !res.headersSent) res.setHeader('Connection', 'close');
  }
}

function endGracefully(socket: TLSSocket): void {
  if (socket.destroyed) return;
  // Sends TLS close_notify and FIN once pending writes are flushed, then destroys the socket.
  socket.destroySoon();
}
