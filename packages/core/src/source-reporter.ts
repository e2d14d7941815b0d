import type { EventEmitter } from 'node:events';
import type { Credential } from './credential.js';
import { channels } from './diagnostics.js';
import type { MeshlessError } from './errors.js';
import { SourceMetrics } from './file-source-metrics.js';
import { HealthTimer, sourceHealthState } from './health-timer.js';
import type { Logger } from './logger.js';
import type { Health, HealthState, Source, SourceEvents } from './source.js';

export interface SourceReporterOptions {
  /** The source reported on: it emits `update`, `error` and `health`, and is the `source` of the diagnostics channels' messages. */
  source: Source & EventEmitter<SourceEvents>;
  /** The generation the source serves; undefined before its first. */
  current: () => Credential | undefined;
  log: Logger;
  /** The `source` field of every log line, and the `meshless.source` attribute of the metrics. */
  label: string;
  /** What the source is, in the line logged when a listener throws (`file source`). */
  kind: string;
  renewAtShare: number;
  /** The credential's fields in the health log lines. */
  credentialFields: (credential: Credential) => Record<string, unknown>;
  /** An error's fields in the log lines. */
  errorFields: (err: MeshlessError) => Record<string, unknown>;
  /** When true, health is `expired` whatever the certificate says (a withdrawn identity). */
  forceExpired?: () => boolean;
}

/**
 * What a rotating source tells about the generation it serves (its last good credential): its
 * health (`fresh | stale | expiring | expired`, re-checked by a timer as time passes; a change is
 * logged, published on `meshless:source:health` and emitted as `health`), its reload counts and
 * gauges, a failed reload (the old generation stays: logged, published, emitted as `error` to
 * listeners only) and a new generation (published, emitted as `update`). A listener that throws
 * never breaks the source: its error is logged. The source keeps the credential itself and
 * decides what is good; this only reports.
 */
export class SourceReporter {
  /** The failure since the last good read; health is `stale` while it is set. */
  failure: MeshlessError | undefined;
  /** When the source last read successfully (`Health.lastReloadAt`). */
  lastReloadAt = new Date();
  readonly #options: SourceReporterOptions;
  readonly #healthTimer = new HealthTimer(() => this.updateHealth());
  #metrics: SourceMetrics | undefined;
  #healthState: HealthState = 'fresh';
  #closed = false;

  constructor(options: SourceReporterOptions) {
    this.#options = options;
  }

  /** The reload counter and gauges; undefined until `started()`. */
  get metrics(): SourceMetrics | undefined {
    return this.#metrics;
  }

  /** The first generation is served: its metrics start (one successful reload), its health is taken and its timer armed. */
  started(): void {
    const current = this.#options.current()!;
    this.#metrics = new SourceMetrics(this.#options.label, () => this.#options.current()!);
    this.#metrics.reload('success');
    this.#healthState = this.health(current).state;
    this.#healthTimer.schedule(current, this.#options.renewAtShare);
  }

  /** Warns when the first generation is not `fresh`. */
  logStartHealth(): void {
    if (this.#healthState === 'fresh') return;
    this.#options.log.warn({ source: this.#options.label, state: this.#healthState, ...this.#options.credentialFields(this.#options.current()!) }, `meshless: credential health is ${this.#healthState} at start`);
  }

  /** The health of `credential`, the generation served. */
  health(credential: Credential): Health {
    let state = sourceHealthState(credential, Date.now(), this.#options.renewAtShare, this.failure !== undefined);
    if (this.#options.forceExpired?.()) state = 'expired';
    return {
      state,
      notAfter: credential.notAfter,
      generation: credential.generation,
      lastReloadAt: this.lastReloadAt,
      ...(this.failure ? { lastError: this.failure } : {}),
    };
  }

  /** A new generation is served: published and emitted as `update`. */
  updated(credential: Credential, previous: Credential): void {
    channels.sourceUpdate.publish({ source: this.#options.source, credential, previous });
    this.#emitSafely('update', credential, previous);
  }

  /** A reload failed and the old generation stays: counted, logged (`fields` after `err`), published, emitted as `error`, health re-checked. */
  fail(err: MeshlessError, fields: Record<string, unknown>, message: string): void {
    const { source, log, label, errorFields } = this.#options;
    this.failure = err;
    this.#metrics?.reload('failure', err.code);
    log.warn({ source: label, err: errorFields(err), ...fields }, message);
    channels.sourceError.publish({ source, error: err });
    // An 'error' event with no listener would throw and crash the process: only emit to listeners.
    if (source.listenerCount('error') > 0) this.#emitSafely('error', err);
    this.updateHealth();
  }

  /** Re-arms the health timer and reports a change of state since the last report. */
  updateHealth(): void {
    const current = this.#options.current();
    if (this.#closed || current === undefined) return;
    const { source, log, label, renewAtShare, credentialFields, errorFields } = this.#options;
    this.#healthTimer.schedule(current, renewAtShare);
    const health = this.health(current);
    if (health.state === this.#healthState) return;
    this.#healthState = health.state;
    const fields = { source: label, state: health.state, ...credentialFields(current), ...(health.lastError ? { err: errorFields(health.lastError) } : {}) };
    if (health.state === 'fresh') log.info(fields, 'meshless: credential health is fresh');
    else log.warn(fields, `meshless: credential health is ${health.state}`);
    channels.sourceHealth.publish({ source, health });
    this.#emitSafely('health', health);
  }

  /** Stops the health timer and the gauges; nothing is reported afterwards. */
  close(): void {
    this.#closed = true;
    this.#healthTimer.stop();
    this.#metrics?.close();
  }

  /**
   * Emits to the application's listeners. A listener that throws must not break the source (the
   * new generation is already served, timers must be re-armed): its error is logged instead.
   */
  #emitSafely<K extends keyof SourceEvents>(event: K, ...args: SourceEvents[K]): void {
    try {
      (this.#options.source.emit as (event: K, ...args: SourceEvents[K]) => boolean).call(this.#options.source, event, ...args);
    } catch (err) {
      this.#options.log.error({ source: this.#options.label, event, listenerError: (err as Error)?.message ?? String(err) }, `meshless: a '${event}' listener of the ${this.#options.kind} threw; the source goes on`);
    }
  }
}
