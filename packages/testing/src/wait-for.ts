/** What `waitFor` keeps polling on. */
type Falsy = undefined | null | false | 0 | '';

/**
 * Polls `predicate` until it returns something truthy, and resolves with that value; rejects after
 * `timeoutMs` naming `what`. For tests that wait for an effect (a rotation applied, a connection
 * closed) with a bound instead of a fixed sleep.
 *
 * @example
 * await waitFor(() => server.connections === 0, 5000, 'the old connections to drain');
 * const line = await waitFor(() => logger.at('warn')[0], 2000, 'a warning');
 */
export async function waitFor<T>(predicate: () => T | Falsy | Promise<T | Falsy>, timeoutMs = 5000, what: string | (() => string) = 'condition', intervalMs = 10): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'function' ? what() : what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
