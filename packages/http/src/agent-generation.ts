import tls, { type SecureContext } from 'node:tls';
import { type Credential, type MeshlessError, type Peer, type RefusalClass, type TlsPolicy } from '@meshless/core';
import { clientSecureContextOptions } from '@meshless/core/internal';
import type { Agent, Dispatcher, Pool } from 'undici';
import type { ServerPolicy } from './agent-allow.js';
import { meshlessClientClass, type ClientGeneration } from './agent-client.js';
import type { ConnectorSettings } from './agent-options.js';
import type { ConnectCallback } from './connector.js';
import { Deadlines } from './deadlines.js';
import type { SessionCache } from './session-cache.js';
import { undici } from './undici-lazy.js';

/** What a generation reports to its agent. */
export interface GenerationEvents {
  allowed(generation: Generation, origin: string, peer: Peer, resumed: boolean): void;
  refused(generation: Generation, origin: string, failure: RefusalClass, resumed: boolean, error: MeshlessError, peer?: Peer): void;
  refresh(generation: Generation, reason: string): void;
}

export interface GenerationInit {
  readonly number: number;
  readonly credential: Credential;
  readonly policy: ServerPolicy;
  readonly sessions: SessionCache;
  readonly settings: ConnectorSettings;
  readonly tlsPolicy: TlsPolicy;
  readonly undiciOptions: Agent.Options;
  readonly events: GenerationEvents;
}

/** The client side of the TLS policy, as one SecureContext: built once per credential generation. */
function secureContextFor(credential: Credential, tlsPolicy: TlsPolicy): SecureContext {
  // The identity check is ours to run (on every connection, resumed ones included), so only the
  // secure-context part of the client options is used here.
  return tls.createSecureContext(clientSecureContextOptions(credential, tlsPolicy));
}

// Pools are given this so they do not build an unused connector of their own; every client
// replaces it with meshless's connector.
const unusedConnector = (_params: unknown, callback: ConnectCallback): void => callback(new Error('meshless: pool connector used in place of the client connector'), null);

/**
 * One generation of the agent: one credential, one allow policy, one SecureContext, one session
 * cache, and the undici Agent whose every socket is made and checked by meshless. A rotation or a
 * policy change makes a new generation; the old one closes gracefully.
 */
export class Generation implements ClientGeneration {
  readonly number: number;
  readonly credential: Credential;
  readonly policy: ServerPolicy;
  readonly sessions: SessionCache;
  readonly settings: ConnectorSettings;
  readonly tlsPolicy: TlsPolicy;
  readonly secureContext: SecureContext;
  readonly credentialNotAfter: number;
  readonly agent: Agent;
  /** Every connection's deadline (certificate notAfter, max age), on one timer. */
  readonly deadlines = new Deadlines();
  readonly #events: GenerationEvents;
  #lastOrigin: string | undefined;
  #lastPool: Pool | undefined;

  constructor(init: GenerationInit) {
    this.number = init.number;
    this.credential = init.credential;
    this.policy = init.policy;
    this.sessions = init.sessions;
    this.settings = init.settings;
    this.tlsPolicy = init.tlsPolicy;
    this.#events = init.events;
    this.credentialNotAfter = init.credential.notAfter.getTime();
    this.secureContext = secureContextFor(init.credential, init.tlsPolicy);
    const { Agent, Pool } = undici();
    const MeshlessClient = meshlessClientClass(init.settings.peerContext);
    const clientFactory = (origin: URL, options: object): Dispatcher => new MeshlessClient(origin, options, this);
    this.agent = new Agent({
      ...init.undiciOptions,
      factory: (origin: string | URL, options: object): Dispatcher => {
        const pool = new Pool(origin, { ...(options as Pool.Options), connect: unusedConnector as unknown as Pool.Options['connect'], factory: clientFactory });
        // The newest pool, for requests that name its origin exactly as the one that created it.
        this.#lastOrigin = typeof origin === 'string' ? origin : undefined;
        this.#lastPool = pool;
        return pool;
      },
    });
  }

  /**
   * Dispatches a request of this generation. A request to the origin of the newest pool goes
   * straight to that pool while it is open (no Agent hop per request: a client of one origin
   * goes through exactly the dispatchers a bare Pool would); anything else goes through the
   * Agent, which creates, finds and closes the pools. The Agent closes a pool when it lets it go,
   * so a pool it no longer holds is never used here.
   */
  dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const pool = this.#lastPool;
    if (pool !== undefined && options.origin === this.#lastOrigin && !pool.closed && !pool.destroyed) return pool.dispatch(options, handler);
    return this.agent.dispatch(options, handler);
  }

  /** Closes the generation gracefully: its connections finish their requests, then its deadline timer stops. */
  async close(): Promise<void> {
    try {
      await this.agent.close();
    } finally {
      this.deadlines.clear();
    }
  }

  /** Destroys the generation's connections at once, and stops its deadline timer. */
  async destroy(err: Error | null): Promise<void> {
    try {
      if (!this.agent.destroyed) await this.agent.destroy(err);
    } finally {
      this.deadlines.clear();
    }
  }

  onAllowed(origin: string, peer: Peer, resumed: boolean): void {
    this.#events.allowed(this, origin, peer, resumed);
  }

  onRefused(origin: string, failure: RefusalClass, resumed: boolean, error: MeshlessError, peer?: Peer): void {
    this.#events.refused(this, origin, failure, resumed, error, peer);
  }

  requestRefresh(reason: string): void {
    this.#events.refresh(this, reason);
  }
}
