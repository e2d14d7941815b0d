import { metrics, type Counter, type Meter } from '@opentelemetry/api';

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
  const meter = metrics.getMeter('meshless');
  return {
    meter,
    reloads: meter.createCounter('meshless.credential.reloads', { description: 'Credential reloads, by outcome (success, failure, unchanged)' }),
    refusals: meter.createCounter('meshless.peer.refusals', { description: 'Peers refused, by side and failure class' }),
  };
}
