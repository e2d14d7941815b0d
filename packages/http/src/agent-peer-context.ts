import type { Peer } from '@meshless/core';
import type { Dispatcher } from 'undici';

/** Key of the verified server Peer in a request's undici `context`. */
export const PEER_CONTEXT_KEY: unique symbol = Symbol.for('meshless.peer');

/** The part of an undici request context meshless fills in. */
export interface PeerContext {
  readonly [PEER_CONTEXT_KEY]?: Peer;
}

/** Anything that carries an undici request `context`, or a context itself. */
export type PeerContextCarrier = { readonly context?: unknown } | PeerContext | null | undefined;

/**
 * The identity of the server that answered a request: the Peer verified on the connection that
 * carried it, in O(1). Works with what undici's `request()` resolves to, the data `stream()`'s
 * factory and `pipeline()`'s handler receive, and the `context` of a raw dispatch handler's
 * `onRequestStart`. A WHATWG `fetch` Response carries no context: use `agent.peerOf(origin)`.
 *
 * @example
 * const res = await request('https://payments.internal:8443/charge', { dispatcher: agent });
 * peerOfResponse(res)?.spiffeId; // 'spiffe://prod.example/ns/pay/sa/api'
 */
export function peerOfResponse(response: PeerContextCarrier): Peer | undefined {
  if (response === null || typeof response !== 'object') return undefined;
  const own = (response as PeerContext)[PEER_CONTEXT_KEY];
  if (own !== undefined) return own;
  const context = (response as { context?: unknown }).context;
  if (context === null || typeof context !== 'object') return undefined;
  return (context as PeerContext)[PEER_CONTEXT_KEY];
}

/** Where the handler wrapper reads the Peer of the connection a request is written to. */
export interface PeerHolder {
  readonly connectionPeer: Peer | undefined;
  /** `{ [PEER_CONTEXT_KEY]: connectionPeer }`, frozen, built once per connection. */
  readonly connectionContext: PeerContext | undefined;
  /** Called when a request's response has ended (after the handler saw it). */
  requestEnded(): void;
}

type LegacyHandler = Dispatcher.DispatchHandler & {
  onConnect?(abort: (err?: Error) => void, context?: object): void;
  onResponseStarted?(): void;
  onUpgrade?(statusCode: number, headers: Buffer[] | string[] | null, socket: unknown): void;
  onHeaders?(statusCode: number, headers: Buffer[], resume: () => void, statusText: string): boolean;
  onData?(chunk: Buffer): boolean;
  onComplete?(trailers: string[] | null): void;
  onError?(err: Error): void;
  onBodySent?(chunk: unknown): void;
  onRequestSent?(): void;
};

/**
 * Wraps the handler undici's Client receives (the legacy callback form, which is what a Pool hands
 * its clients) so that `onConnect`, called when the request is written to a socket, adds the
 * Peer of that socket to the request's context, and `onComplete` lets the client retire a socket
 * past its deadline between two requests. One small object per request.
 */
export class PeerContextHandler {
  readonly #handler: LegacyHandler;
  readonly #holder: PeerHolder;

  constructor(handler: LegacyHandler, holder: PeerHolder) {
    this.#handler = handler;
    this.#holder = holder;
  }

  onConnect(abort: (err?: Error) => void, context?: object): void {
    // undici's Client passes no context of its own: then the connection's frozen one is shared.
    if (context === undefined) {
      this.#handler.onConnect?.(abort, this.#holder.connectionContext);
      return;
    }
    const peer = this.#holder.connectionPeer;
    this.#handler.onConnect?.(abort, peer === undefined ? context : { ...context, [PEER_CONTEXT_KEY]: peer });
  }

  onResponseStarted(): void {
    this.#handler.onResponseStarted?.();
  }

  onUpgrade(statusCode: number, headers: Buffer[] | string[] | null, socket: unknown): void {
    this.#handler.onUpgrade?.(statusCode, headers, socket);
  }

  onHeaders(statusCode: number, headers: Buffer[], resume: () => void, statusText: string): boolean {
    return this.#handler.onHeaders?.(statusCode, headers, resume, statusText) !== false;
  }

  onData(chunk: Buffer): boolean {
    return this.#handler.onData?.(chunk) !== false;
  }

  onComplete(trailers: string[] | null): void {
    this.#handler.onComplete?.(trailers);
    this.#holder.requestEnded();
  }

  onError(err: Error): void {
    this.#handler.onError?.(err);
  }

  onBodySent(chunk: unknown): void {
    this.#handler.onBodySent?.(chunk);
  }

  onRequestSent(): void {
    this.#handler.onRequestSent?.();
  }
}

/** True when a handler uses the callback form this wrapper understands. */
export function isLegacyHandler(handler: object): handler is LegacyHandler {
  return typeof (handler as LegacyHandler).onConnect === 'function' && typeof (handler as { onRequestStart?: unknown }).onRequestStart !== 'function';
}
