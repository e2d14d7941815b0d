import { EventEmitter } from 'node:events';
import grpc from '@grpc/grpc-js';
import {
  MeshlessError,
  codes,
  isMeshlessError,
  loggerOf,
  meshlessMetrics,
  type Credential,
  type Health,
  type Logger,
  type Source,
  type SourceEvents,
} from '@meshless/core';
import { SourceReporter } from '@meshless/core/internal';
import type { WorkloadApiAddress } from './address.js';
import { Backoff } from './backoff.js';
import { workloadApiChannels } from './diagnostics.js';
import type { ResolvedOptions } from './options.js';
import { ProtoError, decodeX509SvidResponse } from './proto.js';
import { openX509SvidStream, type CallEnd, type X509SvidStream } from './stream.js';
import { buildCredential } from './svid.js';

/** A Source fed by the SPIFFE Workload API; also tells where it reads from and what it picked. */
export interface WorkloadApiSource extends Source {
  /** The address as configured (option or `SPIFFE_ENDPOINT_SOCKET`). */
  readonly address: string;
  /** Hint of the SVID served (`''` when it has none). */
  readonly hint: string;
  /** True while a stream is open and has delivered a message since it opened. */
  readonly connected: boolean;
}

/** Backoff cap while waiting for the first SVID. */
const START_BACKOFF_CAP_MS = 5000;

/** Codes the source never retries: the server will not answer otherwise. */
const NOT_RETRIED = new Set<number>([grpc.status.INVALID_ARGUMENT, grpc.status.UNIMPLEMENTED]);

function errorFields(err: MeshlessError): Record<string, unknown> {
  return { code: err.code, message: err.message, ...(err.field ? { field: err.field } : {}) };
}

function credentialFields(c: Credential): Record<string, unknown> {
  return { generation: c.generation, identity: String(c.identity), serialNumber: c.leaf.serialNumber, notAfter: c.notAfter.toISOString(), trustDomains: [...c.bundles.keys()] };
}

function endText(end: CallEnd | undefined): string {
  if (end === undefined) return 'no answer yet';
  return `${end.codeName}${end.details ? ` (${end.details})` : ''}`;
}

export class WorkloadApiSourceImpl extends EventEmitter<SourceEvents> implements WorkloadApiSource {
  readonly address: string;
  readonly #where: WorkloadApiAddress;
  readonly #label: string;
  readonly #options: ResolvedOptions;
  readonly #log: Logger;
  readonly #backoff: Backoff;
  readonly #report: SourceReporter;
  readonly #streamEvents: ReturnType<typeof meshlessMetrics>['reloads'];
  #current: Credential | undefined;
  #hint = '';
  #anchorIdentity = '';
  #withdrawn = false;
  #stream: X509SvidStream | undefined;
  #messagesThisCall = 0;
  #attempt = 0;
  #retryTimer: NodeJS.Timeout | undefined;
  #firstTimer: NodeJS.Timeout | undefined;
  #fatal: MeshlessError | undefined;
  #lastEnd: CallEnd | undefined;
  #lastRefusal: MeshlessError | undefined;
  #closed = false;
  #start: { resolve: () => void; reject: (err: MeshlessError) => void } | undefined;
  #waiters: Array<() => void> = [];

