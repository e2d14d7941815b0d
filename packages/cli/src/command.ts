import type { CommandIO } from './io.js';

/** One `meshless` command. `run` resolves with the exit code. */
export interface Command {
  /** Words that select it, e.g. `['ca', 'init']`. */
  readonly path: readonly string[];
  /** One line for `meshless --help`. */
  readonly summary: string;
  /** The full `--help` text. */
  readonly help: string;
  run(argv: readonly string[], io: CommandIO): Promise<number>;
}

/** Exit codes of every command. */
export const exitCodes = Object.freeze({
  ok: 0,
  /** The command ran and found a problem (a coded MeshlessError). */
  failed: 1,
  /** The command line is wrong. */
  usage: 2,
});
