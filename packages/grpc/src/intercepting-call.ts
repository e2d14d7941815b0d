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

const AUTH_CONTEXT = Symbol('meshless.grpc.authContext');

/** The base call of an allowed call, answering `getAuthContext()` from its connection's verdict. */
type AuthorizedBaseCall = grpc.ServerInterceptingCallInterface & { [AUTH_CONTEXT]: AuthContext };

/** Shared by every allowed call (no closure per call): the AuthContext cached on the connection's verdict. */
function cachedAuthContext(this: AuthorizedBaseCall): AuthContext {
  return this[AUTH_CONTEXT];
}

/**
 * An allowed call: the call itself (grpc-js's base call, which the credentials' interceptor
 * receives first), passed on unwrapped, with `getAuthContext()` answered from the connection's
 * cache (an own property shadowing grpc-js's, which would read the certificate again on every
 * call). No wrapper per call: a `ServerInterceptingCall` would add a responder, a listener and
 * closures to every call and every message.
 */
export function authorizedCall(call: grpc.ServerInterceptingCallInterface, authContext: AuthContext): grpc.ServerInterceptingCall {
  const base = call as AuthorizedBaseCall;
  base[AUTH_CONTEXT] = authContext;
  base.getAuthContext = cachedAuthContext;
  return call as grpc.ServerInterceptingCall;
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
