import type { TLSSocket } from 'node:tls';
import { setLongTimeout, type LongTimeout } from '@meshless/core/internal';
import type { Peer } from '@meshless/core';
import type { Client, Dispatcher } from 'undici';
import { PEER_CONTEXT_KEY, PeerContextHandler, isLegacyHandler, type PeerContext, type PeerHolder } from './agent-peer-context.js';
import { connectVerified, type ConnectCallback, type ConnectionOwner, type ConnectorContext, type ConnectParams } from './connector.js';
import type { Deadline, Deadlines } from './deadlines.js';
import { undici } from './undici-lazy.js';

/** A connector context that can also ask the agent for a fresh pool. */
export interface ClientGeneration extends ConnectorContext {
  /** An HTTP/2 connection is past its deadline but busy: move new requests to new connections. */
  requestRefresh(reason: string): void;
  /** The generation's connection deadlines, on one timer (no Node timer per connection). */
  readonly deadlines: Deadlines;
}

// setTimeout takes at most 2^31-1 ms; longer deadlines are re-armed.
/** How often a connection past its deadline is checked for idleness. */
export const RETIRE_POLL_MS = 50;

/** What the agent's pools see of a meshless client: an undici Client that owns verified sockets. */
export interface MeshlessClient extends Client, ConnectionOwner, PeerHolder {
  readonly retiring: boolean;
}

export type MeshlessClientClass = new (origin: string | URL, options: Client.Options, generation: ClientGeneration) => MeshlessClient;

let clientClass: MeshlessClientClass | undefined;
let peerContextClientClass: MeshlessClientClass | undefined;

/**
 * The MeshlessClient class, defined on first use: it extends undici's Client, which is loaded
 * only when the first agent is created (see undici-lazy.ts). With `peerContext`, a subclass that
 * wraps each request's handler; without it, the class adds no per-request step to undici's.
 */
export function meshlessClientClass(peerContext: boolean): MeshlessClientClass {
  clientClass ??= defineMeshlessClient(undici().Client);
  if (!peerContext) return clientClass;
  peerContextClientClass ??= definePeerContextClient(clientClass);
  return peerContextClientClass;
}

/** A MeshlessClient that puts the connection's Peer in each request's context (`peerContext: true`). */
function definePeerContextClient(Base: MeshlessClientClass): MeshlessClientClass {
  return class PeerContextClient extends Base {
    override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
      if (!isLegacyHandler(handler)) return super.dispatch(options, handler);
      return super.dispatch(options, new PeerContextHandler(handler, this) as Dispatcher.DispatchHandler);
    }
  };
}

/**
 * undici keeps a socket that must not take another request (`reset`) under this symbol: set on
 * a busy HTTP/1.1 socket, undici writes nothing more on it and closes it once its running
 * request has completed (queued requests go out on a new connection). Found by description;
 * when a future undici drops it, the retirement poll below still closes the socket once idle.
 */
function resetSymbolOf(socket: TLSSocket): symbol | undefined {
  resetSymbol ??= Object.getOwnPropertySymbols(socket).find((s) => s.description === 'reset');
  return resetSymbol;
}
let resetSymbol: symbol | undefined;

/**
 * An undici Client (one connection at a time) whose sockets come from meshless's connector, and
 * which retires each socket at its deadline (server certificate's notAfter, our own, or
 * `maxConnectionAgeMs`):
 * - an idle socket is closed at once;
 * - a busy HTTP/1.1 socket is closed as soon as its running request completes, before undici
 *   writes the next one on it (queued requests go out on a new connection);
 * - a busy HTTP/2 socket asks the agent to move new requests to a fresh pool, and closes when its
 *   streams have ended.
 * No request in progress is cut. A poll closes anything left once it is idle.
 *
 * Per request it adds nothing (no method of its own on the request path), unless the agent was
 * created with `peerContext: true`: then a subclass wraps each request's handler once so that
 * `peerOfResponse` finds the connection's Peer.
 */
