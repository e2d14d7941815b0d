// What a mesh puts next to each workload, for the sidecar rows: a client-side sidecar (plain HTTP
// in, mTLS out: egress) and a server-side one (mTLS in with a client certificate required, plain
// out to the app: ingress), with stunnel or with nginx, each under bench/proc/keeper.mjs.
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { SERVER_NAME, type CertFiles } from './certs.js';
import { spawnKept, type BenchChild } from './children.js';

export interface SidecarPair {
  /** Plain-HTTP port the client talks to (the client-side sidecar). */
  port: number;
  children: BenchChild[];
}

/** A TCP port on 127.0.0.1 that was free a moment ago (for programs that need a fixed port). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Waits until 127.0.0.1:port accepts connections (polling, bounded), failing early if `child` exits. */
async function waitForPort(port: number, timeoutMs: number, child: BenchChild): Promise<void> {
  const canConnect = () =>
    new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port });
      const done = (ok: boolean) => {
        socket.destroy();
        resolve(ok);
      };
      socket.setTimeout(500, () => done(false)).once('connect', () => done(true)).once('error', () => done(false));
    });
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!child.running) throw new Error(`${child.name}, meant to listen on port ${port}, exited: ${child.tail()}`);
    if (await canConnect()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
}

type Side = 'ingress' | 'egress';

/** Starts the ingress sidecar (→ appPort), then the egress one (→ ingress); each must listen within 10 s. */
async function startPair(appPort: number, start: (side: Side, listen: number, upstream: number) => BenchChild): Promise<SidecarPair> {
  const ingress = await freePort();
  const egress = await freePort();
  const children: BenchChild[] = [];
  try {
    for (const [side, listen, upstream] of [['ingress', ingress, appPort], ['egress', egress, ingress]] as const) {
      children.push(start(side, listen, upstream));
      await waitForPort(listen, 10_000, children.at(-1)!);
    }
  } catch (err) {
    await Promise.all(children.map((c) => c.stop()));
    throw err;
  }
  return { port: egress, children };
}

/** The stunnel pair: server side with `verifyChain` + `requireCert`, client side with `checkHost`, TCP_NODELAY. */
export function startStunnelPair(binary: string, dir: string, certs: CertFiles, appPort: number, verbose: boolean): Promise<SidecarPair> {
  return startPair(appPort, (side, accept, connect) => {
    const client = side === 'egress';
    const conf = join(dir, `stunnel-${side}.conf`);
    writeFileSync(
      conf,
      [
        'foreground = yes',
        'pid =',
        'syslog = no',
        'debug = warning',
        `output = ${join(dir, `stunnel-${side}.log`)}`,
        `[${side}]`,
        `client = ${client ? 'yes' : 'no'}`,
        `accept = 127.0.0.1:${accept}`,
        `connect = 127.0.0.1:${connect}`,
        `cert = ${client ? certs.clientCert() : certs.serverCert()}`,
        `key = ${client ? certs.clientKey() : certs.serverKey()}`,
        `CAfile = ${certs.ca}`,
        'verifyChain = yes',
        client ? `checkHost = ${SERVER_NAME}` : 'requireCert = yes',
        'sslVersionMin = TLSv1.3',
        'socket = l:TCP_NODELAY=1',
        'socket = r:TCP_NODELAY=1',
        '',
      ].join('\n'),
    );
    return spawnKept(`stunnel-${side}`, binary, [conf], { verbose });
  });
}

/**
 * nginx tuned the way an operator tunes a sidecar (one worker, `daemon off`, long keep-alive both
 * ways, no disk buffering): the egress side verifies the server by name with our client
 * certificate, the ingress side requires a client certificate (`ssl_verify_client on`).
 */
function nginxConf(prefix: string, side: Side, certs: CertFiles, listen: number, upstream: number): string {
  const keepalive = 'keepalive_requests 1000000; keepalive_timeout 120s;';
  const tls =
    side === 'egress'
      ? [
          `proxy_ssl_certificate ${certs.clientCert()};`,
          `proxy_ssl_certificate_key ${certs.clientKey()};`,
          `proxy_ssl_trusted_certificate ${certs.ca};`,
          'proxy_ssl_verify on;',
          'proxy_ssl_verify_depth 2;',
          `proxy_ssl_name ${SERVER_NAME};`,
          'proxy_ssl_server_name on;',
          'proxy_ssl_protocols TLSv1.3;',
          'proxy_ssl_session_reuse on;',
        ]
      : [];
  return [
    'daemon off;',
    'worker_processes 1;',
    `pid ${join(prefix, `${side}.pid`)};`,
    `error_log ${join(prefix, `${side}-error.log`)} warn;`,
    'events { worker_connections 1024; }',
    'http {',
    '  access_log off;',
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${join(prefix, `${t}_temp`)};`),
    `  ${keepalive}`,
    `  upstream next { server 127.0.0.1:${upstream}; keepalive 64; ${keepalive} }`,
    '  server {',
    ...(side === 'egress'
      ? [`    listen 127.0.0.1:${listen};`]
      : [
          `    listen 127.0.0.1:${listen} ssl;`,
          `    ssl_certificate ${certs.serverCert()};`,
          `    ssl_certificate_key ${certs.serverKey()};`,
          `    ssl_client_certificate ${certs.ca};`,
          '    ssl_verify_client on;',
          '    ssl_verify_depth 2;',
          '    ssl_protocols TLSv1.3;',
        ]),
    '    location / {',
    `      proxy_pass ${side === 'egress' ? 'https' : 'http'}://next;`,
    ...['proxy_http_version 1.1;', 'proxy_set_header Connection "";', 'proxy_buffer_size 16k;', 'proxy_buffers 8 16k;', 'proxy_max_temp_file_size 0;', ...tls].map((l) => `      ${l}`),
    '    }',
    '  }',
    '}',
    '',
  ].join('\n');
}

/** The nginx pair: client → egress nginx → (mTLS) → ingress nginx → app, each with its own prefix directory. */
export function startNginxPair(binary: string, dir: string, certs: CertFiles, appPort: number, verbose: boolean): Promise<SidecarPair> {
  return startPair(appPort, (side, listen, upstream) => {
    const prefix = join(dir, `nginx-${side}`);
    mkdirSync(prefix, { recursive: true });
    // Workers run as an unprivileged user when nginx starts as root: let them in.
    chmodSync(dir, 0o755);
    chmodSync(prefix, 0o777);
    const conf = join(prefix, 'nginx.conf');
    writeFileSync(conf, nginxConf(prefix, side, certs, listen, upstream));
    return spawnKept(`nginx-${side}`, binary, ['-p', prefix, '-c', conf, '-e', join(prefix, `${side}-error.log`)], { verbose });
  });
}
