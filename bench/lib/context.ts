import type { Budget } from './budget.js';
import type { CertFiles } from './certs.js';
import type { BenchOptions } from './options.js';
import type { SystemTools } from './system-tools.js';

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