function defineMeshlessClient(Base: typeof Client): MeshlessClientClass {
return class MeshlessClient extends Base implements ConnectionOwner, PeerHolder {
  readonly #generation: ClientGeneration;
  #socket: TLSSocket | undefined;
  #peer: Peer | undefined;
  #context: PeerContext | undefined;
  #retiring = false;
  /** The current connection's deadline, on the generation's shared timer. */
  #deadline: Deadline | undefined;
  /** The idleness poll of a connection past its deadline. */
  #timer: LongTimeout | undefined;
  /** Fires a connection's deadline (one function for every client: no closure per connection). */
  static readonly #onDeadline = (client: MeshlessClient): void => {
    client.#deadline = undefined;
    const socket = client.#socket;
    if (socket !== undefined) client.#retire(socket);
  };

  constructor(origin: string | URL, options: Client.Options, generation: ClientGeneration) {
    const owner: { client?: MeshlessClient } = {};
    const connect = (params: ConnectParams, callback: ConnectCallback): void => connectVerified(generation, params, callback, owner.client!);
    super(origin, { ...options, connect: connect as unknown as Client.Options['connect'] });
    owner.client = this;
    this.#generation = generation;
  }

  /** The Peer verified on the current connection (read when a request is written to it). */
  get connectionPeer(): Peer | undefined {
    return this.#peer;
  }

  /** The request context for requests on the current connection (frozen, shared). */
  get connectionContext(): PeerContext | undefined {
    return this.#context;
  }

  /** True while the current connection is past its deadline and waiting to close. */
  get retiring(): boolean {
    return this.#retiring;
  }

  /**
   * A request's response has been delivered. On a retiring HTTP/1.1 socket with nothing else
   * running, close it in a microtask: after undici has marked the request done, before its
   * deferred resume writes the next request on this socket.
   */
  requestEnded(): void {
    if (!this.#retiring) return;
    const socket = this.#socket;
    if (socket === undefined || socket.alpnProtocol === 'h2') return;
    queueMicrotask(() => {
      if (socket === this.#socket && !socket.destroyed && this.stats.running === 0) socket.destroy();
    });
  }

  adopt(socket: TLSSocket, peer: Peer, deadline: number): void {
    this.#clearTimer();
    this.#socket = socket;
    this.#peer = peer;
    this.#context = Object.freeze({ [PEER_CONTEXT_KEY]: peer });
    this.#retiring = false;
    socket.once('close', () => {
      if (this.#socket !== socket) return;
      this.#clearTimer();
      this.#socket = undefined;
      this.#retiring = false;
    });
    this.#arm(deadline);
  }

  #arm(deadline: number): void {
    this.#deadline = this.#generation.deadlines.add(deadline, MeshlessClient.#onDeadline, this);
  }

  #retire(socket: TLSSocket): void {
    if (socket !== this.#socket || socket.destroyed) return;
    this.#retiring = true;
    if (socket.alpnProtocol !== 'h2') {
      // No per-request hook to close it between two requests: let undici do it.
      const reset = resetSymbolOf(socket);
      if (reset !== undefined) (socket as unknown as Record<symbol, unknown>)[reset] = true;
    }
    this.#closeWhenIdle(socket, true);
  }

  #closeWhenIdle(socket: TLSSocket, first: boolean): void {
    this.#timer = undefined;
    if (socket !== this.#socket || socket.destroyed) return;
    if (this.stats.size === 0) {
      // Nothing queued or running on this client: undici reconnects on the next request.
      socket.destroy();
      return;
    }
    if (first && socket.alpnProtocol === 'h2') this.#generation.requestRefresh(`an HTTP/2 connection to ${this.#peer === undefined ? 'a server' : String(this.#peer)} reached its deadline while busy`);
    this.#timer = setLongTimeout(() => this.#closeWhenIdle(socket, false), RETIRE_POLL_MS);
  }

  #clearTimer(): void {
    this.#generation.deadlines.cancel(this.#deadline);
    this.#deadline = undefined;
    this.#timer?.clear();
    this.#timer = undefined;
  }
};
}
