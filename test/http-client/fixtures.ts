// Integration fixtures for the meshless HTTP client: a real nginx (its own prefix, config and
// free loopback port, run in the foreground as a child process) and a TLS-terminating proxy on
// loopback that records every decrypted byte it receives.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls, { type TLSSocket } from 'node:tls';
import { waitFor } from '@meshless/testing';

export const NGINX = '/usr/sbin/nginx';

/** A free TCP port on 127.0.0.1 (bound once, then released for the child to bind). */
export async function freePort(): Promise<number> {
  const probe = net.createServer();
  probe.listen(0, '127.0.0.1');
  await new Promise((r) => probe.once('listening', r));
  const { port } = probe.address() as AddressInfo;
  await new Promise((r) => probe.close(r));
  return port;
}

/** True once something accepts TCP connections on the port. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export interface NginxFiles {
  /** Server certificate chain PEM (SPIFFE ID + DNS localhost). */
  cert: string;
  key: string;
  /** The CA bundle nginx verifies client certificates against. */
  clientCa: string;
}

export interface RunningNginx {
  readonly port: number;
  /** `https://localhost:<port>` */
  readonly origin: string;
  readonly dir: string;
  /** Access-log lines: `<serial> <session reused> <request uri>`. */
  accessLog(): Promise<string[]>;
  stop(): Promise<void>;
}

/**
 * Starts nginx with `ssl_verify_client on`, TLS 1.3, session tickets, one worker, everything
 * under a fresh temp prefix. Each response body is `<client serial> <r|.> <msec>`: the serial
 * nginx verified, whether the TLS session was resumed, and nginx's clock (epoch seconds, ms).
 */
export async function startNginx(files: NginxFiles): Promise<RunningNginx> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'meshless-nginx-'));
  const port = await freePort();
  await writeFile(path.join(dir, 'server.crt'), files.cert);
  await writeFile(path.join(dir, 'server.key'), files.key, { mode: 0o600 });
  await writeFile(path.join(dir, 'client-ca.crt'), files.clientCa);
  const runAsRoot = process.getuid?.() === 0 ? 'user root;' : '';
  const conf = `
${runAsRoot}
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 256; }
http {
  log_format meshless '$ssl_client_serial $ssl_session_reused $request_uri';
  access_log ${dir}/access.log meshless;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_timeout 30s;
  keepalive_requests 100000;
  server {
    listen 127.0.0.1:${port} ssl;
    server_name localhost;
    ssl_certificate ${dir}/server.crt;
    ssl_certificate_key ${dir}/server.key;
    ssl_client_certificate ${dir}/client-ca.crt;
    ssl_verify_client on;
    ssl_protocols TLSv1.3;
    ssl_session_tickets on;
    ssl_session_timeout 5m;
    location / {
      default_type text/plain;
      return 200 "$ssl_client_serial $ssl_session_reused $msec";
    }
  }
}
`;
  await writeFile(path.join(dir, 'nginx.conf'), conf);
  let stderr = '';
  const child: ChildProcess = spawn(NGINX, ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  let exited = false;
  child.once('exit', () => (exited = true));
  const deadline = Date.now() + 10_000;
  while (!(await accepts(port))) {
    if (exited || Date.now() > deadline) {
      child.kill('SIGKILL');
      const log = await readFile(path.join(dir, 'error.log'), 'utf8').catch(() => '');
      await rm(dir, { recursive: true, force: true });
      throw new Error(`nginx did not start on port ${port}: ${stderr} ${log}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    port,
    origin: `https://localhost:${port}`,
    dir,
    async accessLog() {
      const text = await readFile(path.join(dir, 'access.log'), 'utf8').catch(() => '');
      return text.split('\n').filter((l) => l.length > 0);
    },
    async stop() {
      if (!exited) {
        child.kill('SIGQUIT');
        await waitFor(() => exited, 5000, 'nginx to exit').catch(() => child.kill('SIGKILL'));
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Skips a mocha test (with a printed reason) when nginx is not installed. */
export function requireNginx(ctx: Mocha.Context): void {
  if (!existsSync(NGINX)) {
    console.log(`skipping: ${NGINX} is not installed (scripts/setup-system.sh installs it)`);
    ctx.skip();
  }
}

/** A TLS-terminating proxy on loopback: what a man in the middle runs. */
export interface TlsProxy {
  readonly port: number;
  /** Decrypted application bytes received from clients, after their handshake. */
  readonly bytesFromClients: () => number;
  /** TCP connections accepted, and how many of them have closed. */
  readonly connections: () => number;
  readonly closed: () => number;
  close(): Promise<void>;
}

/**
 * Terminates TLS with `cert`/`key` (no client certificate asked), then forwards the decrypted
 * bytes to `upstreamPort` over a new TLS connection (as `upstreamClient`), and back. Counts every
 * application byte a client sends it.
 */
export async function startTlsProxy(options: { cert: string; key: string; upstreamPort: number; upstreamClient: tls.ConnectionOptions }): Promise<TlsProxy> {
  let bytes = 0;
  let connections = 0;
  let closed = 0;
  const sockets = new Set<TLSSocket>();
  const server = tls.createServer({ cert: options.cert, key: options.key, minVersion: 'TLSv1.3' }, (client: TLSSocket) => {
    sockets.add(client);
    const upstream = tls.connect({ host: '127.0.0.1', port: options.upstreamPort, servername: 'localhost', ...options.upstreamClient });
    sockets.add(upstream);
    client.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    const end = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.once('close', end);
    upstream.once('close', end);
    client.on('error', end);
    upstream.on('error', end);
  });
  server.on('tlsClientError', () => undefined);
  server.on('connection', (raw: net.Socket) => {
    connections++;
    raw.once('close', () => closed++);
  });
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  return {
    port: (server.address() as AddressInfo).port,
    bytesFromClients: () => bytes,
    connections: () => connections,
    closed: () => closed,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
