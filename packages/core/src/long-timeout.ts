/** The longest delay `setTimeout` accepts (2^31 − 1 ms, ~24.8 days); a longer one would fire at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A timer from {@link setLongTimeout}. */
export interface LongTimeout {
  /** Cancels it (no-op once fired). */
  clear(): void;
}

/**
 * `setTimeout` for any delay: waits past setTimeout's 2^31 − 1 ms limit in steps, re-armed on the
 * way (a certificate valid for a year, a connection deadline months away), then calls `fn` once.
 * The timer is unref'd: it never keeps the process alive. `stepMs` is for tests.
 */
export function setLongTimeout(fn: () => void, delayMs: number, stepMs = MAX_TIMER_MS): LongTimeout {
  const due = Date.now() + Math.max(0, delayMs);
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    const left = Math.max(0, due - Date.now());
    timer = setTimeout(() => {
      if (left > stepMs) return arm();
      timer = undefined;
      fn();
    }, Math.min(left, stepMs));
    timer.unref();
  };
  arm();
  return {
    clear() {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
    },
  };
}
