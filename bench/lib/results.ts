import type { Group } from './options.js';

/** How a scenario row ended: measured, skipped on purpose (tool or API missing), or failed. */
export type Status = 'ok' | 'skipped' | 'failed';

/** One line of the results: a scenario in one variant, with medians over its rounds. */
export interface Row {
  group: Group;
  scenario: string;
  variant: string;
  status: Status;
  /** Why the row has no numbers (skipped or failed). */
  reason?: string;
  /** Medians over the rounds (units in the key: rps, p50Ms, cpuSecPer10k, nsPerOp, MB…). */
  median?: Record<string, number | undefined>;
  /** Ratios to baselines, paired by round (key: baseline scenario id). */
  ratios?: Record<string, number | undefined>;
  /** Lowest and highest per-round ratio behind each entry of `ratios`: how much the rounds agree. */
  ratioRanges?: Record<string, [number, number]>;
  /** Every round's raw figures. */
  rounds?: Record<string, unknown>[];
  /** Anything else worth keeping (e.g. an external module's full result). */
  details?: unknown;
}

/** A target from issue 9 checked against this run. */
export interface TargetCheck {
  target: string;
  value?: number;
  /** true: met · false: missed · undefined: could not be measured in this run. */
  met?: boolean;
  note?: string;
}

export interface Machine {
  nproc: number;
  cpuModel: string;
  node: string;
  os: string;
  loadAverageAtStart: number[];
  tools: Record<string, string | undefined>;
}

export interface Results {
  date: string;
  command: string;
  mode: 'full' | 'quick';
  settings: Record<string, unknown>;
  machine: Machine;
  notes: string[];
  durationSeconds: number;
  rows: Row[];
  targets: TargetCheck[];
}

/** The row of `group` and `scenario` (and `variant`, if given) that has figures, if any. */
export function findRow(rows: readonly Row[], group: Row['group'], scenario: string, variant?: string): Row | undefined {
  return rows.find((r) => r.group === group && r.scenario === scenario && (variant === undefined || r.variant === variant) && r.status !== 'skipped' && r.median);
}

/** A row that has no numbers, with the reason (also printed). */
export function skippedRow(group: Row['group'], scenario: string, variant: string, reason: string, status: Status = 'skipped'): Row {
  console.log(`  ${status}: ${group} ${scenario} ${variant}: ${reason}`);
  return { group, scenario, variant, status, reason };
}
