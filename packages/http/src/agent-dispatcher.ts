import { BoundedMap } from '@meshless/core/internal';
import { EventEmitter } from 'node:events';
import {
  MeshlessError,
  channels,
  codes,
  type DenyRules,
  type DryRunOptions,
  type Credential,
  type Logger,
  type MeshlessMetrics,
  type Peer,
  type RefusalClass,
  type Rules,
  type Source,
  type TlsPolicy,
} from '@meshless/core';
import { onPolicyChange } from '@meshless/core/internal';
import type { Agent, Dispatcher, errors } from 'undici';
import { compileAllow, rulesIn, type AllowFor, type ServerPolicy } from './agent-allow.js';
import { PlaintextRoute } from './agent-plaintext.js';
import { Generation, type GenerationEvents } from './agent-generation.js';
import { splitAgentOptions, type ConnectorSettings, type CreateAgentOptions } from './agent-options.js';
import { SessionCache } from './session-cache.js';
import { undici } from './undici-lazy.js';

/** Payload of the agent's `'peerAllowed'` event: a server passed the check on a new connection. */
export interface ServerAllowed {
  readonly origin: string;
  readonly peer: Peer;
  /** True when the connection resumed a TLS session (checked with the Peer verified with it). */
  readonly resumed: boolean;
  /** The agent generation (credential and policy) the connection belongs to. */
  readonly generation: number;
}

/** Payload of the agent's `'peerRefused'` event: a server failed the check; its socket was destroyed. */
export interface ServerRefused {
  readonly origin: string;
  readonly failure: RefusalClass;
  /** True when the refused connection resumed a TLS session. */
  readonly resumed: boolean;
  /** The identity the server presented, when it presented one. */
  readonly peer?: Peer;
  /** The error the requests waiting for this connection failed with. */
  readonly error: MeshlessError;
  readonly generation: number;
}

/** Events a MeshlessAgent emits besides undici's. */
export interface MeshlessAgentEvents {
  peerAllowed: [event: ServerAllowed];
  peerRefused: [event: ServerRefused];
  generation: [generation: number, reason: string];
}

const MAX_REMEMBERED_ORIGINS = 1024;

/** The origin of a URL or origin string, or undefined when it is not a URL. */
function originOf(target: string | URL): string | undefined {
  try {
    return new URL(String(target)).origin;
  } catch {
    return undefined;
  }
}

/**
 * An undici Dispatcher that connects with our own credential and accepts only servers that pass
 * its allow rules, on every connection. Use it wherever undici takes a dispatcher: `request`,
 * `stream`, `pipeline`, `fetch`, or `setGlobalDispatcher(agent)` (which Node's built-in `fetch`
 * also uses).
 *
 * Events, besides undici's (`connect`, `disconnect`, `connectionError`, `drain`):
 * `'peerAllowed'` ({@link ServerAllowed}) and `'peerRefused'` ({@link ServerRefused}), once per
 * new connection; `'generation'` (number, reason) when a rotation or `setAllow` swaps the pool.
 */
export class MeshlessAgent extends (EventEmitter as unknown as new () => Dispatcher) {
  readonly #source: Source;
  readonly #settings: ConnectorSettings;
  readonly #tlsPolicy: TlsPolicy;
  readonly #undiciOptions: Agent.Options;
  readonly #logger: Logger;
  readonly #metrics: MeshlessMetrics;
  readonly #draining = new Set<Generation>();
  readonly #peers = new BoundedMap<string, Peer>(MAX_REMEMBERED_ORIGINS);
  readonly #events: GenerationEvents;
  #policy: ServerPolicy;
  #dryRun: DryRunOptions | undefined;
  #deny: DenyRules | undefined;
  #plaintext: PlaintextRoute | undefined;
  #stopPolicy: () => void = () => undefined;
  #generation: Generation;
  #closed = false;
  #destroyed = false;
  #closing: Promise<void> | undefined;
  #destroying: Promise<void> | undefined;

