import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { type Peer } from '@meshless/core';
import { cachedSocketPeer, socketPeer } from '@meshless/core/internal';

/** A request (anything with a `socket`) or a socket. */
export type PeerTarget = IncomingMessage | Socket | TLSSocket | { readonly socket?: unknown } | null | undefined;

/**
 * The verified peer of a request or socket, in O(1): the Peer cached on the TLS socket when the
 * connection was checked (computed once, on first use, on any other https server whose options
 * come from `serverTlsOptions`). Undefined for plain HTTP, or when the client presented no
 * certificate that verified (`socket.authorized` is false).
 */
export function peerOf(target: PeerTarget): Peer | undefined {
  if (target === null || target === undefined) return undefined;
  const socket = ('encrypted' in target ? target : (target as { socket?: unknown }).socket) as TLSSocket | null | undefined;
  if (socket === null || socket === undefined || socket.authorized !== true) return undefined;
  return cachedSocketPeer(socket) ?? socketPeer(socket);
}
