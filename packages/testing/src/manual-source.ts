import { EventEmitter } from 'node:events';
import { isMeshlessError, loadCredential, type Credential, type CredentialInput, type Health, type MeshlessError, type Source, type SourceEvents } from '@meshless/core';
import { healthStateOf } from '@meshless/core/internal';

/** A {@link Source} a test drives by hand. */
export interface ManualSource extends Source {
  /**
   * Makes the next credential current and emits `update` synchronously, as a file source does after
   * validating. Given PEM input (`{ cert, key, ca }`), validates it with `loadCredential` first (next
   * generation number): on failure emits `error` (when listened to), keeps the current credential
   * and returns the error.
   */
  set(next: Credential | CredentialInput): Credential | MeshlessError;
  /** Overrides fields of what `health()` reports (undefined: back to what the credential says). */
  setHealth(health: Partial<Health> | undefined): void;
  /** Whether `close()` was called. */
  readonly closed: boolean;
}

function isCredential(value: Credential | CredentialInput): value is Credential {
  return typeof (value as Credential).generation === 'number' && (value as Credential).leaf !== undefined;
}

class Manual extends EventEmitter<SourceEvents> implements ManualSource {
  #credential: Credential;
  #loadedAt = new Date();
  #health: Partial<Health> | undefined;
  closed = false;
  constructor(first: Credential | CredentialInput) {
    super();
    this.#credential = isCredential(first) ? first : loadCredential(first);
  }
  current(): Credential {
    return this.#credential;
  }
  set(next: Credential | CredentialInput): Credential | MeshlessError {
    let credential: Credential;
    if (isCredential(next)) credential = next;
    else {
      try {
        credential = loadCredential(next, { generation: this.#credential.generation + 1 });
      } catch (err) {
        if (!isMeshlessError(err)) throw err;
        if (this.listenerCount('error') > 0) this.emit('error', err);
        return err;
      }
    }
    const previous = this.#credential;
    this.#credential = credential;
    this.#loadedAt = new Date();
    this.emit('update', credential, previous);
    return credential;
  }
  setHealth(health: Partial<Health> | undefined): void {
    this.#health = health;
  }
  health(): Health {
    const c = this.#credential;
    return { state: healthStateOf(c, Date.now(), 2 / 3), notAfter: c.notAfter, generation: c.generation, lastReloadAt: this.#loadedAt, ...this.#health };
  }
  async reload(): Promise<Credential> {
    return this.#credential;
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

/**
 * A Source for tests (yours and ours) that rotates only when told to.
 *
 * @example
 * const source = manualSource(loadCredential(await ca.issue(id)));
 * const server = createServer({ source, allow: '*' }, app);
 * source.set(loadCredential(await ca.issue(id), { generation: 2 }));   // live rotation
 * source.set(await ca.issue(id));                                     // PEM: validated, next generation
 */
export function manualSource(first: Credential | CredentialInput): ManualSource {
  return new Manual(first);
}
