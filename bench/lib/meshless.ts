import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { loadCredential, type Credential, type Health, type Source, type SourceEvents } from '@meshless/core';
import { certFiles } from './certs.js';

/**
 * A Source the bench drives by hand: `rotate()` loads the next certificate generation from the
 * bench's files and emits `update`, as a file source does after a `..data` swap.
 */
export class BenchSource extends EventEmitter<SourceEvents> implements Source {
  #credential: Credential;
  #generation: number;
  #plus = false;
  #loadedAt = new Date();

  constructor(
    private readonly dir: string,
    private readonly side: 'server' | 'client',
  ) {
    super();
    this.#generation = 0;
    this.#credential = this.#load(0);
  }

  #load(generation: number): Credential {
    const f = certFiles(this.dir);
    const cert = readFileSync(this.side === 'server' ? f.serverCert(generation) : f.clientCert(generation));
    const key = readFileSync(this.side === 'server' ? f.serverKey(generation) : f.clientKey(generation));
    return loadCredential({ cert, key, ca: readFileSync(this.#plus ? f.caPlus : f.ca) }, { generation });
  }

  /**
   * Loads the next generation and emits `update`. With `trustChange`, the bundle also switches
   * between the CA alone and the CA plus an unrelated root: the trust changes, every peer still verifies.
   */
  rotate(trustChange = false): Credential {
    const previous = this.#credential;
    if (trustChange) this.#plus = !this.#plus;
    this.#generation++;
    this.#credential = this.#load(this.#generation);
    this.#loadedAt = new Date();
    this.emit('update', this.#credential, previous);
    return this.#credential;
  }

  current(): Credential {
    return this.#credential;
  }

  health(): Health {
    return { state: 'fresh', notAfter: this.#credential.notAfter, generation: this.#credential.generation, lastReloadAt: this.#loadedAt };
  }

  async reload(): Promise<Credential> {
    return this.#credential;
  }

  async close(): Promise<void> {}
}
