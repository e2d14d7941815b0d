import { MeshlessError, codes } from '@meshless/core';

/**
 * A command line that cannot be run as written (unknown option, missing argument, bad value).
 * The CLI prints its message and the command's usage, and exits 2.
 */
export class UsageError extends MeshlessError {
  constructor(message: string, field?: string) {
    super(codes.INVALID_OPTION, message, field === undefined ? {} : { field });
  }
}

/** True for errors that mean "the command line is wrong" (exit 2). */
export function isUsageError(err: unknown): err is UsageError {
  return err instanceof Error && Object.getPrototypeOf(err) === UsageError.prototype;
}
