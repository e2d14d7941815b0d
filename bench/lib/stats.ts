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
