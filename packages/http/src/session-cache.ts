import type { X509Certificate } from 'node:crypto';
import type { Peer, PresentedChain } from '@meshless/core';
import { BoundedMap, withoutPeerCertificate } from '@meshless/core/internal';

/** A TLS session the client may resume, with the server identity verified when it was made. */
export interface CachedSession {
  /** The session (ticket) bytes, as `tls.connect({ session })` takes them. */
  readonly session: Buffer;
  /**
   * The server's Peer, verified on the full handshake that created the session. A resumed TLS 1.3
   * session shows the client no certificate, so this is what a resumed connection is checked with.
   */
  readonly peer: Peer;
  /** The server's certificate and the path verified with it: re-verified against the current trust on resumption. */
  readonly presented: PresentedChain & { readonly peer: Peer; readonly intermediates: readonly X509Certificate[] };
}

/**
 * The client's TLS session cache: bounded, least recently used first out (a `get` that finds a
 * session counts as a use, as does a `set`), holding strong
 * references (undici's own cache holds WeakRefs that a GC empties, and is keyed by servername
 * alone). One cache belongs to one credential generation and one allow policy: when either
 * changes the agent starts an empty cache, so nothing verified under old trust or old rules
 * resumes. Keys name the origin and the SNI name.
 */
export class SessionCache {
  readonly #entries: BoundedMap<string, CachedSession>;

  /** @param max most sessions kept; 0 disables resumption. */
  constructor(max: number) {
    this.#entries = new BoundedMap(max);
  }

  /** The session for `key`, unless its server certificate has expired by `now`. Finding it makes it the most recently used. */
  get(key: string, now: number): CachedSession | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.peer.notAfter.getTime() > now) return entry;
    this.#entries.delete(key);
    return undefined;
  }

  /**
   * Keeps the newest session for `key`, with the server certificate its connection verified. The
   * session is kept without the server certificate OpenSSL serializes into it: Node shows a client
   * no certificate on a resumed session (`presented` stands in), and leaving it out spares
   * `tls.connect` decoding it on every resumption (~300 µs on OpenSSL 3).
   */
  set(key: string, session: Buffer, presented: CachedSession['presented']): void {
    if (this.#entries.max === 0) return;
    this.#entries.set(key, { session: withoutPeerCertificate(session), peer: presented.peer, presented });
  }

  /** Forgets the session for `key` (its server was refused on resumption). */
  delete(key: string): void {
    this.#entries.delete(key);
  }

  get size(): number {
    return this.#entries.size;
  }
}
