import { EventEmitter } from 'node:events';
import type { Credential, Health, Source, SourceEvents } from '@meshless/core';

/** A {@link Source} a test drives by hand: `set()` swaps the credential and emits `update`. */
export interface ManualSource extends Source {
  /** Makes `credential` current and emits `update` synchronously (as a file source does after validating). */
  set(credential: Credential): void;
}

class Manual extends EventEmitter<SourceEvents> implements ManualSource {
  #credential: Credential;
  #loadedAt = new Date();
  constructor(credential: Credential) {
    super();
    this.#credential = credential;
  }
  current(): Credential {
    return this.#credential;
  }
  set(credential: Credential): void {
    const previous = this.#credential;
    this.#credential = credential;
    this.#loadedAt = new Date();
    this.emit('update', credential, previous);
  }
  health(): Health {
    const c = this.#credential;
    return { state: c.notAfter.getTime() <= Date.now() ? 'expired' : 'fresh', notAfter: c.notAfter, generation: c.generation, lastReloadAt: this.#loadedAt };
  }
  async reload(): Promise<Credential> {
    return this.#credential;
  }
  async close(): Promise<void> {}
}

/**
 * A Source for tests (yours and ours) that rotates only when told to.
 *
 * @example
 * const source = manualSource(loadCredential(await ca.issue(id)));
 * const server = createServer({ source, allow: '*' }, app);
 * source.set(loadCredential(await ca.issue(id), { generation: 2 }));   // live rotation
 */
export function manualSource(credential: Credential): ManualSource {
  return new Manual(credential);
}