  constructor(where: WorkloadApiAddress, options: ResolvedOptions) {
    super();
    this.#where = where;
    this.address = where.address;
    this.#label = `the Workload API at ${where.address}`;
    this.#options = options;
    this.#log = loggerOf(options.logger);
    this.#backoff = new Backoff(options.initialBackoffMs, options.maxBackoffMs);
    this.#report = new SourceReporter({
      source: this,
      current: () => this.#current,
      log: this.#log,
      label: this.address,
      kind: 'Workload API source',
      renewAtShare: options.renewAtShare,
      credentialFields,
      errorFields,
      forceExpired: () => this.#withdrawn && this.#options.onWithdrawn === 'expire',
    });
    this.#streamEvents = meshlessMetrics().meter.createCounter('meshless.workload_api.streams', {
      description: 'Workload API stream events, by event (connected, disconnected) and gRPC status',
    });
  }

  get hint(): string {
    return this.#hint;
  }

  get connected(): boolean {
    return this.#stream !== undefined && this.#messagesThisCall > 0;
  }

  /** Connects; resolves on the first valid SVID, rejects on a refused call or after firstUpdateTimeoutMs. */
  start(): Promise<void> {
    const started = new Promise<void>((resolve, reject) => (this.#start = { resolve, reject }));
    // Ref'd on purpose: `await workloadApiSource()` holds the process until it settles.
    this.#firstTimer = setTimeout(() => {
      this.#firstTimer = undefined;
      this.#failStart(this.#timeoutError());
    }, this.#options.firstUpdateTimeoutMs);
    this.#connect();
    return started;
  }

  current(): Credential {
    if (this.#current === undefined) throw new MeshlessError(codes.SOURCE_CLOSED, `${this.#label} has served no SVID`);
    return this.#current;
  }

  health(): Health {
    return this.#report.health(this.current());
  }

  /**
   * The stream pushes every change, so a connected source is already current. Otherwise (waiting
   * to reconnect, or stopped after a refused call) it reconnects now and resolves after the
   * attempt: a message handled, or the call ended.
   */
  async reload(): Promise<Credential> {
    if (this.#closed) throw new MeshlessError(codes.SOURCE_CLOSED, `the Workload API source for ${this.address} is closed; create a new one`);
    // An open stream that has delivered is current by construction (every change is pushed).
    if (this.connected) return this.current();
    const settled = new Promise<void>((resolve) => this.#waiters.push(resolve));
    if (this.#stream === undefined) {
      if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer);
      this.#retryTimer = undefined;
      this.#fatal = undefined;
      this.#connect();
    }
    let bound: NodeJS.Timeout | undefined;
    await Promise.race([settled, new Promise<void>((r) => (bound = setTimeout(r, this.#options.firstUpdateTimeoutMs).unref()))]);
    clearTimeout(bound);
    return this.current();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stream?.cancel();
    this.#stream = undefined;
    for (const t of [this.#retryTimer, this.#firstTimer]) if (t !== undefined) clearTimeout(t);
    this.#retryTimer = this.#firstTimer = undefined;
    this.#report.close();
    this.#failStart(new MeshlessError(codes.SOURCE_CLOSED, `the Workload API source for ${this.address} was closed before the first SVID arrived`));
    this.#settleWaiters();
    this.#log.debug({ source: this.address }, 'meshless: Workload API source closed');
  }

  // ---- the stream ------------------------------------------------------------------------

  #connect(): void {
    if (this.#closed) return;
    this.#attempt++;
    this.#messagesThisCall = 0;
    const attempt = this.#attempt;
    this.#stream = openX509SvidStream(this.#where.target, {
      onConnected: () => {
        this.#streamEvents.add(1, { 'meshless.source': this.address, event: 'connected' });
        workloadApiChannels.connected.publish({ source: this, address: this.address, attempt });
        this.#log.debug({ source: this.address, attempt }, 'meshless: Workload API stream open');
      },
      onMessage: (bytes) => this.#onMessage(bytes),
      onEnd: (end) => this.#onEnd(end),
    });
  }

  #onEnd(end: CallEnd): void {
    this.#stream = undefined;
    this.#lastEnd = end;
    const delivered = this.#messagesThisCall;
    this.#messagesThisCall = 0;
    const retry = !NOT_RETRIED.has(end.code);
    // Before the first SVID the cap is lower: a start that waits for its registration entry (or
    // for the agent) notices it within seconds, well inside firstUpdateTimeoutMs.
    const retryInMs = retry ? this.#backoff.next(this.#current === undefined ? START_BACKOFF_CAP_MS : undefined) : undefined;
    this.#streamEvents.add(1, { 'meshless.source': this.address, event: 'disconnected', 'rpc.grpc.status_code': end.codeName });
    workloadApiChannels.disconnected.publish({ source: this, address: this.address, code: end.codeName, details: end.details, retry, ...(retryInMs === undefined ? {} : { retryInMs }) });
    const fields = { source: this.address, status: end.codeName, details: end.details, messages: delivered, ...(retryInMs === undefined ? {} : { retryInMs }) };

    if (!retry) {
      const err = new MeshlessError(
        codes.WORKLOAD_API_CALL_REFUSED,
        `${this.#label} refused FetchX509SVID with ${endText(end)}; not retried: ${end.code === grpc.status.UNIMPLEMENTED ? 'the endpoint does not implement the X.509-SVID profile of the SPIFFE Workload API (is the address a SPIFFE Workload API socket?)' : 'check that nothing between us and the agent strips the workload.spiffe.io header, and the agent version'}. reload() tries again`,
        { field: 'address' },
      );
      this.#fatal = err;
      this.#log.error({ ...fields, err: errorFields(err) }, 'meshless: Workload API call refused; not retrying');
      if (this.#current === undefined) this.#failStart(err);
      else this.#fail(err);
      this.#settleWaiters();
      return;
    }

    if (this.#current !== undefined) {
      if (end.code === grpc.status.PERMISSION_DENIED) {
        this.#withdraw(`${this.#label} withdrew our identity (PermissionDenied: ${end.details || 'no identity issued'})`);
      } else if (delivered > 0) {
        // A stream that served us ended: reconnect first; report only if that fails.
        this.#log.info(fields, 'meshless: Workload API stream ended; reconnecting');
      } else if (this.#report.failure?.code !== codes.WORKLOAD_API_UNAVAILABLE && this.#report.failure?.code !== codes.IDENTITY_WITHDRAWN) {
        this.#fail(new MeshlessError(
          codes.WORKLOAD_API_UNAVAILABLE,
          `${this.#label} cannot be reached (${endText(end)}); still serving generation ${this.#current.generation} (${String(this.#current.identity)}, valid until ${this.#current.notAfter.toISOString()}) and reconnecting with backoff. Check that the agent is running and its socket is mounted`,
          { field: 'address' },
        ));
      } else {
        this.#log.debug(fields, 'meshless: Workload API still unreachable');
      }
    } else {
      this.#log.debug(fields, 'meshless: Workload API has not served an SVID yet; retrying');
    }
    this.#scheduleRetry(retryInMs!);
    this.#settleWaiters();
  }

  #scheduleRetry(delay: number): void {
    if (this.#closed) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#connect();
    }, delay);
    this.#retryTimer.unref();
  }

  #onMessage(bytes: Buffer): void {
    this.#messagesThisCall++;
    this.#backoff.reset();
    const startedAt = performance.now();
    let built: ReturnType<typeof buildCredential>;
    try {
      let message;
      try {
        message = decodeX509SvidResponse(bytes);
      } catch (err) {
        if (!(err instanceof ProtoError)) throw err;
        throw new MeshlessError(codes.WORKLOAD_API_MESSAGE_INVALID, `a message from ${this.#label} is not a valid X509SVIDResponse (${err.message}); the last good SVID keeps serving`);
      }
      const { hint, pick, expectIdentity, clockSkewMs } = this.#options;
      built = buildCredential(message, { label: this.#label, hint, pick, expectIdentity, clockSkewMs, generation: (this.#current?.generation ?? 0) + 1 });
      if (this.#current !== undefined) this.#checkIdentity(built.credential);
    } catch (err) {
      const refused = isMeshlessError(err)
        ? err
        : new MeshlessError(codes.WORKLOAD_API_MESSAGE_INVALID, `a message from ${this.#label} could not be handled: ${(err as Error)?.message ?? String(err)}`, { cause: err });
      this.#refuse(refused);
      return;
    }
    this.#accept(built, performance.now() - startedAt);
  }

  #accept(built: ReturnType<typeof buildCredential>, handleMs: number): void {
    const { credential } = built;
    const previous = this.#current;
    this.#report.lastReloadAt = new Date();
    const recovered = this.#report.failure;
    this.#report.failure = undefined;
    this.#withdrawn = false;
    for (const notice of credential.notices) this.#log.info({ source: this.address, notice }, `meshless: ${notice}`);
    if (previous === undefined) {
      this.#current = credential;
      this.#hint = built.hint;
      this.#anchorIdentity = String(credential.identity);
      this.#report.started();
      workloadApiChannels.message.publish({ source: this, address: this.address, outcome: 'update', generation: credential.generation, spiffeId: credential.identity.spiffeId });
      this.#log.info({ source: this.address, ...credentialFields(credential), svid: built.index, hint: built.hint, offered: built.offered }, 'meshless: SVID received from the Workload API');
      this.#report.logStartHealth();
      if (this.#firstTimer !== undefined) clearTimeout(this.#firstTimer);
      this.#firstTimer = undefined;
      const start = this.#start;
      this.#start = undefined;
      start?.resolve();
      this.#settleWaiters();
      return;
    }
    if (credential.contentHash === previous.contentHash) {
      this.#report.metrics?.reload('unchanged');
      workloadApiChannels.message.publish({ source: this, address: this.address, outcome: 'unchanged', generation: previous.generation, spiffeId: previous.identity.spiffeId });
      if (recovered) this.#log.info({ source: this.address, ...credentialFields(previous) }, 'meshless: Workload API serving again (unchanged)');
      this.#report.updateHealth();
      this.#settleWaiters();
      return;
    }
    this.#current = credential;
    this.#hint = built.hint;
    this.#report.metrics?.reload('success');
    const trustChanged = credential.bundleHash !== previous.bundleHash;
    this.#log.info(
      { source: this.address, ...credentialFields(credential), previousGeneration: previous.generation, svid: built.index, hint: built.hint, trustChanged, handleMs: Math.round(handleMs * 10) / 10 },
      'meshless: credential rotated (Workload API)',
    );
    workloadApiChannels.message.publish({ source: this, address: this.address, outcome: 'update', generation: credential.generation, spiffeId: credential.identity.spiffeId });
    this.#report.updated(credential, previous);
    this.#report.updateHealth();
    this.#settleWaiters();
  }

  #refuse(err: MeshlessError): void {
    workloadApiChannels.message.publish({ source: this, address: this.address, outcome: 'refused', generation: this.#current?.generation ?? 0, code: err.code });
    if (this.#current === undefined) {
      this.#lastRefusal = err;
      this.#log.warn({ source: this.address, err: errorFields(err) }, 'meshless: Workload API message refused before the first SVID; waiting for the next one');
      this.#settleWaiters();
      return;
    }
    if (err.code === codes.WORKLOAD_API_SVID_NOT_FOUND) this.#withdrawn = true;
    this.#fail(err);
    this.#settleWaiters();
  }

  #withdraw(why: string): void {
    this.#withdrawn = true;
    if (this.#report.failure?.code === codes.IDENTITY_WITHDRAWN) {
      this.#report.updateHealth();
      return;
    }
    const c = this.#current!;
    const keep = this.#options.onWithdrawn === 'keep';
    this.#fail(new MeshlessError(
      codes.IDENTITY_WITHDRAWN,
      `${why}. ${keep ? `Still serving ${String(c.identity)} until it expires at ${c.notAfter.toISOString()} (onWithdrawn: 'keep')` : `Health is now 'expired' so readiness fails (onWithdrawn: 'expire')`}; reconnecting with backoff. Check the workload's registration entries (spire-server entry show) if this was not intended`,
      { field: 'address', peer: String(c.identity) },
    ));
  }

  #checkIdentity(candidate: Credential): void {
    const { expectIdentity, allowIdentityChange } = this.#options;
    if (expectIdentity !== undefined || allowIdentityChange) return;
    const identity = String(candidate.identity);
    if (identity === this.#anchorIdentity) return;
    throw new MeshlessError(
      codes.IDENTITY_MISMATCH,
      `${this.#label} now serves ${identity}, not ${this.#anchorIdentity}, the identity this source started with; the rotation is refused. Pass expectIdentity (the rules a new identity must match), allowIdentityChange: true, or hint/pick to choose among several SVIDs`,
      { field: 'svids', peer: identity },
    );
  }

  #fail(err: MeshlessError): void {
    this.#report.fail(err, { servingGeneration: this.#current?.generation }, `meshless: Workload API update failed; still serving generation ${this.#current?.generation}`);
  }

  // ---- start -----------------------------------------------------------------------------

  #timeoutError(): MeshlessError {
    const refusal = this.#lastRefusal ? ` The last message was refused: ${this.#lastRefusal.code}: ${this.#lastRefusal.message}.` : '';
    const denied = this.#lastEnd?.code === grpc.status.PERMISSION_DENIED;
    const checks = denied
      ? 'the agent answers but has no identity for this workload: is it registered (spire-server entry show; the selectors must match this pod, e.g. k8s:ns and k8s:sa), and has the agent synced its entries?'
      : this.#where.transport === 'unix'
        ? `is the SPIRE agent running, and is its socket mounted at ${this.#where.target.slice('unix://'.length)} in this container (SPIFFE CSI driver volume or hostPath)? Is this workload registered?`
        : 'is the agent listening there, and is this workload registered?';
    return new MeshlessError(
      codes.WORKLOAD_API_TIMEOUT,
      `no valid X.509-SVID from ${this.#label} within ${this.#options.firstUpdateTimeoutMs} ms (${this.#attempt} attempt${this.#attempt === 1 ? '' : 's'}; last gRPC status: ${endText(this.#lastEnd)}).${refusal} Check: ${checks}`,
      { field: 'address', ...(this.#lastRefusal ? { cause: this.#lastRefusal } : {}) },
    );
  }

  #failStart(err: MeshlessError): void {
    const start = this.#start;
    if (start === undefined) return;
    this.#start = undefined;
    this.#closed = true;
    this.#stream?.cancel();
    this.#stream = undefined;
    for (const t of [this.#retryTimer, this.#firstTimer]) if (t !== undefined) clearTimeout(t);
    this.#retryTimer = this.#firstTimer = undefined;
    start.reject(err);
  }

  // ---- reload() waiters ------------------------------------------------------------------

  #settleWaiters(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
}