  readonly #onUpdate = (credential: Credential): void => {
    this.#swap(credential, this.#policy, new SessionCache(this.#settings.maxCachedSessions), 'credential rotated');
  };

  readonly #onSourceError = (err: MeshlessError): void => {
    this.#logger.warn({ code: err.code, err: err.message }, 'meshless agent: the credential source failed to reload; new connections keep the last good generation');
  };

  constructor(options: CreateAgentOptions) {
    super();
    becomeDispatcher();
    const { common, settings, policy, undiciOptions, plaintextOrigins } = splitAgentOptions(options);
    this.#settings = settings;
    this.#tlsPolicy = policy;
    this.#undiciOptions = undiciOptions;
    this.#logger = common.logger;
    this.#metrics = common.metrics;
    this.#events = {
      allowed: (generation, origin, peer, resumed) => this.#allowed(generation, origin, peer, resumed),
      refused: (generation, origin, failure, resumed, error, peer) => this.#refused(generation, origin, failure, resumed, error, peer),
      refresh: (generation, reason) => {
        if (generation === this.#generation && !this.#closed) this.#swap(generation.credential, generation.policy, generation.sessions, reason);
      },
    };
    this.#dryRun = common.dryRunOptions;
    this.#deny = common.deny;
    this.#policy = compileAllow(common.allow, 1, this.#deny, this.#dryRun);
    if (plaintextOrigins !== undefined && plaintextOrigins.length > 0) {
      this.#plaintext = new PlaintextRoute(plaintextOrigins, undiciOptions, this.#logger, this.#metrics);
    }
    this.#watchPolicy(common.allow);
    this.#source = common.source;
    this.#generation = this.#build(1, this.#source.current(), this.#policy, new SessionCache(settings.maxCachedSessions));
    this.#source.on('update', this.#onUpdate);
    this.#source.on('error', this.#onSourceError);
  }

  /** The credential new connections present. */
  get credential(): Credential {
    return this.#generation.credential;
  }

  /** The current generation: 1 at start, +1 at every rotation, `setAllow` or pool refresh. */
  get generation(): number {
    return this.#generation.number;
  }

  /** undici's per-origin pool statistics of the current generation. */
  get stats(): Agent['stats'] {
    return this.#generation.agent.stats;
  }

  /** Version of the allow policy: 1 at start, +1 at every `setAllow`. */
  get policyVersion(): number {
    return this.#policy.version;
  }

  /** `true` after `close()` or `destroy()`. */
  get closed(): boolean {
    return this.#closed;
  }

  /** `true` after `destroy()`. */
  get destroyed(): boolean {
    return this.#destroyed;
  }

  /**
   * The identity most recently verified for an origin (`https://host[:port]`, or any URL on it):
   * the way to learn who answers when the response carries no context (WHATWG `fetch`). For one
   * request's server, use `peerOfResponse(response)`.
   */
  peerOf(origin: string | URL): Peer | undefined {
    const key = originOf(origin);
    return key === undefined ? undefined : this.#peers.get(key);
  }

  /**
   * Replaces the allow rules, and the deny rules when `deny` is given (without it the current
   * deny rules stay; `deny: []` drops them), as `server.setAllow` does. Invalid rules throw and change nothing. New requests use a new
   * generation at once (new connections, empty session cache, so nothing verified under the old
   * rules resumes); connections of the previous generation finish their requests and close.
   */
  setAllow(allow: AllowFor, options: { deny?: DenyRules; dryRun?: boolean } = {}): void {
    if (this.#closed) throw new MeshlessError(codes.INVALID_OPTION, 'setAllow on a closed agent: create a new agent', { field: 'allow' });
    const dryRun = options.dryRun === undefined ? this.#dryRun : options.dryRun ? { scope: 'client', logger: this.#logger } : undefined;
    const deny = options.deny === undefined ? this.#deny : options.deny;
    const policy = compileAllow(allow, this.#policy.version + 1, deny, dryRun);
    this.#deny = deny;
    this.#dryRun = dryRun;
    this.#policy = policy;
    this.#watchPolicy(allow);
    this.#swap(this.#generation.credential, policy, new SessionCache(this.#settings.maxCachedSessions), 'allow rules changed', true);
  }

  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    if (this.#plaintext !== undefined) {
      const origin = this.#plaintext.match(options.origin);
      if (origin !== undefined) return this.#plaintext.dispatch(origin, options, handler);
    }
    return this.#generation.dispatch(options, handler);
  }

  override close(): Promise<void>;
  override close(callback: () => void): void;
  override close(callback?: () => void): Promise<void> | void {
    this.#stop();
    this.#closing ??= this.#destroying ?? Promise.all([...[this.#generation, ...this.#draining].map((g) => g.close()), this.#plaintext?.close()]).then(() => undefined);
    const done = this.#closing;
    if (callback === undefined) return done;
    void done.then(callback, callback);
  }

  override destroy(err: Error | null, callback: () => void): void;
  override destroy(callback: () => void): void;
  override destroy(err: Error | null): Promise<void>;
  override destroy(): Promise<void>;
  override destroy(errOrCallback?: Error | null | (() => void), callback?: () => void): Promise<void> | void {
    const err = typeof errOrCallback === 'function' ? null : (errOrCallback ?? null);
    const cb = typeof errOrCallback === 'function' ? errOrCallback : callback;
    this.#stop();
    this.#destroyed = true;
    this.#destroying ??= Promise.all([...[this.#generation, ...this.#draining].map((g) => g.destroy(err)), this.#plaintext?.destroy(err)]).then(() => undefined);
    const done = this.#destroying;
    if (cb === undefined) return done;
    void done.then(cb, cb);
  }

  #emit(event: 'generation' | 'peerAllowed' | 'peerRefused', ...args: unknown[]): void {
    EventEmitter.prototype.emit.call(this, event, ...args);
  }

  #stop(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#source.off('update', this.#onUpdate);
    this.#source.off('error', this.#onSourceError);
    this.#stopPolicy();
  }

  /** A live policy (policyFile) in `allow`: when it changes, new requests use a new generation, as with setAllow. */
  #watchPolicy(allow: AllowFor): void {
    this.#stopPolicy();
    this.#stopPolicy = onPolicyChange([...rulesIn(allow), this.#deny as Rules | undefined], () => {
      if (!this.#closed) this.#swap(this.#generation.credential, this.#policy, new SessionCache(this.#settings.maxCachedSessions), 'policy file changed');
    });
  }

  #build(number: number, credential: Credential, policy: ServerPolicy, sessions: SessionCache): Generation {
    const generation = new Generation({
      number,
      credential,
      policy,
      sessions,
      settings: this.#settings,
      tlsPolicy: this.#tlsPolicy,
      undiciOptions: this.#undiciOptions,
      events: this.#events,
    });
    const agent = generation.agent;
    agent.on('connect', (...args) => this.emit('connect', ...args));
    agent.on('disconnect', (...args) => this.emit('disconnect', ...args));
    agent.on('connectionError', (...args) => this.emit('connectionError', ...args));
    agent.on('drain', (...args) => this.emit('drain', ...args));
    return generation;
  }

  /** New requests go to a new generation now; the previous one closes once its requests finish. */
  #swap(credential: Credential, policy: ServerPolicy, sessions: SessionCache, reason: string, rethrow = false): void {
    if (this.#closed) return;
    const previous = this.#generation;
    let next: Generation;
    try {
      next = this.#build(previous.number + 1, credential, policy, sessions);
    } catch (err) {
      this.#logger.error({ err: (err as Error).message, reason }, 'meshless agent: could not build a new generation; new connections keep the previous one');
      if (rethrow) throw err;
      return;
    }
    this.#generation = next;
    this.#draining.add(previous);
    previous.close().then(
      () => this.#draining.delete(previous),
      (err: unknown) => {
        this.#draining.delete(previous);
        this.#logger.warn({ err: (err as Error)?.message, generation: previous.number }, 'meshless agent: closing a previous generation failed');
      },
    );
    this.#logger.info(
      { generation: next.number, reason, identity: String(credential.identity), serialNumber: credential.identity.serialNumber, policyVersion: policy.version },
      'meshless agent: new requests use a new generation',
    );
    this.#emit('generation', next.number, reason);
  }

  #allowed(generation: Generation, origin: string, peer: Peer, resumed: boolean): void {
    this.#peers.set(origin, peer);
    if (channels.peerAllowed.hasSubscribers) channels.peerAllowed.publish({ side: 'client', origin, peer, resumed });
    this.#logger.debug({ origin, peer: String(peer), serialNumber: peer.serialNumber, resumed, generation: generation.number }, 'meshless agent: server verified');
    const event: ServerAllowed = { origin, peer, resumed, generation: generation.number };
    this.#emit('peerAllowed', event);
  }

  #refused(generation: Generation, origin: string, failure: RefusalClass, resumed: boolean, error: MeshlessError, peer?: Peer): void {
    this.#logger.warn(
      { origin, failure, resumed, peer: peer === undefined ? undefined : String(peer), serialNumber: peer?.serialNumber, code: error.code, reason: error.message, generation: generation.number },
      'meshless agent: refused a server',
    );
    this.#metrics.refusals.add(1, { side: 'client', failure });
    if (channels.peerRefused.hasSubscribers) channels.peerRefused.publish({ side: 'client', origin, peer, failure, resumed, reason: error.message });
    const event: ServerRefused = peer === undefined ? { origin, failure, resumed, error, generation: generation.number } : { origin, failure, resumed, error, peer, generation: generation.number };
    this.#emit('peerRefused', event);
  }
}

