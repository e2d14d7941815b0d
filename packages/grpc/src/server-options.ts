import { grpc } from './grpc-js.js';

/** Default age after which the server retires a connection (GOAWAY; open calls finish). */
export const DEFAULT_MAX_CONNECTION_AGE_MS = 10 * 60_000;

/**
 * grpc-js server options recommended with `serverCredentials`: `grpc.max_connection_age_ms`
 * (10 minutes, ±10 % jitter by grpc-js) so that existing connections move to the newest
 * certificates on both sides after a rotation: the server sends GOAWAY, the client opens a new
 * connection for new calls, calls in flight finish on the old one. No grace limit is set by
 * default, so a long stream is never cut; set `grpc.max_connection_age_grace_ms` to bound it.
 * Your own options win.
 *
 * @example new grpc.Server(serverOptions({ interceptors: [authorizeMethods({ … })] }))
 */
export function serverOptions(options: grpc.ServerOptions = {}): grpc.ServerOptions {
  return { 'grpc.max_connection_age_ms': DEFAULT_MAX_CONNECTION_AGE_MS, ...options };
}
