import http2 from 'node:http2';
import type { TLSSocket } from 'node:tls';

/** How the server answered once the handshake was done. */
export interface ServerAnswer {
  /** True when the server answered at the application level (it accepted our certificate). */
  accepted: boolean;
  /** What it said: `HTTP 200`, `grpc-status 12 (UNIMPLEMENTED)`, or why nothing came. */
  summary: string;
  /** For gRPC: the status code of the call. */
  grpcStatus?: number;
  /** TLS alert or socket error text, when the server cut the connection. */
  error?: string;
}

const grpcStatusNames: Record<number, string> = {
  0: 'OK', 1: 'CANCELLED', 2: 'UNKNOWN', 3: 'INVALID_ARGUMENT', 4: 'DEADLINE_EXCEEDED', 5: 'NOT_FOUND', 6: 'ALREADY_EXISTS',
  7: 'PERMISSION_DENIED', 8: 'RESOURCE_EXHAUSTED', 9: 'FAILED_PRECONDITION', 10: 'ABORTED', 11: 'OUT_OF_RANGE',
  12: 'UNIMPLEMENTED', 13: 'INTERNAL', 14: 'UNAVAILABLE', 15: 'DATA_LOSS', 16: 'UNAUTHENTICATED',
};

function withTimeout<T>(timeoutMs: number, socket: TLSSocket, work: (done: (v: T) => void) => void, onTimeout: () => T): Promise<T> {
  return new Promise((resolve) => {
    let finished = false;
    const timer = setTimeout(() => done(onTimeout()), timeoutMs);
    function done(v: T) {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(v);
    }
    work(done);
  });
}

/** Sends `GET path` over HTTP/1.1 and reads the status line. */
export function httpAnswer(socket: TLSSocket, host: string, path: string, timeoutMs: number): Promise<ServerAnswer> {
  return withTimeout<ServerAnswer>(timeoutMs, socket, (done) => {
    let data = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      data += chunk;
      const line = /^HTTP\/\d(?:\.\d)? (\d{3})[^\r\n]*\r\n/.exec(data);
      if (line) done({ accepted: true, summary: `HTTP ${line[1]}` });
    });
    socket.on('error', (err: Error) => done({ accepted: false, summary: 'the server cut the connection', error: err.message }));
    socket.on('close', () => done({ accepted: false, summary: 'the server closed the connection right after the handshake, without answering' }));
    socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: meshless-probe\r\nConnection: close\r\n\r\n`);
  }, () => ({ accepted: false, summary: `no answer within ${timeoutMs} ms` }));
}

/** Calls `method` (an empty request message) over HTTP/2 on the socket and reads its grpc-status. */
export function grpcAnswer(socket: TLSSocket, authority: string, method: string, timeoutMs: number): Promise<ServerAnswer> {
  return withTimeout<ServerAnswer>(timeoutMs, socket, (done) => {
    const session = http2.connect(`https://${authority}`, { createConnection: () => socket });
    const finish = (answer: ServerAnswer) => {
      session.destroy();
      done(answer);
    };
    session.on('error', (err: Error) => finish({ accepted: false, summary: 'the server cut the connection', error: err.message }));
    session.on('close', () => finish({ accepted: false, summary: 'the server closed the connection right after the handshake, without answering' }));
    const call = session.request({ ':method': 'POST', ':path': method, 'content-type': 'application/grpc', te: 'trailers' });
    let status: number | undefined;
    let message = '';
    const read = (headers: http2.IncomingHttpHeaders) => {
      if (headers['grpc-status'] !== undefined) status = Number(headers['grpc-status']);
      if (headers['grpc-message'] !== undefined) message = decodeURIComponent(String(headers['grpc-message']));
    };
    call.on('response', read);
    call.on('trailers', read);
    call.on('error', (err: Error) => finish({ accepted: false, summary: 'the call failed', error: err.message }));
    call.on('close', () => {
      if (status === undefined) return finish({ accepted: false, summary: 'the server answered without a grpc-status' });
      const name = grpcStatusNames[status] ?? 'UNKNOWN';
      // PERMISSION_DENIED / UNAUTHENTICATED: the server's per-call check refused our identity.
      const refused = status === 7 || status === 16;
      finish({ accepted: !refused, grpcStatus: status, summary: `grpc-status ${status} (${name})${message && message !== name ? `: ${message}` : ''}` });
    });
    call.resume();
    call.end(Buffer.from([0, 0, 0, 0, 0]));
  }, () => ({ accepted: false, summary: `no answer within ${timeoutMs} ms` }));
}
