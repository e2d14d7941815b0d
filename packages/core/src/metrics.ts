import { createRequire } from 'node:module';
import type * as Otel from '@opentelemetry/api';
import type { Counter, Meter } from '@opentelemetry/api';

/**
 * OpenTelemetry instruments. No-ops until the application installs a MeterProvider; the meter
 * is looked up when a source or server is created, so install the provider first.
 */
export interface MeshlessMetrics {
  meter: Meter;
  reloads: Counter;
  refusals: Counter;
}

export function meshlessMetrics(): MeshlessMetrics {
  const meter = otelApiInUse() ? (createRequire(import.meta.url)('@opentelemetry/api') as typeof Otel).metrics.getMeter('meshless') : NOOP_METER;
  return {
    meter,
    reloads: meter.createCounter('meshless.credential.reloads', { description: 'Credential reloads, by outcome (success, failure, unchanged)' }),
    refusals: meter.createCounter('meshless.peer.refusals', { description: 'Peers refused, by side and failure class' }),
  };
}

/**
 * Every copy of @opentelemetry/api 1.x registers itself under this global symbol when anything is
 * installed through it (a MeterProvider…). Until then, getMeter returns a no-op meter: meshless
 * answers that itself, without loading the API (~4 MB of RSS at import).
 */
const OTEL_GLOBAL = Symbol.for('opentelemetry.js.api.1');

function otelApiInUse(): boolean {
  return (globalThis as Record<symbol, unknown>)[OTEL_GLOBAL] !== undefined;
}

const noop = (): void => {};
const NOOP_INSTRUMENT = Object.freeze({ add: noop, record: noop, addCallback: noop, removeCallback: noop });

/** What the API's no-op meter does: instruments that record nothing. */
const NOOP_METER: Meter = Object.freeze({
  createGauge: () => NOOP_INSTRUMENT,
  createHistogram: () => NOOP_INSTRUMENT,
  createCounter: () => NOOP_INSTRUMENT,
  createUpDownCounter: () => NOOP_INSTRUMENT,
  createObservableGauge: () => NOOP_INSTRUMENT,
  createObservableCounter: () => NOOP_INSTRUMENT,
  createObservableUpDownCounter: () => NOOP_INSTRUMENT,
  addBatchObservableCallback: noop,
  removeBatchObservableCallback: noop,
}) as unknown as Meter;
