import type { Rules } from './allow-list.js';

/**
 * The subscription a live Authorizer (a `policyFile`, or a dry-run wrapper around one) carries
 * under this global symbol: `(listener) => unsubscribe`. Wrappers (createServer, createAgent,
 * serverCredentials…) use {@link onPolicyChange} to re-check their live connections when the
 * policy changes, as `setAllow` does.
 */
export const POLICY_CHANGES: unique symbol = Symbol.for('meshless.policyChanges') as never;

/** What a live authorizer tells its users when its policy changed. */
export interface PolicyChange {
  /** Where the policy comes from (the policy file's path). */
  readonly origin: string;
  /** 1 for the first policy, +1 at every applied change. */
  readonly generation: number;
  /** The allow rules now in force. */
  readonly rules: readonly string[];
}

export type PolicyChangeListener = (change: PolicyChange) => void;
type Subscribe = (listener: PolicyChangeListener) => () => void;

/** True when `value` is a live authorizer (its decisions may change; see {@link onPolicyChange}). */
export function isLivePolicy(value: unknown): boolean {
  return typeof value === 'function' && typeof (value as unknown as Record<symbol, unknown>)[POLICY_CHANGES] === 'function';
}

/**
 * Calls `listener` whenever a live authorizer found in `rules` (one, in a list, in several
 * lists: pass `[allow, deny]`) changes its policy. Returns the unsubscribe function (a no-op
 * when no live authorizer was found). Static rules never change: nothing is subscribed.
 *
 * ```ts
 * const stop = onPolicyChange([options.allow, options.deny], () => review());
 * server.once('close', stop);
 * ```
 */
export function onPolicyChange(rules: Rules | undefined | readonly (Rules | undefined)[], listener: PolicyChangeListener): () => void {
  const found = new Set<Subscribe>();
  const visit = (value: unknown, depth: number): void => {
    if (isLivePolicy(value)) found.add((value as unknown as Record<symbol, Subscribe>)[POLICY_CHANGES]!);
    else if (Array.isArray(value) && depth < 2) for (const v of value) visit(v, depth + 1);
  };
  visit(rules, 0);
  const stops = [...found].map((subscribe) => subscribe(listener));
  return () => {
    for (const stop of stops.splice(0)) stop();
  };
}

/** Copies the subscription of a live `inner` authorizer onto a wrapper of it. */
export function forwardPolicyChanges(wrapper: object, inner: unknown): void {
  if (isLivePolicy(inner)) {
    Object.defineProperty(wrapper, POLICY_CHANGES, { value: (inner as unknown as Record<symbol, Subscribe>)[POLICY_CHANGES] });
  }
}
