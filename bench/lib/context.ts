import type { CertFiles } from './certs.js';
import type { BenchOptions } from './options.js';
import type { SystemTools } from './machine.js';

/** What every scenario gets: options, budget, certificates, a temp dir, the tools found. */
export interface BenchContext {
  options: BenchOptions;
  budget: Budget;
  certs: CertFiles;
  /** A fresh temp directory for configuration files and logs (removed at the end). */
  workDir: string;
  tools: SystemTools;
  /** Notes for the report (installs, skips). */
  notes: string[];
}

/** The run's time budget: work that would not fit is skipped, saying so, instead of overrunning. */
export class Budget {
  readonly startedAt = Date.now();
  readonly deadline: number;
  constructor(readonly totalMs: number) {
    this.deadline = this.startedAt + totalMs;
  }
  /** Milliseconds left. */
  left(): number {
    return this.deadline - Date.now();
  }
  /** True when `neededMs` more would overrun the budget. */
  cannotFit(neededMs: number): boolean {
    return this.left() < neededMs;
  }
  elapsedSeconds(): number {
    return (Date.now() - this.startedAt) / 1000;
  }
}
