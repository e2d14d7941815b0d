/**
 * Capped exponential backoff with full jitter: the n-th retry (from 0) waits a uniformly random
 * time in [0, min(maxMs, initialMs · 2ⁿ)). Jitter spreads the reconnects of a fleet whose agent
 * restarted (no reconnect storm); a message from the server resets it.
 */
export class Backoff {
  #attempt = 0;
  constructor(
    readonly initialMs: number,
    readonly maxMs: number,
    readonly random: () => number = Math.random,
  ) {}

  /** The next delay, in ms (`capMs` lowers the cap for this one). */
  next(capMs = this.maxMs): number {
    const ceiling = Math.min(this.maxMs, capMs, this.initialMs * 2 ** Math.min(this.#attempt, 30));
    this.#attempt++;
    return Math.floor(this.random() * ceiling);
  }

  /** Retries made since the last reset. */
  get attempts(): number {
    return this.#attempt;
  }

  reset(): void {
    this.#attempt = 0;
  }
}
