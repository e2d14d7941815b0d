import type { ServiceDefinition } from '@grpc/grpc-js';

/** The gRPC scenario's one unary method: echoes its bytes back (no protobuf: identity serializers). */
const identity = (b: Buffer): Buffer => b;
export const echoService = {
  echo: { path: '/meshless.bench.Echo/Echo', requestStream: false, responseStream: false, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity },
} as unknown as ServiceDefinition;
