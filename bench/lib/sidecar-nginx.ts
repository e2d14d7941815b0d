import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SERVER_NAME, type CertFiles } from './certs.js';
import { spawnKept, type BenchChild } from './children.js';
import { freePort, waitForPort } from './ports.js';
import type { SidecarPair } from './sidecar-stunnel.js';

function common(prefix: string, name: string): string[] {
  return [
    'daemon off;',
    'worker_processes 1;',
    `pid ${join(prefix, `${name}.pid`)};`,
    `error_log ${join(prefix, `${name}-error.log`)} warn;`,
    'events { worker_connections 1024; }',
  ];
}

function temps(prefix: string): string[] {
  return ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `${t}_temp_path ${join(prefix, `${t}_temp`)};`);
}

/** Tuned the way an operator tunes a sidecar: long keep-alive both ways, no disk buffering. */
const proxyTuning = [
  'proxy_http_version 1.1;',
  'proxy_set_header Connection "";',
  'proxy_buffer_size 16k;',
  'proxy_buffers 8 16k;',
  'proxy_max_temp_file_size 0;',
];

/** Client-side sidecar: plain HTTP in, mTLS out (client certificate, server verified by name). */
function egressConf(prefix: string, certs: CertFiles, listen: number, upstream: number): string {
  return [
    ...common(prefix, 'egress'),
    'http {',
    '  access_log off;',
    ...temps(prefix).map((l) => `  ${l}`),
    '  keepalive_requests 1000000; keepalive_timeout 120s;',
    `  upstream peer { server 127.0.0.1:${upstream}; keepalive 64; keepalive_requests 1000000; keepalive_timeout 120s; }`,
    '  server {',
    `    listen 127.0.0.1:${listen};`,
    '    location / {',
    '      proxy_pass https://peer;',
    ...proxyTuning.map((l) => `      ${l}`),
    `      proxy_ssl_certificate ${certs.clientCert()};`,
    `      proxy_ssl_certificate_key ${certs.clientKey()};`,
    `      proxy_ssl_trusted_certificate ${certs.ca};`,
    '      proxy_ssl_verify on;',
    '      proxy_ssl_verify_depth 2;',
    `      proxy_ssl_name ${SERVER_NAME};`,
    '      proxy_ssl_server_name on;',
    '      proxy_ssl_protocols TLSv1.3;',
    '      proxy_ssl_session_reuse on;',
    '    }',
    '  }',
    '}',
    '',
  ].join('\n');
}

/** Server-side sidecar: mTLS in (`ssl_verify_client on`), plain HTTP out to the app. */
function ingressConf(prefix: string, certs: CertFiles, listen: number, app: number): string {
  return [
    ...common(prefix, 'ingress'),
    'http {',
    '  access_log off;',
    ...temps(prefix).map((l) => `  ${l}`),
    '  keepalive_requests 1000000; keepalive_timeout 120s;',
    `  upstream app { server 127.0.0.1:${app}; keepalive 64; keepalive_requests 1000000; keepalive_timeout 120s; }`,
    '  server {',
    `    listen 127.0.0.1:${listen} ssl;`,
    `    ssl_certificate ${certs.serverCert()};`,
    `    ssl_certificate_key ${certs.serverKey()};`,
    `    ssl_client_certificate ${certs.ca};`,
    '    ssl_verify_client on;',
    '    ssl_verify_depth 2;',
    '    ssl_protocols TLSv1.3;',
    '    location / {',
    '      proxy_pass http://app;',
    ...proxyTuning.map((l) => `      ${l}`),
    '    }',
    '  }',
    '}',
    '',
  ].join('\n');
}

/**
 * Starts the nginx pair: client → egress nginx → (mTLS) → ingress nginx → app on `appPort`.
 * Each nginx has its own prefix directory, one worker, `daemon off`.
 */
export async function startNginxPair(binary: string, dir: string, certs: CertFiles, appPort: number, verbose: boolean): Promise<SidecarPair> {
  const ingress = await freePort();
  const egress = await freePort();
  const children: BenchChild[] = [];
  try {
    for (const [name, port, text] of [
      ['ingress', ingress, (p: string) => ingressConf(p, certs, ingress, appPort)],
      ['egress', egress, (p: string) => egressConf(p, certs, egress, ingress)],
    ] as const) {
      const prefix = join(dir, `nginx-${name}`);
      mkdirSync(prefix, { recursive: true });
      // Workers run as an unprivileged user when nginx starts as root: let them in.
      chmodSync(dir, 0o755);
      chmodSync(prefix, 0o777);
      const conf = join(prefix, 'nginx.conf');
      writeFileSync(conf, text(prefix));
      const child = spawnKept(`nginx-${name}`, binary, ['-p', prefix, '-c', conf, '-e', join(prefix, `${name}-error.log`)], { verbose });
      children.push(child);
      await waitForPort(port, 10_000, () => child.running);
    }
  } catch (err) {
    await Promise.all(children.map((c) => c.stop()));
    throw err;
  }
  return { port: egress, children };
}
