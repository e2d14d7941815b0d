const ONE_MINUTE = 60_000;
export const ONE_HOUR = 3_600_000;

export interface ValidityOptions {
  notBefore?: Date | undefined;
  notAfter?: Date | undefined;
  ttlMs?: number | undefined;
}

/**
 * Resolves a validity window: `notBefore` defaults to one minute ago (clock skew), `notAfter` to
 * `ttlMs` after an explicit `notBefore`, else `ttlMs` from now. An explicit `notAfter` alone
 * (say, in the past for an expired certificate) gets a `notBefore` `ttlMs` before it if that is
 * earlier than one minute ago, so the window is never inverted by default.
 */
export function validity(options: ValidityOptions, defaultTtlMs = ONE_HOUR, now = Date.now()): { notBefore: Date; notAfter: Date } {
  const ttlMs = options.ttlMs ?? defaultTtlMs;
  if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new RangeError(`ttlMs must be a positive number of milliseconds, got ${ttlMs}`);
  checkDate(options.notBefore, 'notBefore');
  checkDate(options.notAfter, 'notAfter');
  const notAfter = options.notAfter ?? new Date((options.notBefore?.getTime() ?? now) + ttlMs);
  const notBefore =
    options.notBefore ??
    new Date(options.notAfter ? Math.min(now - ONE_MINUTE, notAfter.getTime() - ttlMs) : now - ONE_MINUTE);
  return { notBefore, notAfter };
}

function checkDate(value: Date | undefined, name: string): void {
  if (value !== undefined && (!(value instanceof Date) || Number.isNaN(value.getTime()))) {
    throw new TypeError(`${name} must be a valid Date`);
  }
}
