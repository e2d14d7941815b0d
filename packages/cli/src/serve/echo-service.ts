import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** Path of proto/echo.proto in this package (the same from src/ and from dist/). */
export const ECHO_PROTO = fileURLToPath(new URL('../../proto/echo.proto', import.meta.url));

/** The fields of `meshless.echo.v1.WhoReply`, as proto-loader gives them (keepCase). */
export interface WhoReply {
  peer_spiffe_id: string;
  served_spiffe_id: string;
  served_serial: string;
  generation: number;
}

/** `meshless.echo.v1.Echo`: its service definition and a client constructor. */
export interface EchoPackage {
  service: grpc.ServiceDefinition;
  Client: grpc.ServiceClientConstructor;
}

/** Loads proto/echo.proto (field names kept as written, uint64 as a JS number). */
export function loadEcho(): EchoPackage {
  const definition = protoLoader.loadSync(ECHO_PROTO, { keepCase: true, longs: Number, defaults: true });
  const loaded = grpc.loadPackageDefinition(definition) as unknown as { meshless: { echo: { v1: { Echo: grpc.ServiceClientConstructor } } } };
  const Client = loaded.meshless.echo.v1.Echo;
  return { service: Client.service, Client };
}
