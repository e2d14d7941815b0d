import diagnostics_channel from 'node:diagnostics_channel';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { channels, fileSource, type Credential, type FederationFiles, type FileSource, type Logger, type Peer, type Source } from '@meshless/core';
import { serverCredentials, serverOptions, peerOf as grpcPeerOf } from '@meshless/grpc';
import { createServer, peerOf as httpPeerOf, type MeshlessServer } from '@meshless/http';
import { loadEcho, type WhoReply } from './echo-service.js';

/** Writes one structured event line (`{"event": …}`) at a level. */
export type EventLog = (level: 'info' | 'warn' | 'error', fields: { event: string } & Record<string, unknown>, msg: string) => void;

export interface ServiceOptions {
  /** Directory of the mounted credential (any layout fileSource recognises). */
  dir?: string;
  /** With `dir`: federated bundle files (fileSource's `federation` / `bundleMap`). */
  federation?: FederationFiles;
  /** Instead of `dir`: the SPIFFE Workload API (`address` undefined: SPIFFE_ENDPOINT_SOCKET). */
  workloadApi?: { address?: string };
  allow: string[];
  deny: string[];
  /** HTTPS port (0 picks a free one); undefined for no HTTPS listener. */
  http?: number;
  /** gRPC port (0 picks a free one); undefined for no gRPC listener. */
  grpc?: number;
  host: string;
  /** Logger handed to the SDK (fileSource, createServer, serverCredentials). */
  logger: Logger;
  /** Where the service's own events go. */
  log: EventLog;
}

/** A running `meshless serve`. */
export interface RunningService {
  /** A FileSource with `dir`, a Workload API source with `workloadApi`. */
  readonly source: Source & Partial<Pick<FileSource, 'files'>>;
  /** The ports actually bound. */
  readonly ports: { http?: number; grpc?: number };
  /** Stops accepting, lets requests in flight finish (at most `timeoutMs`), then closes everything. */
  close(timeoutMs: number): Promise<void>;
}

/** What `GET /` answers. */
export interface WhoBody {
  peer: { spiffeId: string | null; dnsNames: string[] };
  served: { spiffeId: string | null; serial: string; generation: number };
}

function peerJson(peer: Peer | undefined): WhoBody['peer'] {
  return { spiffeId: peer?.spiffeId ?? null, dnsNames: [...(peer?.dnsNames ?? [])] };
}

/**
 * Starts the reference service: HTTPS (`GET /` says who called and what was served) and/or gRPC
 * (`meshless.echo.v1.Echo/Who`), both with mutual TLS from a mounted directory that rotates live.
 */
