import type { Http2Session } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import { channels, type Authorizer, type Credential, type Logger, type MeshlessMetrics } from '@meshless/core';
import { SlicedSweep, setLongTimeout, type LongTimeout, type SweepStats } from '@meshless/core/internal';
import { connectionVerdict, type Verdict } from './connection-verdict.js';
import { grpc } from './grpc-js.js';
import { authorizedCall, refusedCall, sessionOf } from './intercepting-call.js';
import { retireSession } from './session-retire.js';

export interface CallGuardOptions {
  authorize: Authorizer;
  credential: Credential;
  logger: Logger;
  metrics: MeshlessMetrics;
  /** How long connections retired after a trust change may keep their open streams. */
  retireGraceMs: number;
}

/**
 * The server-wide check behind `serverCredentials`: a grpc-js server interceptor that the
 * credentials themselves install (grpc-js runs credential interceptors before the server's own),
 * so no server bound with these credentials can skip it.
 *
 * Per call: one WeakMap lookup (verdict cached on the HTTP/2 session, i.e. per TLS connection),
 * one comparison of the bundle hash and one of the peer's expiry, and two property stores on the
 * call (its cached AuthContext); nothing is allocated. The certificate is read and the
 * allow-list consulted once per connection.
 */
export class CallGuard {
  readonly #authorize: Authorizer;
  readonly #logger: Logger;
  readonly #metrics: MeshlessMetrics;
  readonly #retireGraceMs: number;
  #credential: Credential;
  #verdicts = new WeakMap<Http2Session, Verdict>();
  readonly #sessions = new Set<Http2Session>();
  /** After a trust or policy change: every open connection checked again, in slices across event-loop turns. */
  readonly #review = new SlicedSweep<Http2Session>(
    () => this.#sessions.values(),
    (session) => this.#reviewSession(session),
    (stats) => this.#reviewed(stats),
  );
  #retired = 0;
  /** What started the review in progress (for its log line); a trust change wins over a policy change. */
  #reviewCause: 'trust' | 'policy' = 'trust';
  #warnedNoConnection = false;
  readonly #expiryTimers = new WeakMap<Http2Session, LongTimeout>();

  constructor(options: CallGuardOptions) {
    this.#authorize = options.authorize;
    this.#credential = options.credential;
    this.#logger = options.logger;
    this.#metrics = options.metrics;
    this.#retireGraceMs = options.retireGraceMs;
  }

  /** The interceptor grpc-js runs first on every call. */
  readonly interceptor: grpc.ServerInterceptor = (method, call) => {
    const session = sessionOf(call);
    const verdict = session === undefined ? this.#noConnection() : this.#verdictOf(session);
    if (verdict.ok) return authorizedCall(call, verdict.authContext!);
    // A review in progress has not reached this connection yet and it no longer passes: retire
    // it now, as the review would (GOAWAY: the client's next calls go on a new connection).
    if (session !== undefined && this.#review.running) this.#retire(session);
    return this.#refuse(call, verdict, method.path);
  };

  /** Number of connections that have made a call and are still open. */
  get connectionCount(): number {
    return this.#sessions.size;
  }

  /**
   * Switches to a new generation. On a trust change (new bundle), every open connection is
   * checked again against the new bundle; those that no longer pass are retired (GOAWAY, open
   * streams may finish within the grace period). The check runs in slices across event-loop
   * turns, the first one before this returns (a few hundred connections: all of them); a call on
   * a connection not reached yet is checked on the spot (its cached verdict is of the old
   * bundle), so no call is admitted under the old trust, and a connection that fails is retired
   * there and then. A newer change restarts it.
   */
  update(credential: Credential): void {
    const trustChanged = credential.bundleHash !== this.#credential.bundleHash;
    this.#credential = credential;
    if (!trustChanged) return;
    this.#startReview('trust');
  }

  /**
   * The allow-list changed (a live policyFile): every open connection is authorized again; those
   * now denied are retired (GOAWAY, open streams may finish within the grace period). Every
   * cached verdict is dropped at once, so a call is never admitted under the old policy; the
   * retirements follow in slices across event-loop turns.
   */
  policyChanged(): void {
    this.#verdicts = new WeakMap();
    this.#startReview('policy');
  }

  #startReview(cause: 'trust' | 'policy'): void {
    this.#reviewCause = this.#review.running && this.#reviewCause === 'trust' ? 'trust' : cause;
    this.#retired = 0;
    this.#review.restart();
  }

  #reviewSession(session: Http2Session): void {
    if (session.closed || session.destroyed) return;
    if (!this.#verdictOf(session).ok) this.#retire(session);
  }

  /** Retires a connection whose peer no longer passes (GOAWAY; open streams get the grace period). */
  #retire(session: Http2Session): void {
    if (session.closed || session.destroyed) return;
    this.#retired++;
    retireSession(session, this.#retireGraceMs);
  }

  #reviewed(stats: SweepStats): void {
    const report = { side: 'server', protocol: 'grpc', generation: this.#credential.generation, connections: stats.visited, retired: this.#retired, slices: stats.slices, maxSliceMs: stats.maxSliceMs, maxSliceCpuMs: stats.maxSliceCpuMs, busyMs: stats.busyMs, durationMs: stats.durationMs, superseded: stats.superseded };
    const message = this.#reviewCause === 'trust' ? 'meshless grpc server: trust bundle changed; open connections checked again' : 'meshless grpc server: policy changed; open connections authorized again';
    this.#logger.info(report, message);
    if (channels.connectionsReviewed.hasSubscribers) channels.connectionsReviewed.publish(report);
  }

  #verdictOf(session: Http2Session): Verdict {
    const cached = this.#verdicts.get(session);
    if (cached !== undefined && cached.bundleHash === this.#credential.bundleHash && cached.expiresAt > Date.now()) return cached;
    const socket = session.destroyed ? undefined : (session.socket as TLSSocket | undefined);
    let verdict: Verdict;
    if (socket === undefined || typeof socket.getPeerX509Certificate !== 'function') {
      verdict = { ok: false, failure: 'unverified', code: grpc.status.UNAUTHENTICATED, reason: 'the connection is not a TLS connection, or is closed', resumed: false, bundleHash: this.#credential.bundleHash, expiresAt: Infinity };
    } else {
      verdict = connectionVerdict(socket, { authorize: this.#authorize, credential: this.#credential, now: Date.now() });
    }
    this.#verdicts.set(session, verdict);
    if (!this.#sessions.has(session)) this.#track(session);
    // Re-checked after a trust change with the same certificate: its expiry timer stands (no new timer per connection per change).
    if (verdict.ok && Number.isFinite(verdict.expiresAt) && !(cached?.ok === true && cached.expiresAt === verdict.expiresAt && this.#expiryTimers.has(session))) {
      this.#retireAtExpiry(session, verdict);
    }
    if (cached === undefined || cached.ok !== verdict.ok || cached.failure !== verdict.failure) {
      this.#report(verdict, socket?.remoteAddress);
    }
    return verdict;
  }

  #track(session: Http2Session): void {
    this.#sessions.add(session);
    session.once('close', () => {
      this.#sessions.delete(session);
      this.#expiryTimers.get(session)?.clear();
    });
  }

  /**
   * When the client's certificate reaches notAfter, its connection is retired like one whose
   * trust ended: GOAWAY, new calls refused (the verdict has expired), open streams cut after
   * `retireGraceMs`. One unref'd timer per connection (`setLongTimeout`: past setTimeout's 2^31 ms limit too).
   */
  #retireAtExpiry(session: Http2Session, verdict: Verdict): void {
    this.#expiryTimers.get(session)?.clear();
    const timer = setLongTimeout(() => {
      this.#expiryTimers.delete(session);
      if (session.closed || session.destroyed) return;
      this.#logger.info({ peer: String(verdict.peer), notAfter: new Date(verdict.expiresAt).toISOString() }, 'meshless grpc server: the client certificate expired; retiring its connection');
      retireSession(session, this.#retireGraceMs);
    }, verdict.expiresAt - Date.now());
    this.#expiryTimers.set(session, timer);
  }

  /**
   * If grpc-js ever stops exposing the call's HTTP/2 stream to interceptors, meshless cannot see
   * the connection, so it refuses every call (fail closed) and says why, once.
   */
  #noConnection(): Verdict {
    if (!this.#warnedNoConnection) {
      this.#warnedNoConnection = true;
      this.#logger.error({}, 'meshless grpc server: this @grpc/grpc-js version hides the HTTP/2 stream from interceptors, so the connection cannot be verified; every call is refused. Use @grpc/grpc-js 1.14');
    }
    return { ok: false, failure: 'unverified', code: grpc.status.UNAUTHENTICATED, reason: 'meshless cannot see the TLS connection of this call (unsupported @grpc/grpc-js version)', resumed: false, bundleHash: this.#credential.bundleHash, expiresAt: Infinity };
  }

  #refuse(call: grpc.ServerInterceptingCallInterface, verdict: Verdict, path: string): grpc.ServerInterceptingCall {
    this.#logger.debug({ peer: verdict.peer === undefined ? undefined : String(verdict.peer), method: path, failure: verdict.failure }, 'meshless grpc server: refused a call');
    const details =
      verdict.failure === 'denied'
        ? `meshless: ${String(verdict.peer)} is not allowed to call this server (${path})`
        : `meshless: ${verdict.reason}`;
    return refusedCall(call, verdict.code, details);
  }

  /** Once per connection (and again if its verdict changes): log line, metric, diagnostics channel. */
  #report(verdict: Verdict, remoteAddress: string | undefined): void {
    if (verdict.ok) {
      if (channels.peerAllowed.hasSubscribers) channels.peerAllowed.publish({ side: 'server', protocol: 'grpc', peer: verdict.peer, resumed: verdict.resumed });
      return;
    }
    const code = verdict.failure === 'denied' ? 'PERMISSION_DENIED' : 'UNAUTHENTICATED';
    this.#logger.warn(
      {
        failure: verdict.failure,
        peer: verdict.peer === undefined ? undefined : String(verdict.peer),
        serialNumber: verdict.peer?.serialNumber,
        rule: verdict.decision?.rule,
        reason: verdict.reason,
        status: code,
        remoteAddress,
        resumed: verdict.resumed,
      },
      `meshless grpc server: refusing calls from ${verdict.peer === undefined ? 'a client without a verified certificate' : String(verdict.peer)} with ${code}: ${verdict.reason}`,
    );
    this.#metrics.refusals.add(1, { side: 'server', protocol: 'grpc', failure: verdict.failure ?? 'unverified' });
    if (channels.peerRefused.hasSubscribers) {
      channels.peerRefused.publish({ side: 'server', protocol: 'grpc', peer: verdict.peer, decision: verdict.decision, failure: verdict.failure, reason: verdict.reason, remoteAddress });
    }
  }
}
