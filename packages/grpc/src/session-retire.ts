import { constants, type Http2Session } from 'node:http2';

/** Largest HTTP/2 stream id: a GOAWAY naming it lets every stream already opened finish. */
const LAST_STREAM_ID = 2 ** 31 - 1;

/**
 * Retires an HTTP/2 connection without failing its calls, the way grpc-js does at
 * `grpc.max_connection_age_ms`: GOAWAY (the client opens a new connection for new calls), then a
 * graceful close that lets open streams finish, then a hard close after `graceMs`.
 */
export function retireSession(session: Http2Session, graceMs: number): void {
  if (session.closed || session.destroyed) return;
  try {
    session.goaway(constants.NGHTTP2_NO_ERROR, LAST_STREAM_ID);
  } catch {
    session.destroy();
    return;
  }
  session.close();
  if (Number.isFinite(graceMs)) {
    const timer = setTimeout(() => {
      if (!session.destroyed) session.destroy();
    }, graceMs);
    timer.unref();
  }
}
