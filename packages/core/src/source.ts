import { EventEmitter } from 'node:events';
import type { Credential } from './credential.js';
import type { MeshlessError } from './errors.js';

export type HealthState = 'fresh' | 'stale' | 'expiring' | 'expired';

export interface Health {
  /** fresh: current and valid · stale: the last reload failed · expiring: past the renewal point · expired: notAfter has passed. */
  readonly state: HealthState;
  readonly notAfter: Date;
  readonly generation: number;
  readonly lastReloadAt: Date;
  readonly lastError?: MeshlessError;
}

export interface SourceEvents {
  update: [credential: Credential, previous: Credential];
  error: [error: MeshlessError];
  health: [health: Health];
}

/**
 * Holds the current credential. `current()` is synchronous and always returns the last good
 * generation. Emits `update` (new generation), `error` (a failed reload; the old generation
 * stays) and `health` (the state changed).
 */
export interface Source extends EventEmitter<SourceEvents> {
  current(): Credential;
  health(): Health;
  /** Re-reads now (file sources); resolves with the current credential after the attempt. */
  reload(): Promise<Credential>;
  /** Stops every watcher and timer. `current()` still returns the last generation. */
  close(): Promise<void>;
}

/** Anything that yields the current credential: a Source, or a Credential itself. */
export type CredentialProvider = Source | Credential;

/** True when `value` is a Source (has `current()`), not a bare Credential. */
export function isSource(value: unknown): value is Source {
  return typeof value === 'object' && value !== null && typeof (value as Source).current === 'function';
}

/** Health of a credential at `now`: expired past notAfter, expiring past `renewAtShare` of its lifetime. */
export function healthStateOf(credential: Credential, now: number, renewAtShare: number): HealthState {
  const nb = credential.notBefore.getTime();
  const na = credential.notAfter.getTime();
  if (now >= na) return 'expired';
  if (now >= nb + (na - nb) * renewAtShare) return 'expiring';
  return 'fresh';
}

class StaticSource extends EventEmitter<SourceEvents> implements Source {
  readonly #credential: Credential;
  readonly #loadedAt = new Date();
  constructor(credential: Credential) {
    super();
    this.#credential = credential;
  }
  current(): Credential {
    return this.#credential;
  }
  health(): Health {
    return {
      state: healthStateOf(this.#credential, Date.now(), 2 / 3),
      notAfter: this.#credential.notAfter,
      generation: this.#credential.generation,
      lastReloadAt: this.#loadedAt,
    };
  }
  async reload(): Promise<Credential> {
    return this.#credential;
  }
  async close(): Promise<void> {}
}

/** A Source that always returns one credential (tests, or material that never rotates). */
export function staticSource(credential: Credential): Source {
  return new StaticSource(credential);
}

/** Turns a Source or a bare Credential into a Source. */
export function toSource(provider: CredentialProvider): Source {
  return isSource(provider) ? provider : staticSource(provider);
}
