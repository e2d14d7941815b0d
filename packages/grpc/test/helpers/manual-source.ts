import { EventEmitter } from 'node:events';
import { loadCredential, type Credential, type CredentialInput, type Health, type MeshlessError, type Source, type SourceEvents } from '@meshless/core';

/**
 * A Source driven by hand: `set()` validates like a real source (loadCredential) and emits
 * `update`; a bad generation emits `error` and keeps the previous one, as fileSource does.
 */
export class ManualSource extends EventEmitter<SourceEvents> implements Source {
  #credential: Credential;
  #generation = 1;
  readonly #loadedAt = new Date();
  constructor(input: CredentialInput) {
    super();
    this.#credential = loadCredential(input);
  }
  current(): Credential {
    return this.#credential;
  }
  /** Loads a new generation; returns it, or the error when it was refused (the old one stays). */
  set(input: CredentialInput): Credential | MeshlessError {
    let next: Credential;
    try {
      next = loadCredential(input, { generation: this.#generation + 1 });
    } catch (err) {
      if (this.listenerCount('error') > 0) this.emit('error', err as MeshlessError);
      return err as MeshlessError;
    }
    this.#generation++;
    const previous = this.#credential;
    this.#credential = next;
    this.emit('update', next, previous);
    return next;
  }
  health(): Health {
    return { state: 'fresh', notAfter: this.#credential.notAfter, generation: this.#credential.generation, lastReloadAt: this.#loadedAt };
  }
  async reload(): Promise<Credential> {
    return this.#credential;
  }
  async close(): Promise<void> {
    this.removeAllListeners();
  }
}
