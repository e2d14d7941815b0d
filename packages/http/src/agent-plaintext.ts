import { MeshlessError, channels, codes, type Logger, type MeshlessMetrics } from '@meshless/core';
import type { Agent, Dispatcher } from 'undici';
import { undici } from './undici-lazy.js';

/** At most one log line per plaintext origin in this window. */
const LOG_INTERVAL_MS = 60_000;

/** `http://host[:port]` for a `plaintextOrigins` entry; throws INVALID_OPTION for anything else. */
export function normalizePlaintextOrigin(input: unknown): string {
  let url: URL;
  try {
    url = new URL(String(input));
  } catch {
    throw new MeshlessError(codes.INVALID_OPTION, `plaintextOrigins: ${JSON.stringify(input)} is not an origin; write it as 'http://host[:port]'`, { field: 'plaintextOrigins' });
  }
  if (url.protocol !== 'http:') {
    throw new MeshlessError(codes.INVALID_OPTION, `plaintextOrigins: ${JSON.stringify(input)} is not an http:// origin (https origins always use mutual TLS)`, { field: 'plaintextOrigins' });
  }
  if (url.username || url.password || url.search || url.hash || (url.pathname !== '/' && url.pathname !== '')) {
    throw new MeshlessError(codes.INVALID_OPTION, `plaintextOrigins: ${JSON.stringify(input)} has more than an origin; write only 'http://host[:port]'`, { field: 'plaintextOrigins' });
  }
  return url.origin;
}

/** The error of a request to an `http://` origin that `plaintextOrigins` does not list. */
export function plaintextRefused(origin: string): MeshlessError {
  return new MeshlessError(
    codes.PLAINTEXT_REFUSED,
    `a meshless agent makes TLS connections only: ${origin} is plaintext HTTP, refused. Call its https:// origin; while that service migrates, list it in createAgent({ plaintextOrigins: ['${origin}'] })`,
    { field: 'origin' },
  );
}

function originOf(origin: string | URL | undefined): string | undefined {
  if (origin === undefined) return undefined;
  if (typeof origin !== 'string') return origin.origin;
  try {
    return new URL(origin).origin;
  } catch {
    return undefined;
  }
}

/**
 * The plaintext side of a migrating client: requests to the `http://` origins listed in
 * `plaintextOrigins` go through one plain undici Agent (created on first use); every such request
 * is counted (`meshless.http.plaintext_requests`, side `client`), published on
 * `channels.plaintextRequest` and logged at most once a minute per origin.
 */
export class PlaintextRoute {
  readonly #origins: ReadonlySet<string>;
  #agent: Agent | undefined;
  readonly #logged = new Map<string, number>();
  readonly #counter;

  constructor(
    origins: readonly string[],
    private readonly undiciOptions: Agent.Options,
    private readonly logger: Logger,
    metrics: MeshlessMetrics,
  ) {
    this.#origins = new Set(origins.map(normalizePlaintextOrigin));
    this.#counter = metrics.meter.createCounter('meshless.http.plaintext_requests', { description: 'Plaintext HTTP requests served by a permissive server (or sent to a plaintextOrigins origin by a client), by side' });
  }

  /** The origin, when the request goes to a listed plaintext origin. */
  match(origin: string | URL | undefined): string | undefined {
    const key = originOf(origin);
    return key !== undefined && this.#origins.has(key) ? key : undefined;
  }

  dispatch(origin: string, options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    this.#agent ??= new (undici().Agent)(this.undiciOptions);
    this.#counter.add(1, { side: 'client' });
    if (channels.plaintextRequest.hasSubscribers) channels.plaintextRequest.publish({ side: 'client', origin, method: options.method });
    const now = Date.now();
    const last = this.#logged.get(origin);
    if (last === undefined || now - last >= LOG_INTERVAL_MS) {
      this.#logged.set(origin, now);
      this.logger.warn({ plaintext: true, origin, method: options.method }, `meshless agent: plaintext request to ${origin} (listed in plaintextOrigins); move it to mTLS and remove it from the list (at most one line per origin per minute; every request is counted)`);
    }
    return this.#agent.dispatch(options, handler);
  }

  close(): Promise<void> {
    return this.#agent?.close() ?? Promise.resolve();
  }

  destroy(err: Error | null): Promise<void> {
    return this.#agent === undefined || this.#agent.destroyed ? Promise.resolve() : this.#agent.destroy(err);
  }
}
