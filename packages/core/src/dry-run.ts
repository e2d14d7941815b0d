import { BoundedMap } from './bounded-map.js';
import type { Authorizer, Decision } from './allow-list.js';
import { channels } from './diagnostics.js';
import { loggerOf, type Logger } from './logger.js';
import { meshlessMetrics } from './metrics.js';
import type { Peer } from './peer.js';
import { forwardPolicyChanges } from './policy-changes.js';

/**
 * A Decision a dry run turned into an allow: `allowed` is true, `dryRun` is true, and `wouldDeny`
 * is the denial the rules made (its `rule` and `reason`). Wrappers recognise it with
 * {@link isDryRunDecision} to add their own context (remote address, method, origin).
 */
export interface DryRunDecision extends Decision {
  readonly allowed: true;
  readonly dryRun: true;
  readonly wouldDeny: Decision;
}

/** True for the Decision of a dry run that would have denied the peer. */
export function isDryRunDecision(decision: Decision | undefined): decision is DryRunDecision {
  return decision !== undefined && (decision as Partial<DryRunDecision>).dryRun === true;
}

export interface DryRunOptions {
  /** Where the rules are used, for logs, metrics and events: `server`, `client`, `route`, `method`, `policy-file`… (keep it a short fixed word: it is a metric attribute). */
  scope?: string;
  /** pino-compatible logger for the "would deny" lines (default: meshless's shared logger). */
  logger?: Logger;
  /** At most one "would deny" log line per identity and rule in this window, in ms. Default 60 000. */
  logIntervalMs?: number;
}

const brand = Symbol.for('meshless.Authorizer');
const MAX_LOGGED = 1024;

/**
 * Wraps an Authorizer for a dry run: every peer it allows stays allowed; a peer it would deny is
 * allowed too, and the would-be denial is reported — logged (`warn`, "dry run: would deny", with
 * the identity and rule; at most once per identity and rule per `logIntervalMs`), counted
 * (`meshless.policy.would_deny`, attribute `scope`) and published on
 * `channels.policyWouldDeny` — then returned as a {@link DryRunDecision}.
 *
 * A dry run relaxes policy, never authentication: an Authorizer is only ever asked about a peer
 * whose certificate chain has already verified; an unverified chain is refused before it.
 */
export function dryRunAuthorizer(inner: Authorizer, options: DryRunOptions = {}): Authorizer {
  const scope = options.scope ?? 'policy';
  const logger = loggerOf(options.logger);
  const interval = options.logIntervalMs ?? 60_000;
  const counter = meshlessMetrics().meter.createCounter('meshless.policy.would_deny', { description: 'Peers a dry-run policy would have denied (let through), by scope' });
  // One DryRunDecision per inner decision: inner authorizers of string rules return the same
  // frozen Decision for a Peer, so a connection's peer is reported once, not per request.
  const converted = new WeakMap<Decision, DryRunDecision>();
  const lastLogged = new BoundedMap<string, number>(MAX_LOGGED);

  const report = (peer: Peer, denial: Decision, decision: DryRunDecision): void => {
    counter.add(1, { scope });
    if (channels.policyWouldDeny.hasSubscribers) channels.policyWouldDeny.publish({ scope, peer, decision, rule: denial.rule, reason: denial.reason });
    const key = `${String(peer)}|${denial.rule ?? ''}`;
    const now = Date.now();
    const last = lastLogged.get(key);
    if (last !== undefined && now - last < interval) return;
    lastLogged.set(key, now);
    logger.warn(
      { dryRun: true, scope, peer: String(peer), serialNumber: peer.serialNumber, rule: denial.rule, reason: denial.reason },
      `meshless: dry run: would deny ${String(peer)} (${denial.reason}); let through because dryRun is on`,
    );
  };

  const authorize = (peer: Peer): Decision => {
    const decision = inner(peer);
    if (decision.allowed) return decision;
    let out = converted.get(decision);
    if (out === undefined) {
      out = Object.freeze({
        allowed: true as const,
        dryRun: true as const,
        ...(decision.rule === undefined ? {} : { rule: decision.rule }),
        reason: `dry run: would deny: ${decision.reason}`,
        wouldDeny: decision,
      });
      if (Object.isFrozen(decision)) converted.set(decision, out);
      report(peer, decision, out);
    }
    return out;
  };
  Object.defineProperty(authorize, 'rules', { get: () => inner.rules, enumerable: true });
  Object.defineProperty(authorize, brand, { value: true });
  Object.defineProperty(authorize, 'dryRun', { value: true, enumerable: true });
  forwardPolicyChanges(authorize, inner);
  return authorize as unknown as Authorizer;
}
