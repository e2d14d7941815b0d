import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Authorizer, Decision } from './allow-list.js';
import { channels } from './diagnostics.js';
import { dryRunAuthorizer } from './dry-run.js';
import { MeshlessError, codes, isMeshlessError } from './errors.js';
import { MountWatcher } from './file-source-watch.js';
import { loggerOf, type Logger } from './logger.js';
import type { Peer } from './peer.js';
import { POLICY_CHANGES, type PolicyChange, type PolicyChangeListener } from './policy-changes.js';
import { parsePolicy, type ParsedPolicy } from './policy-parse.js';

export interface PolicyFileOptions {
  /** pino-compatible logger (default: meshless's shared logger). */
  logger?: Logger;
  /** Force a dry run whatever the file says (`true`), or never (`false`). Default: the file's `dryRun`. */
  dryRun?: boolean;
  /** Wait this long after a change that is not the kubelet's `..data` swap before reading (a writer may still be busy). Default 20 ms. */
  debounceMs?: number;
  /** Read again this long after each change-driven read (catches a second swap whose event was lost). Default 100 ms. */
  settleMs?: number;
  /** Re-read the file this often even without an event (content hash; 0 turns it off). Default 60 000 ms. */
  recheckIntervalMs?: number;
  /** Watch by stat polling at this interval (network filesystems) instead of inotify. */
  pollIntervalMs?: number;
}

/** The state of a policy file: the policy in force and the last failure. */
export interface PolicyFileState {
  readonly file: string;
  /** 1 for the first policy, +1 at every applied change. */
  readonly generation: number;
  readonly allow: readonly string[];
  readonly deny: readonly string[];
  readonly dryRun: boolean;
  readonly loadedAt: Date;
  /** The last change that was refused (the policy above stayed), until a good one is applied. */
  readonly lastError?: MeshlessError;
}

export interface PolicyFileEvents {
  update: [state: PolicyFileState];
  error: [error: MeshlessError];
}

/**
 * A live Authorizer read from a mounted file: pass it as `allow` anywhere (createServer,
 * createAgent, serverCredentials, channelCredentials, authorizeMethods, requirePeer, allowList).
 */
export interface PolicyFile extends Authorizer {
  readonly file: string;
  /** The policy in force, and the last refused change. */
  state(): PolicyFileState;
  /** Reads the file now; resolves once the read is applied or refused. */
  reload(): Promise<PolicyFileState>;
  /** Stops watching; the last policy stays in force. */
  close(): Promise<void>;
  on<K extends keyof PolicyFileEvents>(event: K, listener: (...args: PolicyFileEvents[K]) => void): this;
  once<K extends keyof PolicyFileEvents>(event: K, listener: (...args: PolicyFileEvents[K]) => void): this;
  off<K extends keyof PolicyFileEvents>(event: K, listener: (...args: PolicyFileEvents[K]) => void): this;
}

const brand = Symbol.for('meshless.Authorizer');
const DATA_LINK = '..data';

type Trigger = 'start' | 'event' | 'confirm' | 'recheck' | 'manual';

class PolicyFileWatcher extends EventEmitter<PolicyFileEvents> {
  readonly file: string;
  readonly #options: PolicyFileOptions;
  readonly #log: Logger;
  readonly #watcher: MountWatcher;
  #policy!: ParsedPolicy;
  #authorize!: Authorizer;
  #hash = '';
  #generation = 0;
  #loadedAt = new Date();
  #lastError: MeshlessError | undefined;
  #closed = false;
  #debounce: NodeJS.Timeout | undefined;
  #confirm: NodeJS.Timeout | undefined;
  #recheck: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again: Trigger | undefined;
  #queued: Promise<void> | undefined;
  readonly #listeners = new Set<PolicyChangeListener>();

