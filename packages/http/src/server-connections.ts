import type { X509Certificate } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { codes, type Peer } from '@meshless/core';
import { SlicedSweep, type SweepStats } from '@meshless/core/internal';
import { Deadlines, type Deadline } from './deadlines.js';

/** Default `retireGraceMs` of the HTTP server: how long a revoked connection's in-flight responses may run. */
export const DEFAULT_RETIRE_GRACE_MS = 5_000;

/**
 * Why a live connection is retired: the peer no longer verifies against a new trust bundle
 * (`trust-changed`), a changed allow-list refuses it (`policy-changed`), its certificate reaches
 * `notAfter` (`certificate-expired`), or it reaches `maxConnectionAgeMs` (`max-age`).
 */
export type RetireReason = 'trust-changed' | 'policy-changed' | 'certificate-expired' | 'max-age';

/**
 * Retirements after which the peer is no longer trusted: no further request on the connection
 * reaches application code, and in-flight responses are cut after `retireGraceMs`.
 * (`certificate-expired` revokes at `notAfter`; its drain window before that stays graceful.)
 */
export type RevokeReason = Exclude<RetireReason, 'max-age'>;

/** The payload of a server's `'peerRetired'` event. */
export interface PeerRetirement {
  readonly peer: Peer;
  readonly reason: RetireReason;
  /** A sentence for logs. */
  readonly detail: string;
  readonly remoteAddress?: string;
  /**
   * Requests in flight on the connection when it was retired. They complete with
   * `Connection: close`; for `trust-changed` and `policy-changed` (and `certificate-expired`
   * once `notAfter` has passed) they are cut after `retireGraceMs`.
   */
  readonly inFlight: number;
  /** For a planned retirement (max age, certificate expiry): when the connection is closed at the latest. */
  readonly closesBy?: Date;
}

/** One accepted connection: its verified peer, the bundle it was verified against, its requests. */
export interface LiveConnection {
  readonly socket: TLSSocket;
  readonly peer: Peer;
  /** The client certificate as first read (with the chain the client sent), for re-verification. */
  readonly leaf: X509Certificate | undefined;
  readonly remoteAddress: string | undefined;
  /** `bundleHash` of the credential the peer was last verified against. */
  bundleHash: string;
  inFlight: number;
  /** The latest response on the connection (HTTP/1.1 answers in order: the last one closes it). */
  lastResponse: ServerResponse | undefined;
  retiring: RetireReason | undefined;
  /** Set once the peer is no longer trusted: every further request is refused, not handled. */
  revoked: RevokeReason | undefined;
  /** The client certificate's `notAfter` (ms): a request at or after it is refused. */
  readonly notAfterMs: number;
  /** Planned retirement: the moment the connection is closed even if idle. */
  closesBy: number | undefined;
  timer: Deadline | undefined;
  /** The planned retirement armed at accept (certificate notAfter or max age), and its deadline (ms). */
  plannedReason: 'certificate-expired' | 'max-age';
  plannedAt: number;
  /** The review (trust or policy change) this connection was last checked under. */
  reviewed: number;
}

/** What re-checking a live connection found: undefined while its peer still passes, else why it is revoked. */
export type ReviewVerdict = { readonly reason: 'trust-changed' | 'policy-changed'; readonly detail: string } | undefined;

/** Re-checks one live connection against the trust and policy in force (cheap: called for every connection). */
export type Recheck = (connection: LiveConnection) => ReviewVerdict;

/** Called for a request refused on a revoked connection (after its answer was written). */
export type RefusedRequestHandler = (connection: LiveConnection, req: IncomingMessage, status: number, code: string) => void;

/**
 * The live connections of one server, with retirement.
 *
 * Revoking (trust change, policy change, certificate past `notAfter`): no further request on
 * the connection reaches application code — {@link ConnectionRegistry.admit} answers it 401/403
 * with `Connection: close` instead; the socket stops being read; an idle connection ends at
 * once, a busy one ends after its in-flight responses, which are cut after `retireGraceMs`.
 *
 * Planned retirement (certificate `notAfter`, `maxConnectionAgeMs`) starts a drain window before
 * the deadline (the server's `keepAliveTimeout`, at most half the connection's span): every
 * response in it carries `Connection: close`, and a connection still idle at the deadline ends
 * then. A client that honours the server's `Keep-Alive: timeout` hint (undici does) has closed
 * an idle connection before that, so a busy client never sends a request into a closing socket.
 */
