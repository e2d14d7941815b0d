/** The median of finite numbers (undefined for none). */
export function median(values: readonly number[]): number | undefined {
  const xs = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (xs.length === 0) return undefined;
  const mid = xs.length >> 1;
  return xs.length % 2 === 1 ? xs[mid]! : (xs[mid - 1]! + xs[mid]!) / 2;
}

/** The q-quantile (0..1) of an already sorted array, nearest-rank. */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

/** Rounds to a number of significant digits, for tables and JSON that people read. */
export function round(value: number | undefined, digits = 3): number | undefined {
  if (value === undefined || !Number.isFinite(value)) return undefined;
  if (value === 0) return 0;
  const p = Math.pow(10, digits - Math.ceil(Math.log10(Math.abs(value))));
  return Math.round(value * p) / p;
}

/**
 * Ratio of a scenario to a baseline over paired rounds: the median of the per-round ratios
 * (rounds ran back to back, so pairing cancels machine drift), or the ratio of the medians when
 * the rounds cannot be paired.
 */
export function pairedRatio(values: readonly (number | undefined)[], baseline: readonly (number | undefined)[]): number | undefined {
  const ratios = perRoundRatios(values, baseline);
  if (ratios.length > 0) return median(ratios);
  const mv = median(values.filter((v): v is number => v !== undefined));
  const mb = median(baseline.filter((v): v is number => v !== undefined));
  return mv !== undefined && mb !== undefined && mb > 0 ? mv / mb : undefined;
}

/** Lowest and highest per-round ratio (paired rounds only), or undefined. */
export function pairedRange(values: readonly (number | undefined)[], baseline: readonly (number | undefined)[]): [number, number] | undefined {
  const ratios = perRoundRatios(values, baseline);
  return ratios.length > 1 ? [Math.min(...ratios), Math.max(...ratios)] : undefined;
}

/** value ÷ baseline of every round where both are measured (none when the rounds cannot be paired). */
function perRoundRatios(values: readonly (number | undefined)[], baseline: readonly (number | undefined)[]): number[] {
  if (values.length !== baseline.length) return [];
  return values.flatMap((v, i) => {
    const b = baseline[i];
    return v !== undefined && b !== undefined && Number.isFinite(v) && Number.isFinite(b) && b > 0 ? [v / b] : [];
  });
}

/** Two-sided 95 % quantiles of Student's t, by degrees of freedom 1..30 (above 30: 1.96 is close enough for a bench). */
const T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042];

/**
 * Geometric mean of positive ratios with its 95 % confidence interval (a t-interval on their
 * logarithms): for independent samples such as fresh process generations. An interval that
 * contains 1 means the two sides cannot be told apart at that confidence. Undefined for fewer than two.
 */
export function ratioInterval(ratios: readonly number[]): { mean: number; low: number; high: number } | undefined {
  const logs = ratios.filter((r) => Number.isFinite(r) && r > 0).map(Math.log);
  const n = logs.length;
  if (n < 2) return undefined;
  const mean = logs.reduce((a, b) => a + b, 0) / n;
  const sd = Math.sqrt(logs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
  const half = (T95[n - 2] ?? 1.96) * (sd / Math.sqrt(n));
  return { mean: Math.exp(mean), low: Math.exp(mean - half), high: Math.exp(mean + half) };
}
