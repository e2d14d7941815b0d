import grpc from '@grpc/grpc-js';
import { adminImplementation, adminService, AdminClient, echoImplementation, echoService, EchoClient, type Reply } from './echo-service.js';

export interface Running {
  server: grpc.Server;
  port: number;
  target: string;
  close(): Promise<void>;
}

/** Binds a server with the Echo and Admin services on localhost, port 0. */
export async function startServer(credentials: grpc.ServerCredentials, options: grpc.ServerOptions = {}): Promise<Running> {
  const server = new grpc.Server(options);
  server.addService(echoService, echoImplementation);
  server.addService(adminService, adminImplementation);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('localhost:0', credentials, (err, p) => (err ? reject(err) : resolve(p))));
  return {
    server,
    port,
    target: `localhost:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => server.forceShutdown(), 2000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}

/** Client options that keep each test's connections its own. */
export const isolated: grpc.ChannelOptions = { 'grpc.use_local_subchannel_pool': 1 };

export type Echo = grpc.Client & Record<string, (...args: any[]) => any>;

export function echoClient(target: string, credentials: grpc.ChannelCredentials, options: grpc.ChannelOptions = {}): Echo {
  return new EchoClient(target, credentials, { ...isolated, ...options }) as unknown as Echo;
}

export function adminClient(target: string, credentials: grpc.ChannelCredentials, options: grpc.ChannelOptions = {}): Echo {
  return new AdminClient(target, credentials, { ...isolated, ...options }) as unknown as Echo;
}

const deadline = (ms: number) => ({ deadline: Date.now() + ms });

export function unary(client: Echo, method: string, request: unknown, timeoutMs = 5000): Promise<Reply> {
  return new Promise((resolve, reject) => {
    client[method]!(request, new grpc.Metadata(), deadline(timeoutMs), (err: grpc.ServiceError | null, reply: Reply) => (err ? reject(err) : resolve(reply)));
  });
}

export function serverStream(client: Echo, request: unknown, timeoutMs = 10_000, onMessage?: (m: Reply) => void): Promise<Reply[]> {
  return new Promise((resolve, reject) => {
    const out: Reply[] = [];
    const call = client.count!(request, new grpc.Metadata(), deadline(timeoutMs));
    call.on('data', (m: Reply) => {
      out.push(m);
      onMessage?.(m);
    });
    call.on('error', reject);
    call.on('end', () => resolve(out));
  });
}

export function clientStream(client: Echo, values: number[], timeoutMs = 5000): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const call = client.sum!(new grpc.Metadata(), deadline(timeoutMs), (err: grpc.ServiceError | null, reply: Reply) => (err ? reject(err) : resolve(reply)));
    for (const value of values) call.write({ value });
    call.end();
  });
}

export function bidi(client: Echo, texts: string[], timeoutMs = 5000): Promise<Reply[]> {
  return new Promise((resolve, reject) => {
    const out: Reply[] = [];
    const call = client.chat!(new grpc.Metadata(), deadline(timeoutMs));
    call.on('data', (m: Reply) => out.push(m));
    call.on('error', reject);
    call.on('end', () => resolve(out));
    for (const text of texts) call.write({ text });
    call.end();
  });
}

/** The grpc status code of a failed call (throws if the call succeeded). */
export async function failure(promise: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await promise;
  } catch (err) {
    return err as grpc.ServiceError;
  }
  throw new Error('expected the call to fail, but it succeeded');
}
