import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import type { IssuedCertificate } from '@meshless/testing';

// A SPIFFE Workload API server for tests: real gRPC (grpc-js) on a real Unix socket in a temp
// dir, serving the spec's proto (vendored, loaded with @grpc/proto-loader: an encoder
// independent of the package's hand-written decoder). FetchX509SVID only; it checks the
// security header like SPIRE does, and lets a test push messages, deny, and restart.

const PROTO = join(import.meta.dirname, '..', '..', 'proto', 'workloadapi.proto');
const definition = protoLoader.loadSync(PROTO, { keepCase: true, longs: String, defaults: true });
const loaded = grpc.loadPackageDefinition(definition) as unknown as { SpiffeWorkloadAPI: { service: grpc.ServiceDefinition } };
const spec = loaded.SpiffeWorkloadAPI.service;
const fetchX509 = spec.FetchX509SVID!;
/** The spec's service, except that a Buffer written to a FetchX509SVID stream goes out as raw bytes (malformed-message tests). */
const service: grpc.ServiceDefinition = {
  ...spec,
  FetchX509SVID: { ...fetchX509, responseSerialize: (value: unknown) => (Buffer.isBuffer(value) ? value : fetchX509.responseSerialize(value)) },
};

/** Wire shape of an X509SVID (proto field names). */
export interface X509SvidWire {
  spiffe_id: string;
  x509_svid: Buffer;
  x509_svid_key: Buffer;
  bundle: Buffer;
  hint?: string;
}

export interface X509SvidResponseWire {
  svids: X509SvidWire[];
  crl?: Buffer[];
  federated_bundles?: Record<string, Buffer>;
}

/** DER of every certificate of a PEM text, concatenated (the Workload API's encoding). */
export function pemToDer(pem: string): Buffer {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  return Buffer.concat(blocks.map((b) => new X509Certificate(b).raw));
}

/** An X509SVID entry from an issued certificate: chain and bundle as DER, key as PKCS#8 DER. */
export function svidOf(issued: Pick<IssuedCertificate, 'cert' | 'key' | 'ca'>, options: { hint?: string; spiffeId?: string; bundle?: string } = {}): X509SvidWire {
  const leaf = new X509Certificate(issued.cert);
  const id = options.spiffeId ?? /URI:(spiffe:\/\/[^,\s]+)/.exec(leaf.subjectAltName ?? '')?.[1] ?? '';
  return {
    spiffe_id: id,
    x509_svid: pemToDer(issued.cert),
    x509_svid_key: createPrivateKey(issued.key).export({ type: 'pkcs8', format: 'der' }),
    bundle: pemToDer(options.bundle ?? issued.ca),
    ...(options.hint === undefined ? {} : { hint: options.hint }),
  };
}

interface OpenCall {
  call: grpc.ServerWritableStream<unknown, X509SvidResponseWire>;
}

export interface WorkloadApiServer {
  /** `unix:///…/agent.sock` */
  readonly address: string;
  readonly socketPath: string;
  /** Value of the `workload.spiffe.io` header of every call received, in order (undefined when absent). */
  readonly headers: Array<string | undefined>;
  /** Number of FetchX509SVID calls received. */
  readonly calls: number;
  /** When each call arrived (Date.now()), in order. */
  readonly callTimes: number[];
  /** Streams open now. */
  readonly openStreams: number;
  /** Sets the state served to new calls and pushes it to every open stream. */
  push(response: X509SvidResponseWire): void;
  /** Pushes raw bytes (not a valid message, for malformed-input tests) to every open stream. */
  pushRaw(bytes: Buffer): void;
  /** New calls (and, with `endOpen`, the open streams) end with this status; `undefined` serves again. */
  deny(code: grpc.status | undefined, details?: string, endOpen?: boolean): void;
  /** Ends every open stream with OK (a clean end of stream). */
  endStreams(): void;
  /** Stops the server (open streams break) and removes the socket. */
  stop(): Promise<void>;
  /** Starts it again on the same socket path, with the same state. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

export async function startWorkloadApi(options: { requireHeader?: boolean; tcp?: boolean } = {}): Promise<WorkloadApiServer> {
  const dir = mkdtempSync(join(tmpdir(), 'meshless-wlapi-'));
  const socketPath = join(dir, 'agent.sock');
  let address = `unix://${socketPath}`;
  let bindTo = address;
  const headers: Array<string | undefined> = [];
  const open = new Set<OpenCall>();
  let calls = 0;
  let state: X509SvidResponseWire | undefined;
  let denied: { code: grpc.status; details: string } | undefined;
  let server: grpc.Server | undefined;
  const requireHeader = options.requireHeader ?? true;

  const callTimes: number[] = [];
  const handler = (call: grpc.ServerWritableStream<unknown, X509SvidResponseWire>) => {
    calls++;
    callTimes.push(Date.now());
    const header = call.metadata.get('workload.spiffe.io')[0];
    headers.push(header === undefined ? undefined : String(header));
    if (requireHeader && header !== 'true') {
      call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: 'security header missing from request' });
      return;
    }
    if (denied) {
      call.emit('error', { code: denied.code, details: denied.details });
      return;
    }
    const entry: OpenCall = { call };
    open.add(entry);
    call.on('cancelled', () => open.delete(entry));
    call.on('close', () => open.delete(entry));
    if (state) call.write(state);
  };

  async function listen(): Promise<void> {
    server = new grpc.Server();
    server.addService(service, {
      FetchX509SVID: handler,
      FetchX509Bundles: (call: grpc.ServerWritableStream<unknown, unknown>) => call.emit('error', { code: grpc.status.UNIMPLEMENTED, details: 'not in this test server' }),
    });
    const port = await new Promise<number>((resolve, reject) => server!.bindAsync(bindTo, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
    if (options.tcp && bindTo.endsWith(':0')) {
      // Restarts reuse the port the first bind got.
      bindTo = `127.0.0.1:${port}`;
      address = `tcp://127.0.0.1:${port}`;
    }
  }

  async function stop(): Promise<void> {
    const s = server;
    server = undefined;
    open.clear();
    if (s) s.forceShutdown();
    rmSync(socketPath, { force: true });
  }

  if (options.tcp) bindTo = '127.0.0.1:0';
  await listen();
  return {
    get address() {
      return address;
    },
    socketPath,
    headers,
    callTimes,
    get calls() {
      return calls;
    },
    get openStreams() {
      return open.size;
    },
    push(response) {
      state = response;
      for (const { call } of open) call.write(response);
    },
    pushRaw(bytes) {
      for (const { call } of open) (call as unknown as { write(chunk: unknown): void }).write(bytes);
    },
    deny(code, details = 'no identity issued', endOpen = false) {
      denied = code === undefined ? undefined : { code, details };
      if (endOpen && denied) {
        for (const entry of [...open]) {
          open.delete(entry);
          entry.call.emit('error', { code: denied.code, details: denied.details });
        }
      }
    },
    endStreams() {
      for (const entry of [...open]) {
        open.delete(entry);
        entry.call.end();
      }
    },
    stop,
    restart: listen,
    async close() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
