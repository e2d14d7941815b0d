import type { Attributes, BatchObservableCallback, ObservableGauge } from '@opentelemetry/api';
import type { Credential } from './credential.js';
import { meshlessMetrics, type MeshlessMetrics } from './metrics.js';

/** Outcome of one reload attempt, as counted in `meshless.credential.reloads`. */
export type ReloadOutcome = 'success' | 'unchanged' | 'failure';

/**
 * The OpenTelemetry side of one file source: the reloads counter (by outcome and, for failures,
 * error code) and two observable gauges registered for this source until `close()`:
 * `meshless.credential.expiry_seconds` (seconds until the served leaf's notAfter, negative once
 * expired) and `meshless.credential.generation`. Attributes carry the source's location, never
 * key material.
 */
export class SourceMetrics {
  readonly #metrics: MeshlessMetrics;
  readonly #attributes: Attributes;
  readonly #expiry: ObservableGauge;
  readonly #generation: ObservableGauge;
  readonly #callback: BatchObservableCallback;
  #registered = false;

  constructor(location: string, current: () => Credential) {
    this.#metrics = meshlessMetrics();
    this.#attributes = { 'meshless.source': location };
    const meter = this.#metrics.meter;
    this.#expiry = meter.createObservableGauge('meshless.credential.expiry_seconds', {
      description: 'Seconds until the served certificate expires (negative once expired)',
      unit: 's',
    });
    this.#generation = meter.createObservableGauge('meshless.credential.generation', {
      description: 'Generation number of the served credential (1 at start, +1 per rotation)',
    });
    this.#callback = (result) => {
      const credential = current();
      const attributes = { ...this.#attributes, 'meshless.identity': String(credential.identity) };
      result.observe(this.#expiry, (credential.notAfter.getTime() - Date.now()) / 1000, attributes);
      result.observe(this.#generation, credential.generation, attributes);
    };
    meter.addBatchObservableCallback(this.#callback, [this.#expiry, this.#generation]);
    this.#registered = true;
  }

  /** Counts one reload attempt. */
  reload(outcome: ReloadOutcome, errorCode?: string): void {
    const attributes: Attributes = { ...this.#attributes, outcome };
    if (errorCode !== undefined) attributes['error.code'] = errorCode;
    this.#metrics.reloads.add(1, attributes);
  }

  /** Stops observing this source (its gauges disappear from the next collection). */
  close(): void {
    if (!this.#registered) return;
    this.#registered = false;
    this.#metrics.meter.removeBatchObservableCallback(this.#callback, [this.#expiry, this.#generation]);
  }
}
