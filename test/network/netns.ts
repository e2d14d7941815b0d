import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

/**
 * Three hosts on one machine: `client` — `wire` — `server`, made of Linux network namespaces and
 * veth pairs, with `wire` routing between two private test subnets that exist only inside
 * these namespaces. Nothing leaves the namespaces.
 */
export interface TestNetwork {
  client: string;
  wire: string;
  server: string;
  clientAddr: string;
  serverAddr: string;
  /** A second address of the server, used by a man in the middle to reach it. */
  serverAltAddr: string;
  /** The wire's interface facing the server (capture point). */
  wireToServer: string;
  destroy(): void;
}

const IP = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip'].find((p) => {
  try {
    execFileSync(p, ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
});

function ip(...args: string[]): void {
  execFileSync(IP!, args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Why namespaces cannot be made here, or undefined when they can. */
export function networkUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (!IP) return 'iproute2 (ip) is not installed';
  if (process.getuid?.() !== 0) return 'creating network namespaces needs root (CAP_NET_ADMIN)';
  const probe = `mlprobe${randomBytes(3).toString('hex')}`;
  try {
    ip('netns', 'add', probe);
    ip('netns', 'del', probe);
  } catch (err) {
    return `ip netns add failed: ${(err as Error).message.split('\n')[0]}`;
  }
  return undefined;
}

export function createTestNetwork(): TestNetwork {
  const tag = randomBytes(3).toString('hex');
  const client = `ml-${tag}-c`;
  const wire = `ml-${tag}-w`;
  const server = `ml-${tag}-s`;
  const net: TestNetwork = {
    client,
    wire,
    server,
    clientAddr: '10.203.1.2',
    serverAddr: '10.203.2.2',
    serverAltAddr: '10.203.2.3',
    wireToServer: 'w1',
    destroy() {
      for (const ns of [client, wire, server]) {
        try {
          ip('netns', 'del', ns);
        } catch {
          /* already gone */
        }
      }
    },
  };
  try {
    for (const ns of [client, wire, server]) {
      ip('netns', 'add', ns);
      ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
    ip('link', 'add', `c0-${tag}`, 'netns', client, 'type', 'veth', 'peer', 'name', `w0-${tag}`, 'netns', wire);
    ip('link', 'add', `s0-${tag}`, 'netns', server, 'type', 'veth', 'peer', 'name', `w1-${tag}`, 'netns', wire);
    ip('-n', client, 'link', 'set', `c0-${tag}`, 'name', 'c0');
    ip('-n', wire, 'link', 'set', `w0-${tag}`, 'name', 'w0');
    ip('-n', wire, 'link', 'set', `w1-${tag}`, 'name', 'w1');
    ip('-n', server, 'link', 'set', `s0-${tag}`, 'name', 's0');
    ip('-n', client, 'addr', 'add', '10.203.1.2/24', 'dev', 'c0');
    ip('-n', wire, 'addr', 'add', '10.203.1.1/24', 'dev', 'w0');
    ip('-n', wire, 'addr', 'add', '10.203.2.1/24', 'dev', 'w1');
    ip('-n', server, 'addr', 'add', '10.203.2.2/24', 'dev', 's0');
    ip('-n', server, 'addr', 'add', '10.203.2.3/24', 'dev', 's0');
    for (const [ns, dev] of [[client, 'c0'], [wire, 'w0'], [wire, 'w1'], [server, 's0']] as const) ip('-n', ns, 'link', 'set', dev, 'up');
    ip('-n', client, 'route', 'add', 'default', 'via', '10.203.1.1');
    ip('-n', server, 'route', 'add', 'default', 'via', '10.203.2.1');
    execFileSync(IP!, ['netns', 'exec', wire, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1'], { stdio: 'ignore' });
  } catch (err) {
    net.destroy();
    throw err;
  }
  return net;
}

/** Runs a command inside a namespace (argv for spawn). */
export function inNamespace(ns: string, cmd: string, args: string[]): [string, string[]] {
  return [IP!, ['netns', 'exec', ns, cmd, ...args]];
}

/** The man in the middle takes the server's address: packets for it now end at the wire. */
export function stealAddress(net: TestNetwork, addr: string): void {
  ip('-n', net.wire, 'addr', 'add', `${addr}/32`, 'dev', 'lo');
}

export function returnAddress(net: TestNetwork, addr: string): void {
  ip('-n', net.wire, 'addr', 'del', `${addr}/32`, 'dev', 'lo');
}
