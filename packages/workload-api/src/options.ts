import { MeshlessError, codes, type Logger, type Rules } from '@meshless/core';
import { MAX_TIMER_MS } from '@meshless/core/internal';
import type { PickSvid } from './svid.js';

/** What the source does when the Workload API withdraws our identity. */
export type WithdrawnBehaviour = 'keep' | 'expire';

/** Options of `workloadApiSource`. Every duration is in milliseconds. */
export interface WorkloadApiSourceOptions {
  /**
   * The Workload API endpoint: `unix:///run/spire/agent-sockets/spire-agent.sock`,
   * `unix:/abs/path` or `tcp://<ip>:<port>`. Default: `SPIFFE_ENDPOINT_SOCKET`.
   */
  address?: string;
  /** Serve the SVID with this hint (the first one, if several have it). Default: `svids[0]`. */
  hint?: string;
  /** Custom choice among the SVIDs of each message (wins over `hint`): return an entry, its index, or undefined for none. */
  pick?: PickSvid;
  /** How long `await workloadApiSource()` waits for the first valid SVID before it rejects. Default 30 000. */
  firstUpdateTimeoutMs?: number;
  /**
   * When the Workload API withdraws our identity (the stream ends with PermissionDenied after an
   * SVID was served, or the hinted SVID disappears from a message):
   * - `'keep'` (default): keep serving the last SVID until it expires, report
   *   `MESHLESS_ERR_IDENTITY_WITHDRAWN` (`error` event, health `stale`) and keep reconnecting; an
   *   SVID that comes back is served again. SPIRE also answers PermissionDenied for a while after an
   *   agent restart, before it has synced its entries: this rides that out.
   * - `'expire'`: the same, but `health()` says `expired` until an SVID comes back, so readiness
   *   checks (`healthHandler`) fail and the orchestrator drains traffic: the spec's "SHOULD cease
   *   using" as far as a Source can (`current()` still returns the last SVID for in-flight work).
   */
  onWithdrawn?: WithdrawnBehaviour;
  /** Rules our own identity must pass at every message (e.g. `'spiffe://prod.example/ns/pay/sa/api'`). */
  expectIdentity?: Rules;
  /** Without `expectIdentity`, an SVID with another SPIFFE ID than the first one is refused unless this is true. Default false. */
  allowIdentityChange?: boolean;
  /** Share of the lifetime after which health is `expiring`. Default 2/3 (SPIRE renews at 1/2). */
  renewAtShare?: number;
  /** Tolerance for notBefore / notAfter checks. Default 0. */
  clockSkewMs?: number;
  /** Reconnect backoff: full jitter below min(maxMs, initialMs · 2ⁿ). Default { initialMs: 1000, maxMs: 30 000 }. */
  backoff?: { initialMs?: number; maxMs?: number };
  /** pino-compatible logger; default pino at level `warn` to stderr. */
  logger?: Logger;
}

export interface ResolvedOptions {
  hint: string | undefined;
  pick: PickSvid | undefined;
  firstUpdateTimeoutMs: number;
  onWithdrawn: WithdrawnBehaviour;
  expectIdentity: Rules | undefined;
  allowIdentityChange: boolean;
  renewAtShare: number;
  clockSkewMs: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
  logger: Logger | undefined;
}

function invalid(field: string, why: string): MeshlessError {
  return new MeshlessError(codes.INVALID_OPTION, `workloadApiSource option ${field} ${why}`, { field });
}

function duration(value: unknown, field: string, fallback: number, min = 0): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > MAX_TIMER_MS) {
    throw invalid(field, `must be a number of milliseconds between ${min} and ${MAX_TIMER_MS} (got ${String(value)})`);
  }
  return value;
}

export function resolveOptions(options: WorkloadApiSourceOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) throw invalid('options', 'must be an object');
  if (options.address !== undefined && typeof options.address !== 'string') throw invalid('address', 'must be a string');
  if (options.hint !== undefined && (typeof options.hint !== 'string' || options.hint === '')) throw invalid('hint', 'must be a non-empty string');
  if (options.pick !== undefined && typeof options.pick !== 'function') throw invalid('pick', 'must be a function (svids) => svid | index | undefined');
  const onWithdrawn = options.onWithdrawn ?? 'keep';
  if (onWithdrawn !== 'keep' && onWithdrawn !== 'expire') throw invalid('onWithdrawn', `must be 'keep' or 'expire' (got ${JSON.stringify(onWithdrawn)})`);
  if (options.allowIdentityChange !== undefined && typeof options.allowIdentityChange !== 'boolean') throw invalid('allowIdentityChange', 'must be a boolean');
  const renewAtShare = options.renewAtShare ?? 2 / 3;
  if (typeof renewAtShare !== 'number' || !(renewAtShare > 0 && renewAtShare <= 1)) throw invalid('renewAtShare', `must be a share of the lifetime in (0, 1] (got ${String(renewAtShare)})`);
  const backoff = options.backoff ?? {};
  if (typeof backoff !== 'object' || backoff === null) throw invalid('backoff', 'must be { initialMs?, maxMs? }');
  const initialBackoffMs = duration(backoff.initialMs, 'backoff.initialMs', 1000, 1);
  const maxBackoffMs = duration(backoff.maxMs, 'backoff.maxMs', Math.max(30_000, initialBackoffMs), 1);
  if (maxBackoffMs < initialBackoffMs) throw invalid('backoff.maxMs', `must be at least backoff.initialMs (${initialBackoffMs})`);
  return {
    hint: options.hint,
    pick: options.pick,
    firstUpdateTimeoutMs: duration(options.firstUpdateTimeoutMs, 'firstUpdateTimeoutMs', 30_000, 1),
    onWithdrawn,
    expectIdentity: options.expectIdentity,
    allowIdentityChange: options.allowIdentityChange ?? false,
    renewAtShare,
    clockSkewMs: duration(options.clockSkewMs, 'clockSkewMs', 0),
    initialBackoffMs,
    maxBackoffMs,
    logger: options.logger,
  };
}