  constructor(file: string, options: PolicyFileOptions) {
    super();
    this.file = file;
    this.#options = options;
    this.#log = loggerOf(options.logger);
    const name = path.basename(file);
    this.#watcher = new MountWatcher({
      dirs: [path.dirname(file)],
      relevant: (n) => n === name || n.startsWith('..'),
      ...(options.pollIntervalMs === undefined ? {} : { pollIntervalMs: options.pollIntervalMs }),
      onChange: (_why, n) => this.#onEvent(n),
      onTrouble: (why, cause) =>
        this.#log.warn({ file, reason: why, ...(cause ? { cause: String((cause as Error).message ?? cause) } : {}) }, 'meshless: policy directory watch interrupted; polling until it is back'),
    });
  }

  authorize(peer: Peer): Decision {
    return this.#authorize(peer);
  }

  get rules(): readonly string[] {
    return this.#policy.allow;
  }

  state(): PolicyFileState {
    const p = this.#policy;
    return Object.freeze({
      file: this.file,
      generation: this.#generation,
      allow: p.allow,
      deny: p.deny,
      dryRun: this.#dryRunOf(p),
      loadedAt: this.#loadedAt,
      ...(this.#lastError === undefined ? {} : { lastError: this.#lastError }),
    });
  }

  subscribe(listener: PolicyChangeListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async start(): Promise<void> {
    await this.#watcher.start();
    try {
      await this.#read('start');
    } catch (err) {
      await this.close();
      throw err;
    }
    const every = this.#options.recheckIntervalMs ?? 60_000;
    if (every > 0) this.#recheck = setInterval(() => void this.#request('recheck'), every).unref();
  }

  async reload(): Promise<PolicyFileState> {
    if (this.#closed) throw new MeshlessError(codes.SOURCE_CLOSED, `the policy file ${this.file} is closed; create a new policyFile to read it again`, { file: this.file });
    await this.#request('manual');
    return this.state();
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const t of [this.#debounce, this.#confirm]) if (t !== undefined) clearTimeout(t);
    if (this.#recheck !== undefined) clearInterval(this.#recheck);
    this.#debounce = this.#confirm = this.#recheck = undefined;
    await this.#watcher.close();
    await this.#running;
  }

  #dryRunOf(p: ParsedPolicy): boolean {
    return this.#options.dryRun ?? p.dryRun;
  }

  /** The kubelet's `..data` rename publishes a whole file: read at once. Other changes are debounced. */
  #onEvent(name: string | undefined): void {
    if (this.#closed || this.#generation === 0) return;
    if (this.#confirm !== undefined) clearTimeout(this.#confirm);
    this.#confirm = undefined;
    if (this.#debounce !== undefined) clearTimeout(this.#debounce);
    const wait = name === DATA_LINK ? 0 : (this.#options.debounceMs ?? 20);
    this.#debounce = setTimeout(() => {
      this.#debounce = undefined;
      void this.#request('event').then(() => {
        if (this.#closed || this.#debounce !== undefined) return;
        this.#confirm = setTimeout(() => {
          this.#confirm = undefined;
          void this.#request('confirm');
        }, this.#options.settleMs ?? 100).unref();
      });
    }, wait).unref();
  }

  /** One read at a time; requests made meanwhile are merged into one more read after it. */
  #request(trigger: Trigger): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (this.#running !== undefined) {
      if (this.#again === undefined || this.#again === 'event') this.#again = trigger;
      this.#queued ??= this.#running.then(() => {
        this.#queued = undefined;
        const again = this.#again ?? trigger;
        this.#again = undefined;
        return this.#request(again);
      });
      return this.#queued;
    }
    this.#running = this.#read(trigger)
      .catch(() => undefined)
      .finally(() => {
        this.#running = undefined;
      });
    return this.#running;
  }

  async #read(trigger: Trigger): Promise<void> {
    let text: string;
    let parsed: ParsedPolicy | undefined;
    let hash: string;
    try {
      try {
        text = await readFile(this.file, 'utf8');
      } catch (cause) {
        throw new MeshlessError(codes.POLICY_INVALID, `policy file ${this.file}: cannot be read (${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}); check the mount and the path`, { file: this.file, cause });
      }
      hash = createHash('sha256').update(text).digest('hex');
      if (hash === this.#hash) {
        this.#recovered();
        return;
      }
      parsed = parsePolicy(text, this.file);
    } catch (err) {
      const error = isMeshlessError(err) ? err : new MeshlessError(codes.POLICY_INVALID, `policy file ${this.file}: ${(err as Error).message}`, { file: this.file, cause: err });
      if (trigger === 'start') throw error;
      this.#fail(error, trigger);
      return;
    }
    if (this.#closed) return;
    this.#apply(parsed, hash, trigger);
  }

  #apply(parsed: ParsedPolicy, hash: string, trigger: Trigger): void {
    const dryRun = this.#options.dryRun ?? parsed.dryRun;
    this.#authorize = dryRun ? dryRunAuthorizer(parsed.authorizer, { scope: 'policy-file', ...(this.#options.logger ? { logger: this.#options.logger } : {}) }) : parsed.authorizer;
    this.#policy = parsed;
    this.#hash = hash;
    this.#generation++;
    this.#loadedAt = new Date();
    this.#lastError = undefined;
    const state = this.state();
    const fields = { file: this.file, generation: state.generation, allow: parsed.allow, deny: parsed.deny, dryRun };
    if (trigger === 'start') {
      this.#log.info(fields, 'meshless: policy loaded');
      return;
    }
    this.#log.info({ ...fields, trigger }, 'meshless: policy file changed; new policy applied');
    if (channels.policyUpdate.hasSubscribers) channels.policyUpdate.publish({ ...fields });
    const change: PolicyChange = { origin: this.file, generation: state.generation, rules: parsed.allow };
    for (const listener of [...this.#listeners]) {
      try {
        listener(change);
      } catch (err) {
        this.#log.error({ file: this.file, listenerError: (err as Error)?.message ?? String(err) }, 'meshless: a policy change listener threw; the new policy is applied anyway');
      }
    }
    this.#emitSafely('update', state);
  }

  /**
   * A refused change: the last good policy stays. A read right after a file event may catch a
   * writer half-way: it is confirmed by the read `settleMs` later before being reported.
   */
  #fail(error: MeshlessError, trigger: Trigger): void {
    if (trigger === 'event') {
      this.#log.debug({ file: this.file, code: error.code, err: error.message }, 'meshless: policy file unreadable while changing; confirming shortly');
      return;
    }
    const repeated = this.#lastError?.message === error.message;
    this.#lastError = error;
    if (repeated) return;
    this.#log.warn({ file: this.file, code: error.code, err: error.message, ...(error.rule ? { rule: error.rule } : {}), generation: this.#generation }, `meshless: policy file change refused; policy generation ${this.#generation} stays in force`);
    if (channels.policyError.hasSubscribers) channels.policyError.publish({ file: this.file, error });
    if (this.listenerCount('error') > 0) this.#emitSafely('error', error);
  }

  #recovered(): void {
    if (this.#lastError === undefined) return;
    this.#lastError = undefined;
    this.#log.info({ file: this.file, generation: this.#generation }, 'meshless: policy file is back to the policy in force');
  }

  #emitSafely<K extends keyof PolicyFileEvents>(event: K, ...args: PolicyFileEvents[K]): void {
    try {
      (this.emit as (event: K, ...args: PolicyFileEvents[K]) => boolean)(event, ...args);
    } catch (err) {
      this.#log.error({ file: this.file, event, listenerError: (err as Error)?.message ?? String(err) }, `meshless: a '${event}' listener of the policy file threw`);
    }
  }
}

