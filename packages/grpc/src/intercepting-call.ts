import type { Http2Session, ServerHttp2Stream } from 'node:http2';
import { grpc, type AuthContext } from './grpc-js.js';

/**
 * The HTTP/2 session (one per TLS connection) a call arrived on. Reads grpc-js 1.14's
 * `BaseServerInterceptingCall#stream`, which the first interceptor of a server (the one the
 * credentials install) receives; undefined if grpc-js ever hides it, and callers then fall back
 * to `getAuthContext()`.
 */
export function sessionOf(call: grpc.ServerInterceptingCallInterface): Http2Session | undefined {
  const stream = (call as unknown as { stream?: ServerHttp2Stream }).stream;
  return stream?.session;
}

/** An allowed call: passes everything through; answers `getAuthContext()` from the connection's cache. */
export class AuthorizedCall extends grpc.ServerInterceptingCall {
  readonly #authContext: AuthContext;
  constructor(next: grpc.ServerInterceptingCallInterface, authContext: AuthContext) {
    super(next);
    this.#authContext = authContext;
  }
  override getAuthContext(): AuthContext {
    return this.#authContext;
  }
}

/**
 * A call refused before the handler runs: the request metadata is never passed on (so neither
 * are messages, nor the handler started) and the call ends with `code` and `details`.
 */
export function refusedCall(call: grpc.ServerInterceptingCallInterface, code: grpc.status, details: string): grpc.ServerInterceptingCall {
  let sent = false;
  const refuse = (): void => {
    if (sent) return;
    sent = true;
    call.sendStatus({ code, details });
  };
  const listener = new grpc.ServerListenerBuilder()
    .withOnReceiveMetadata(() => refuse())
    .withOnReceiveMessage(() => refuse())
    .withOnReceiveHalfClose(() => refuse())
    .build();
  const responder = new grpc.ResponderBuilder().withStart((next) => next(listener)).build();
  return new grpc.ServerInterceptingCall(call, responder);
}
