import assert from 'node:assert/strict';
import { MeshlessError } from '@meshless/core';

/** Runs `fn`, which must throw a MeshlessError with `code` (and a message matching `message`); returns it. */
export function expectMeshlessError(fn: () => unknown, code: string, message?: RegExp): MeshlessError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof MeshlessError, `expected a MeshlessError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  if (message) assert.match(caught.message, message);
  return caught;
}