/**
 * A live policy from a mounted YAML or JSON file (a Kubernetes ConfigMap, for instance):
 *
 * ```yaml
 * allow: [spiffe://prod.example/ns/web/**]
 * deny: [spiffe://prod.example/ns/web/sa/batch]
 * dryRun: false
 * ```
 *
 * Resolves once the first policy is read and compiled; rejects with `MESHLESS_ERR_POLICY_INVALID`
 * (naming the file, line and rule) when it is bad. The result is an Authorizer to pass as `allow`
 * anywhere. The file is watched the way `fileSource` watches credentials (the kubelet's `..data`
 * swap, in-place edits, a periodic re-check): each change is parsed and compiled first; a good one
 * applies at once, and the servers and clients using the policy retire live connections whose peer
 * it no longer allows (as `setAllow` does); a bad one keeps the last good policy, logs and emits
 * `error` with the coded error.
 *
 * @example
 * const policy = await policyFile('/etc/meshless/policy/policy.yaml');
 * const server = createServer({ source, allow: policy }, app);
 */
export async function policyFile(file: string, options: PolicyFileOptions = {}): Promise<PolicyFile> {
  if (typeof file !== 'string' || file === '') {
    throw new MeshlessError(codes.INVALID_OPTION, 'policyFile needs the path of a YAML or JSON policy file', { field: 'file' });
  }
  const watcher = new PolicyFileWatcher(path.resolve(file), options);
  await watcher.start();
  const authorize = (peer: Peer): Decision => watcher.authorize(peer);
  const api: Record<string, unknown> = {
    file: watcher.file,
    state: () => watcher.state(),
    reload: () => watcher.reload(),
    close: () => watcher.close(),
  };
  for (const method of ['on', 'once', 'off'] as const) {
    api[method] = function (this: unknown, event: keyof PolicyFileEvents, listener: (...args: never[]) => void) {
      (watcher[method] as (e: string, l: (...args: never[]) => void) => unknown)(event, listener);
      return authorize;
    };
  }
  for (const [key, value] of Object.entries(api)) Object.defineProperty(authorize, key, { value, enumerable: key === 'file' });
  Object.defineProperty(authorize, 'rules', { get: () => watcher.rules, enumerable: true });
  Object.defineProperty(authorize, brand, { value: true });
  Object.defineProperty(authorize, POLICY_CHANGES, { value: (listener: PolicyChangeListener) => watcher.subscribe(listener) });
  return authorize as unknown as PolicyFile;
}