/**
 * MeshlessAgent is an undici Dispatcher (`instanceof Dispatcher`, `request`, `stream`,
 * `pipeline`, `compose`…), but undici is loaded only when the first agent is created (a server
 * alone never loads it): the class starts as an EventEmitter, whose place in the chain undici's
 * Dispatcher (itself an EventEmitter, with no constructor state) takes then, once.
 */
function becomeDispatcher(): void {
  const { Dispatcher } = undici();
  if (Object.getPrototypeOf(MeshlessAgent.prototype) !== Dispatcher.prototype) Object.setPrototypeOf(MeshlessAgent.prototype, Dispatcher.prototype);
}

// Typed listeners for meshless's own events, next to undici's.
export interface MeshlessAgent {
  on(eventName: 'peerAllowed', listener: (event: ServerAllowed) => void): this;
  on(eventName: 'peerRefused', listener: (event: ServerRefused) => void): this;
  on(eventName: 'generation', listener: (generation: number, reason: string) => void): this;
  on(eventName: 'connect', callback: (origin: URL, targets: readonly Dispatcher[]) => void): this;
  on(eventName: 'disconnect', callback: (origin: URL, targets: readonly Dispatcher[], error: errors.UndiciError) => void): this;
  on(eventName: 'connectionError', callback: (origin: URL, targets: readonly Dispatcher[], error: errors.UndiciError) => void): this;
  on(eventName: 'drain', callback: (origin: URL) => void): this;
  once(eventName: 'peerAllowed', listener: (event: ServerAllowed) => void): this;
  once(eventName: 'peerRefused', listener: (event: ServerRefused) => void): this;
  once(eventName: 'generation', listener: (generation: number, reason: string) => void): this;
  once(eventName: 'connect', callback: (origin: URL, targets: readonly Dispatcher[]) => void): this;
  once(eventName: 'disconnect', callback: (origin: URL, targets: readonly Dispatcher[], error: errors.UndiciError) => void): this;
  once(eventName: 'connectionError', callback: (origin: URL, targets: readonly Dispatcher[], error: errors.UndiciError) => void): this;
  once(eventName: 'drain', callback: (origin: URL) => void): this;
  off(eventName: 'peerAllowed', listener: (event: ServerAllowed) => void): this;
  off(eventName: 'peerRefused', listener: (event: ServerRefused) => void): this;
  off(eventName: 'generation', listener: (generation: number, reason: string) => void): this;
  off(eventName: 'connect', callback: (origin: URL, targets: readonly Dispatcher[]) => void): this;
  off(eventName: 'disconnect', callback: (origin: URL, targets: readonly Dispatcher[], error: errors.UndiciError) => void): this;
  off(eventName: 'connectionError', callback: (origin: URL, targets: readonly Dispatcher[], error: errors.UndiciError) => void): this;
  off(eventName: 'drain', callback: (origin: URL) => void): this;
}
