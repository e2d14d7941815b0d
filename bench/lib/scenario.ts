import type { BenchContext } from './context.js';
import type { Group } from './options.js';
import type { Row } from './results.js';

/** One scenario of the bench (a module in bench/scenarios/): main.ts runs those of the selected groups, in order. */
export interface Scenario {
  group: Group;
  /** System programs it measures against: found, or installed by scripts/setup-system.sh, before the run. */
  needs?: readonly ('stunnel' | 'nginx')[];
  /** Measures. Every row it returns has figures, or a status and a printed reason. */
  run(ctx: BenchContext): Promise<Row[]>;
}
