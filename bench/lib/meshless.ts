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

/** What the bench needs from @meshless/http; undefined members are not written yet. */
export interface MeshlessHttp {
  createServer?: (options: Record<string, unknown>, listener?: (req: any, res: any) => void) => import('node:https').Server;
  createAgent?: (options: Record<string, unknown>) => import('undici').Dispatcher;
  peerOf?: (reqOrSocket: unknown) => unknown;
}

/** Why parts of @meshless/http cannot be used yet (undefined: available). */
export interface MeshlessAvailability {
  server: string | undefined;
  agent: string | undefined;
}

/** Loads @meshless/http and says which of createServer / createAgent exist. */
export async function meshlessAvailability(): Promise<MeshlessAvailability> {
  const loaded = await loadMeshlessHttp(['createServer']);
  const agent = await loadMeshlessHttp(['createAgent']);
  return { server: 'missing' in loaded ? loaded.missing : undefined, agent: 'missing' in agent ? agent.missing : undefined };
}

/** Loads @meshless/http, or returns why it cannot be used yet (a needed export is missing). */
export async function loadMeshlessHttp(needs: readonly ('createServer' | 'createAgent')[]): Promise<{ mod: MeshlessHttp } | { missing: string }> {
  let mod: MeshlessHttp;
  try {
    mod = (await import('@meshless/http')) as unknown as MeshlessHttp;
  } catch (err) {
    return { missing: `@meshless/http does not load: ${(err as Error).message.split('\n')[0]}` };
  }
  const absent = needs.filter((name) => typeof mod[name] !== 'function');
  if (absent.length > 0) return { missing: `not yet available (@meshless/http has no ${absent.join(' / ')})` };
  return { mod };
}