export async function startService(options: ServiceOptions): Promise<RunningService> {
  const { log, logger } = options;
  const source: RunningService['source'] = options.workloadApi
    ? await (await import('@meshless/workload-api')).workloadApiSource({ ...options.workloadApi, logger })
    : await fileSource({ dir: options.dir!, ...options.federation }, { logger });
  // Which generation a served certificate belongs to, by serial: a connection keeps the
  // certificate of its handshake, so "served" is read from the connection, not the source.
  const generationOf = new Map<string, number>();
  const remember = (c: Credential) => generationOf.set(c.leaf.serialNumber, c.generation);
  remember(source.current());
  source.on('update', (credential, previous) => {
    remember(credential);
    log('info', {
      event: 'rotated',
      generation: credential.generation,
      identity: String(credential.identity),
      serial: credential.leaf.serialNumber,
      notAfter: credential.notAfter.toISOString(),
      previousSerial: previous.leaf.serialNumber,
      trustChanged: credential.bundleHash !== previous.bundleHash,
    }, `serving generation ${credential.generation}`);
  });
  source.on('error', (error) => {
    log('warn', { event: 'reload-failed', code: error.code, error: error.message, file: error.file, keptGeneration: source.current().generation }, 'a new credential was refused; the previous one is still served');
  });
  const onRefused = (message: unknown) => {
    const m = message as { side?: string; protocol?: string; peer?: Peer; failure?: string; reason?: string; remoteAddress?: string; decision?: { rule?: string } };
    if (m.side !== 'server') return;
    log('warn', { event: 'refused', protocol: m.protocol ?? 'http', failure: m.failure, peer: m.peer === undefined ? undefined : String(m.peer), rule: m.decision?.rule, reason: m.reason, remoteAddress: m.remoteAddress }, 'refused a client');
  };
  diagnostics_channel.subscribe(channels.peerRefused.name, onRefused);

  const ports: { http?: number; grpc?: number } = {};
  let https: MeshlessServer | undefined;
  let grpcServer: grpc.Server | undefined;
  try {
    if (options.http !== undefined) {
      https = createServer({ source, allow: options.allow, deny: options.deny, logger }, (req, res) => answerHttp(req, res, source, generationOf));
      const server = https;
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(options.http, options.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      ports.http = (server.address() as AddressInfo).port;
    }
    if (options.grpc !== undefined) {
      const echo = loadEcho();
      grpcServer = new grpc.Server(serverOptions());
      grpcServer.addService(echo.service, {
        Who: (call: grpc.ServerUnaryCall<object, WhoReply>, callback: grpc.sendUnaryData<WhoReply>) => {
          const served = source.current();
          callback(null, {
            peer_spiffe_id: grpcPeerOf(call)?.spiffeId ?? '',
            served_spiffe_id: served.identity.spiffeId ?? '',
            served_serial: served.leaf.serialNumber,
            generation: served.generation,
          });
        },
      });
      const address = options.host.includes(':') ? `[${options.host}]:${options.grpc}` : `${options.host}:${options.grpc}`;
      const credentials = serverCredentials({ source, allow: options.allow, deny: options.deny, logger });
      const server = grpcServer;
      ports.grpc = await new Promise<number>((resolve, reject) => server.bindAsync(address, credentials, (err, port) => (err ? reject(err) : resolve(port))));
    }
  } catch (err) {
    await stop(https, grpcServer, source, onRefused, 0);
    throw err;
  }
  return { source, ports, close: (timeoutMs) => stop(https, grpcServer, source, onRefused, timeoutMs) };
}

function answerHttp(req: IncomingMessage, res: ServerResponse, source: Source, generationOf: Map<string, number>): void {
  const send = (status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  if (req.url !== '/' || (req.method !== 'GET' && req.method !== 'HEAD')) return send(404, { error: `no route ${req.method} ${req.url}: try GET /` });
  const own = (req.socket as TLSSocket).getX509Certificate?.();
  const current = source.current();
  const serial = own?.serialNumber ?? current.leaf.serialNumber;
  const served = serial === current.leaf.serialNumber ? current : undefined;
  const body: WhoBody = {
    peer: peerJson(httpPeerOf(req)),
    served: {
      spiffeId: (served ?? current).identity.spiffeId ?? null,
      serial,
      generation: generationOf.get(serial) ?? current.generation,
    },
  };
  send(200, body);
}

async function stop(https: MeshlessServer | undefined, grpcServer: grpc.Server | undefined, source: Source, onRefused: (m: unknown) => void, timeoutMs: number): Promise<void> {
  const drained: Promise<void>[] = [];
  if (https?.listening) {
    drained.push(new Promise<void>((resolve) => https.close(() => resolve())));
    https.closeIdleConnections();
  }
  if (grpcServer) {
    const server = grpcServer;
    drained.push(new Promise<void>((resolve) => server.tryShutdown(() => resolve())));
  }
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  const outcome = await Promise.race([Promise.all(drained).then(() => 'drained' as const), deadline]);
  clearTimeout(timer);
  if (outcome === 'timeout') {
    https?.closeAllConnections();
    grpcServer?.forceShutdown();
    await Promise.all(drained);
  }
  diagnostics_channel.unsubscribe(channels.peerRefused.name, onRefused);
  await source.close();
}
