import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SERVER_NAME, type CertFiles } from './certs.js';
import { spawnKept, type BenchChild } from './children.js';
import { freePort, waitForPort } from './ports.js';

export interface SidecarPair {
  /** Plain-HTTP port the client talks to (the client-side sidecar). */
  port: number;
  children: BenchChild[];
}

interface StunnelService {
  name: string;
  client: boolean;
  accept: number;
  connect: number;
  cert: string;
  key: string;
}

function stunnelConf(dir: string, certs: CertFiles, s: StunnelService): string {
  return [
    'foreground = yes',
    'pid =',
    'syslog = no',
    'debug = warning',
    `output = ${join(dir, `stunnel-${s.name}.log`)}`,
    `[${s.name}]`,
    `client = ${s.client ? 'yes' : 'no'}`,
    `accept = 127.0.0.1:${s.accept}`,
    `connect = 127.0.0.1:${s.connect}`,
    `cert = ${s.cert}`,
    `key = ${s.key}`,
    `CAfile = ${certs.ca}`,
    'verifyChain = yes',
    s.client ? `checkHost = ${SERVER_NAME}` : 'requireCert = yes',
    'sslVersionMin = TLSv1.3',
    'socket = l:TCP_NODELAY=1',
    'socket = r:TCP_NODELAY=1',
    '',
  ].join('\n');
}

/**
 * Starts what a mesh puts next to each workload, with stunnel: a client-side sidecar (plain in,
 * mTLS out) and a server-side one (mTLS in, client certificate required, plain out to `appPort`).
 */
export async function startStunnelPair(binary: string, dir: string, certs: CertFiles, appPort: number, verbose: boolean): Promise<SidecarPair> {
  const ingress = await freePort();
  const egress = await freePort();
  const children: BenchChild[] = [];
  try {
    for (const s of [
      { name: 'ingress', client: false, accept: ingress, connect: appPort, cert: certs.serverCert(), key: certs.serverKey() },
      { name: 'egress', client: true, accept: egress, connect: ingress, cert: certs.clientCert(), key: certs.clientKey() },
    ]) {
      const conf = join(dir, `stunnel-${s.name}.conf`);
      writeFileSync(conf, stunnelConf(dir, certs, s));
      const child = spawnKept(`stunnel-${s.name}`, binary, [conf], { verbose });
      children.push(child);
      await waitForPort(s.accept, 10_000, () => child.running);
    }
  } catch (err) {
    await Promise.all(children.map((c) => c.stop()));
    throw err;
  }
  return { port: egress, children };
}
