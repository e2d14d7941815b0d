import grpc from '@grpc/grpc-js';
import { peerOf } from '@meshless/grpc';

/** JSON messages, so neither side needs protoc: Python uses the same bytes with json.dumps. */
const serialize = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));
const deserialize = (bytes: Buffer): unknown => JSON.parse(bytes.toString('utf8'));

function method(path: string, requestStream: boolean, responseStream: boolean) {
  return { path, requestStream, responseStream, requestSerialize: serialize, requestDeserialize: deserialize, responseSerialize: serialize, responseDeserialize: deserialize, originalName: path.slice(path.lastIndexOf('/') + 1) };
}

/** `/meshless.test.Echo/*`: one method of each kind. */
export const echoService = {
  unary: method('/meshless.test.Echo/Unary', false, false),
  count: method('/meshless.test.Echo/Count', false, true),
  sum: method('/meshless.test.Echo/Sum', true, false),
  chat: method('/meshless.test.Echo/Chat', true, true),
} as unknown as grpc.ServiceDefinition;

/** `/meshless.test.Admin/*`: for per-method rules. */
export const adminService = {
  reset: method('/meshless.test.Admin/Reset', false, false),
  status: method('/meshless.test.Admin/Status', false, false),
} as unknown as grpc.ServiceDefinition;

export interface Reply {
  peer: string | null;
  serial: string | null;
  [key: string]: unknown;
}

function who(call: Parameters<typeof peerOf>[0]): Pick<Reply, 'peer' | 'serial'> {
  const peer = peerOf(call);
  return { peer: peer ? String(peer) : null, serial: peer ? peer.serialNumber : null };
}

/** Counts handler entries, so a test can prove a refused call never reached one. */
export const handlerRuns = { count: 0 };

export const echoImplementation: grpc.UntypedServiceImplementation = {
  unary(call: grpc.ServerUnaryCall<{ text?: string }, Reply>, callback: grpc.sendUnaryData<Reply>) {
    handlerRuns.count++;
    callback(null, { ...who(call), text: call.request.text ?? '' });
  },
  count(call: grpc.ServerWritableStream<{ n: number; intervalMs?: number }, Reply>) {
    handlerRuns.count++;
    const { n, intervalMs = 0 } = call.request;
    let i = 0;
    const next = (): void => {
      if (call.cancelled) return;
      if (i >= n) {
        call.end();
        return;
      }
      call.write({ ...who(call), i: i++ });
      if (intervalMs > 0) setTimeout(next, intervalMs);
      else setImmediate(next);
    };
    next();
  },
  sum(call: grpc.ServerReadableStream<{ value: number }, Reply>, callback: grpc.sendUnaryData<Reply>) {
    handlerRuns.count++;
    let total = 0;
    call.on('data', (m: { value: number }) => (total += m.value));
    call.on('end', () => callback(null, { ...who(call), total }));
  },
  chat(call: grpc.ServerDuplexStream<{ text: string }, Reply>) {
    handlerRuns.count++;
    call.on('data', (m: { text: string }) => call.write({ ...who(call), text: m.text.toUpperCase() }));
    call.on('end', () => call.end());
  },
};

export const adminImplementation: grpc.UntypedServiceImplementation = {
  reset(call: grpc.ServerUnaryCall<unknown, Reply>, callback: grpc.sendUnaryData<Reply>) {
    handlerRuns.count++;
    callback(null, { ...who(call), done: true });
  },
  status(call: grpc.ServerUnaryCall<unknown, Reply>, callback: grpc.sendUnaryData<Reply>) {
    handlerRuns.count++;
    callback(null, { ...who(call), ok: true });
  },
};

export const EchoClient = grpc.makeGenericClientConstructor(echoService, 'Echo');
export const AdminClient = grpc.makeGenericClientConstructor(adminService, 'Admin');
