import type { TLSSocket } from 'node:tls';
import type { Peer } from '@meshless/core';
import { Client, type Dispatcher } from 'undici';
import { PEER_CONTEXT_KEY, PeerContextHandler, isLegacyHandler, type PeerContext, type PeerHolder } from './agent-peer-context.js';
import { connectVerified, type ConnectCallback, type ConnectionOwner, type ConnectorContext, type ConnectParams } from './connector.js';

/** A connector context that can also ask the agent for a fresh pool. */
export interface ClientGeneration extends ConnectorContext {
  /** An HTTP/2 connection is past its deadline but busy: move new requests to new connections. */
  requestRefresh(reason: string): void;
}

// setTimeout takes at most 2^31-1 ms; longer deadlines are re-armed.
const MAX_TIMER_MS = 2 ** 31 - 1;
/** How often a connection past its deadline is checked for idleness. */
export const RETIRE_POLL_MS = 50;

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
 */
export class MeshlessClient extends Client implements ConnectionOwner, PeerHolder {
  readonly #generation: ClientGeneration;
  #socket: TLSSocket | undefined;
  #peer: Peer | undefined;
  #context: PeerContext | undefined;
  #retiring = false;
  #timer: NodeJS.Timeout | undefined;

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

  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    return super.dispatch(options, isLegacyHandler(handler) ? (new PeerContextHandler(handler, this) as Dispatcher.DispatchHandler) : handler);
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
    this.#arm(socket, deadline);
  }

  #arm(socket: TLSSocket, deadline: number): void {
    const delay = Math.max(0, deadline - Date.now());
    this.#timer = setTimeout(() => (delay > MAX_TIMER_MS ? this.#arm(socket, deadline) : this.#retire(socket)), Math.min(delay, MAX_TIMER_MS));
    this.#timer.unref();
  }

  #retire(socket: TLSSocket): void {
    if (socket !== this.#socket || socket.destroyed) return;
    this.#retiring = true;
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
    this.#timer = setTimeout(() => this.#closeWhenIdle(socket, false), RETIRE_POLL_MS);
    this.#timer.unref();
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
