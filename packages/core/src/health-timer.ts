import type { Credential } from './credential.js';
import { setLongTimeout, type LongTimeout } from './long-timeout.js';
import { healthStateOf, type HealthState } from './source.js';


/**
 * The health of a rotating source: `expired` wins over everything (it is what peers will see),
 * then `stale` (the last reload failed), then `expiring` (past `renewAtShare` of the lifetime),
 * else `fresh`.
 */
export function sourceHealthState(credential: Credential, now: number, renewAtShare: number, failing: boolean): HealthState {
  const byTime = healthStateOf(credential, now, renewAtShare);
  if (byTime === 'expired') return 'expired';
  return failing ? 'stale' : byTime;
}

/** When the time-driven part of the health changes next (renewal point, then notAfter), or undefined once expired. */
export function nextHealthChangeAt(credential: Credential, now: number, renewAtShare: number): number | undefined {
  const notBefore = credential.notBefore.getTime();
  const notAfter = credential.notAfter.getTime();
  const renewAt = notBefore + (notAfter - notBefore) * renewAtShare;
  if (now < renewAt) return renewAt;
  if (now < notAfter) return notAfter;
  return undefined;
}

/**
 * One unref'd timer that calls `onDue` when the health of a credential changes with time alone
 * (no file event needed). Re-arm it with `schedule` after every new generation.
 */
export class HealthTimer {
  #timer: LongTimeout | undefined;
  readonly #onDue: () => void;

  constructor(onDue: () => void) {
    this.#onDue = onDue;
  }

  /** Arms the timer for the next change of `credential`'s time-driven health (replaces any earlier arm). */
  schedule(credential: Credential, renewAtShare: number, now = Date.now()): void {
    this.stop();
    const due = nextHealthChangeAt(credential, now, renewAtShare);
    if (due === undefined) return;
    // +1 ms: fire just after the boundary, so the state computed in onDue has already moved.
    this.#timer = setLongTimeout(() => {
      this.#timer = undefined;
      this.#onDue();
    }, Math.max(0, Math.ceil(due - now) + 1));
  }

  stop(): void {
    this.#timer?.clear();
    this.#timer = undefined;
  }
}