export class ConnectionRegistry {
  readonly #connections = new Set<LiveConnection>();
  readonly #bySocket = new WeakMap<TLSSocket, LiveConnection>();
  /** Every connection's next deadline, on one timer. */
  readonly #deadlines = new Deadlines();
  /** The current review; a connection whose `reviewed` differs is re-checked before anything else. */
  #epoch = 0;
  #recheck: Recheck | undefined;
  #onReviewed: ((stats: SweepStats) => void) | undefined;
  readonly #sweep = new SlicedSweep<LiveConnection>(
    () => this.#connections.values(),
    (connection) => this.#review(connection, true),
    (stats) => this.#onReviewed?.(stats),
  );

  /** The registry's `close` listener of every socket (`this` is the socket). */
  readonly #onSocketClose: (this: TLSSocket) => void;
  /** Starts a connection's planned retirement (its drain window begins). */
  readonly #onDrainStart = (connection: LiveConnection): void => {
    connection.timer = undefined;
    this.#startDrain(connection, connection.plannedReason, connection.plannedAt);
  };

  constructor(
    private readonly maxConnectionAgeMs: number | undefined,
    /** The drain window of a planned retirement (the server's current keepAliveTimeout). */
    private readonly drainWindowMs: () => number,
    private readonly onRetire: (connection: LiveConnection, retirement: PeerRetirement) => void,
    /** How long in-flight responses of a revoked connection may still run before it is destroyed. */
    private readonly retireGraceMs: number = DEFAULT_RETIRE_GRACE_MS,
    private readonly onRefusedRequest: RefusedRequestHandler = () => {},
  ) {
    const registry = this;
    this.#onSocketClose = function (this: TLSSocket): void {
      registry.#remove(this);
    };
  }

  #remove(socket: TLSSocket): void {
    const connection = this.#bySocket.get(socket);
    if (connection === undefined) return;
    this.#clearTimer(connection);
    this.#connections.delete(connection);
  }

  [Symbol.iterator](): IterableIterator<LiveConnection> {
    return this.#connections.values();
  }

  /** Starts tracking an accepted socket; arms its planned retirement (notAfter / max age). */
  add(socket: TLSSocket, peer: Peer, leaf: X509Certificate | undefined, bundleHash: string, now = Date.now()): LiveConnection {
    const connection: LiveConnection = {
      socket,
      peer,
      leaf,
      remoteAddress: socket.remoteAddress,
      bundleHash,
      inFlight: 0,
      lastResponse: undefined,
      retiring: undefined,
      revoked: undefined,
      notAfterMs: peer.notAfter.getTime(),
      closesBy: undefined,
      timer: undefined,
      plannedReason: 'certificate-expired',
      plannedAt: 0,
      // Checked at accept time against the trust and policy in force now.
      reviewed: this.#epoch,
    };
    this.#connections.add(connection);
    this.#bySocket.set(socket, connection);
    // One listener shared by every connection (no closure or once-wrapper per connection).
    socket.on('close', this.#onSocketClose);
    let deadline = connection.notAfterMs;
    let reason: 'certificate-expired' | 'max-age' = 'certificate-expired';
    if (this.maxConnectionAgeMs !== undefined) {
      // Jittered ±10 % so a fleet of connections opened together does not reconnect together.
      const aged = now + this.maxConnectionAgeMs * (0.9 + 0.2 * Math.random());
      if (aged < deadline) {
        deadline = aged;
        reason = 'max-age';
      }
    }
    const window = Math.max(0, Math.min(this.drainWindowMs(), (deadline - now) / 2));
    connection.plannedReason = reason;
    connection.plannedAt = deadline;
    // The registry's one drain-start function, with the connection as its argument: no closure per connection.
    connection.timer = this.#deadlines.add(deadline - window, this.#onDrainStart, connection);
    return connection;
  }

  /**
   * Decides, before application code sees it, whether a request may be handled (call it for
   * every `request` the server emits): false when its connection is revoked or its client
   * certificate has reached `notAfter` — the request has then been answered 401/403 with
   * `Connection: close`. Otherwise counts it on its connection. O(1): one WeakMap lookup.
   */
  admit(req: IncomingMessage, res: ServerResponse): boolean {
    const connection = this.#bySocket.get(req.socket as TLSSocket);
    if (connection === undefined) return true;
    // A review in progress has not reached this connection yet: check it now, before its request.
    if (connection.reviewed !== this.#epoch) this.#review(connection, false);
    const expired = connection.notAfterMs <= Date.now();
    if (expired && connection.revoked === undefined) this.#revokeExpired(connection, false);
    if (connection.revoked !== undefined || expired) {
      this.#refuse(connection, req, res);
      return false;
    }
    connection.inFlight++;
    connection.lastResponse = res;
    if (connection.retiring !== undefined) res.setHeader('Connection', 'close');
    // One shared listener, no closure per request: the hot path stays allocation-light.
    (res as ResponseWithConnection)[kConnection] = connection;
    res.on('close', onResponseClose);
    return true;
  }

  /**
   * For events that hand the raw socket to application code (`upgrade`, `connect`): false (and
   * the socket is destroyed) when its connection is revoked or its certificate has expired.
   */
  admitSocket(socket: TLSSocket): boolean {
    const connection = this.#bySocket.get(socket);
    if (connection === undefined) return true;
    if (connection.reviewed !== this.#epoch) this.#review(connection, true);
    if (connection.revoked === undefined && connection.notAfterMs <= Date.now()) this.#revokeExpired(connection);
    if (connection.revoked === undefined) return true;
    socket.destroy();
    return false;
  }

  /**
   * Re-checks every live connection after a trust or policy change, without stalling the server:
   * in slices of ~2 ms of work per event-loop turn (new handshakes and requests run in between),
   * the first one before this returns.
   * Order guarantees: a connection the review has not reached yet is re-checked before its next
   * request is admitted (so no request is handled under a stale verdict); a newer review
   * supersedes one in progress (it restarts from the first connection, and `recheck` always
   * decides with the newest trust and policy); a connection is revoked only on `recheck`'s
   * verdict. `onReviewed` runs once every live connection was checked under this review.
   */
  review(recheck: Recheck, onReviewed?: (stats: SweepStats) => void): void {
    this.#epoch++;
    this.#recheck = recheck;
    this.#onReviewed = onReviewed;
    this.#sweep.restart();
  }

  /** The server closed (every connection has ended): stops a review in progress and the deadline timer. */
  close(): void {
    this.#sweep.stop();
    this.#deadlines.clear();
  }

  /** One connection's re-check under the current review (no-op when already done). */
  #review(connection: LiveConnection, endIfIdle: boolean): void {
    if (connection.reviewed === this.#epoch) return;
    connection.reviewed = this.#epoch;
    // Gone, or already closing for trust, policy or expiry (a planned drain can still be overridden).
    if (connection.socket.destroyed || connection.revoked !== undefined) return;
    if (connection.retiring !== undefined && connection.closesBy === undefined) return;
    const verdict = this.#recheck?.(connection);
    if (verdict === undefined || !this.#mark(connection, verdict.reason, verdict.detail, undefined)) return;
    this.#revoke(connection, verdict.reason, endIfIdle);
  }

  /**
   * Revokes a connection at once (trust or policy change): no further request is handled; idle,
   * it ends now; busy, its latest response gets `Connection: close` (when its headers are not
   * sent yet), it ends after its in-flight responses, and is destroyed after `retireGraceMs`.
   */
  retire(connection: LiveConnection, reason: RevokeReason, detail: string): void {
    if (connection.revoked !== undefined || !this.#mark(connection, reason, detail, undefined)) return;
    this.#revoke(connection, reason);
  }

  /** `endIfIdle` false: the caller writes a refusal first, then ends the connection itself. */
  #revoke(connection: LiveConnection, reason: RevokeReason, endIfIdle = true): void {
    connection.revoked = reason;
    connection.retiring = reason;
    connection.closesBy = undefined;
    this.#clearTimer(connection);
    const socket = connection.socket;
    if (connection.inFlight === 0) {
      if (endIfIdle) endGracefully(socket);
      return;
    }
    // The socket is still read, so that an in-flight request's body can arrive within the grace;
    // the first request parsed after this is refused by admit(), which stops reading.
    this.#closeAfterResponse(connection);
    this.#at(connection, Date.now() + this.retireGraceMs, () => socket.destroy());
  }

  /** The client certificate reached notAfter: revoke (reported already if a drain had begun). */
  #revokeExpired(connection: LiveConnection, endIfIdle = true): void {
    if (connection.socket.destroyed) return;
    const detail = `certificate of ${String(connection.peer)} expired at ${connection.peer.notAfter.toISOString()}`;
    if (connection.retiring !== 'certificate-expired' && !this.#mark(connection, 'certificate-expired', detail, undefined)) return;
    this.#revoke(connection, 'certificate-expired', endIfIdle);
  }

  #refuse(connection: LiveConnection, req: IncomingMessage, res: ServerResponse): void {
    const reason = connection.revoked ?? 'certificate-expired';
    const denied = reason === 'policy-changed';
    const status = denied ? 403 : 401;
    const code = denied ? codes.PEER_DENIED : reason === 'certificate-expired' ? codes.CERT_EXPIRED : codes.PEER_UNVERIFIED;
    const socket = connection.socket;
    if (!socket.writable) {
      // Already ending (an idle connection revoked a moment ago): nothing more goes out, nothing is handled.
      socket.destroy();
      this.onRefusedRequest(connection, req, status, code);
      return;
    }
    const text = JSON.stringify({ error: denied ? 'forbidden' : 'unauthorized', code });
    // Answer without reading the body: the socket is not read any further.
    res.shouldKeepAlive = false;
    res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text), Connection: 'close' });
    res.end(req.method === 'HEAD' ? undefined : text);
    connection.socket.pause();
    this.onRefusedRequest(connection, req, status, code);
    // Nothing of ours in flight: the answer is the last thing written.
    if (connection.inFlight === 0) endGracefully(connection.socket);
  }

  #startDrain(connection: LiveConnection, reason: RetireReason, deadline: number): void {
    const detail =
      reason === 'max-age'
        ? `connection of ${String(connection.peer)} reaches maxConnectionAgeMs (${String(this.maxConnectionAgeMs)} ms, jittered) at ${new Date(deadline).toISOString()}`
        : `certificate of ${String(connection.peer)} expires at ${connection.peer.notAfter.toISOString()}`;
    if (!this.#mark(connection, reason, detail, deadline)) return;
    this.#closeAfterResponse(connection);
    this.#at(connection, deadline, () => {
      // At notAfter the peer is no longer trusted: the drain ends in a revocation.
      if (reason === 'certificate-expired') this.#revokeExpired(connection);
      else if (connection.inFlight === 0) endGracefully(connection.socket);
      else this.#closeAfterResponse(connection);
    });
  }

  /**
   * Marks a connection retiring and reports it; false when it already was (or is gone). A trust
   * or policy retirement overrides a planned one in progress.
   */
  #mark(connection: LiveConnection, reason: RetireReason, detail: string, closesBy: number | undefined): boolean {
    if (connection.socket.destroyed) return false;
    if (connection.retiring !== undefined && (closesBy !== undefined || connection.closesBy === undefined)) return false;
    connection.retiring = reason;
    connection.closesBy = closesBy;
    this.#clearTimer(connection);
    this.onRetire(connection, {
      peer: connection.peer,
      reason,
      detail,
      remoteAddress: connection.remoteAddress,
      inFlight: connection.inFlight,
      ...(closesBy === undefined ? {} : { closesBy: new Date(closesBy) }),
    });
    return true;
  }

  #closeAfterResponse(connection: LiveConnection): void {
    const res = connection.lastResponse;
    if (res !== undefined && !res.headersSent) res.setHeader('Connection', 'close');
  }

  /** The connection's next deadline (one at a time), on the registry's shared timer. */
  #at(connection: LiveConnection, when: number, fire: () => void): void {
    this.#clearTimer(connection);
    connection.timer = this.#deadlines.add(when, () => {
      connection.timer = undefined;
      fire();
    });
  }

  #clearTimer(connection: LiveConnection): void {
    this.#deadlines.cancel(connection.timer);
    connection.timer = undefined;
  }
}

const kConnection = Symbol('meshless.connection');
type ResponseWithConnection = ServerResponse & { [kConnection]?: LiveConnection };

function onResponseClose(this: ResponseWithConnection): void {
  const connection = this[kConnection];
  if (connection === undefined) return;
  this[kConnection] = undefined;
  connection.inFlight--;
  if (connection.lastResponse === this) connection.lastResponse = undefined;
  if (connection.retiring === undefined || connection.inFlight > 0) return;
  // Told the client to close, or retired for trust/policy: end now. Otherwise (the headers had
  // gone out before a planned retirement began), the retirement ends it at its deadline.
  if (this.getHeader('connection') === 'close' || connection.closesBy === undefined) endGracefully(connection.socket);
}

function endGracefully(socket: TLSSocket): void {
  if (socket.destroyed) return;
  // Sends TLS close_notify and FIN once pending writes are flushed, then destroys the socket.
  socket.destroySoon();
}
