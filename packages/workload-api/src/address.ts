import { isIP } from 'node:net';
import { MeshlessError, codes } from '@meshless/core';

/** The environment variable the SPIFFE Workload Endpoint spec names for the default address. */
export const SOCKET_ENV = 'SPIFFE_ENDPOINT_SOCKET';

/** A parsed Workload API address. */
export interface WorkloadApiAddress {
  /** The address as configured (`unix:///run/spire/agent.sock`, `tcp://127.0.0.1:8081`). */
  readonly address: string;
  /** The gRPC target to dial (`unix:///run/spire/agent.sock`, `127.0.0.1:8081`, `[::1]:8081`). */
  readonly target: string;
  readonly transport: 'unix' | 'tcp';
  /** Where the address came from. */
  readonly from: 'option' | typeof SOCKET_ENV;
}

const ALLOWED = 'unix:///absolute/path/to/agent.sock, unix:/absolute/path/to/agent.sock or tcp://<IP address>:<port>';

function invalid(value: string, from: string, why: string): MeshlessError {
  return new MeshlessError(codes.WORKLOAD_API_ADDRESS_INVALID, `Workload API address ${JSON.stringify(value)} (from ${from}) ${why}; write ${ALLOWED}`, { field: from === 'option' ? 'address' : SOCKET_ENV });
}

/**
 * Parses a Workload API address by the SPIFFE Workload Endpoint spec: `unix` with an absolute path
 * and no authority, query or fragment (`unix:///p` and `unix:/p`), or `tcp://<IP>:<port>` and
 * nothing else. Without `address`, `SPIFFE_ENDPOINT_SOCKET` is used.
 */
export function parseAddress(address: string | undefined, env: NodeJS.ProcessEnv = process.env): WorkloadApiAddress {
  const from = address === undefined ? SOCKET_ENV : 'option';
  const value = address ?? env[SOCKET_ENV];
  if (value === undefined || value === '') {
    throw new MeshlessError(
      codes.WORKLOAD_API_ADDRESS_INVALID,
      `no Workload API address: pass { address } or set ${SOCKET_ENV} (SPIRE's agent socket is usually unix:///run/spire/agent-sockets/spire-agent.sock, mounted by the SPIFFE CSI driver or a hostPath volume)`,
      { field: 'address' },
    );
  }
  if (typeof value !== 'string') throw invalid(String(value), from, 'is not a string');
  if (/\s/.test(value)) throw invalid(value, from, 'contains white space');
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(value)?.[1];
  if (scheme === undefined) throw invalid(value, from, 'has no scheme');
  if (value.includes('?')) throw invalid(value, from, 'must not have a query');
  if (value.includes('#')) throw invalid(value, from, 'must not have a fragment');
  const rest = value.slice(scheme.length + 1);
  switch (scheme.toLowerCase()) {
    case 'unix': {
      let path: string;
      if (rest.startsWith('//')) {
        const slash = rest.indexOf('/', 2);
        const authority = slash < 0 ? rest.slice(2) : rest.slice(2, slash);
        if (authority !== '') throw invalid(value, from, `must not have an authority (${JSON.stringify(authority)}): a unix address is unix:// followed by an absolute path, three slashes in all`);
        path = slash < 0 ? '' : rest.slice(slash);
      } else {
        path = rest;
      }
      if (path === '' || path === '/') throw invalid(value, from, 'has no socket path');
      if (!path.startsWith('/')) throw invalid(value, from, 'must name an absolute socket path');
      let decoded: string;
      try {
        decoded = decodeURIComponent(path);
      } catch {
        throw invalid(value, from, 'has a malformed percent-encoding in its path');
      }
      return Object.freeze({ address: value, target: `unix://${decoded}`, transport: 'unix', from });
    }
    case 'tcp': {
      if (!rest.startsWith('//')) throw invalid(value, from, 'must be tcp://<IP address>:<port>');
      const authority = rest.slice(2);
      if (authority.includes('/')) throw invalid(value, from, 'must not have a path');
      if (authority.includes('@')) throw invalid(value, from, 'must not have user info');
      const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(authority);
      if (!m) throw invalid(value, from, 'must be tcp://<IP address>:<port> (an IPv6 address in brackets)');
      const host = m[1] ?? m[2]!;
      const port = Number(m[3]);
      if (isIP(host) === 0) throw invalid(value, from, `must name an IP address, not ${JSON.stringify(host)} (the spec allows no host names)`);
      if (m[1] !== undefined && isIP(host) !== 6) throw invalid(value, from, 'has brackets around an address that is not IPv6');
      if (m[2] !== undefined && isIP(host) === 6) throw invalid(value, from, 'must put an IPv6 address in brackets');
      if (port < 1 || port > 65535) throw invalid(value, from, `has port ${port} out of range 1-65535`);
      return Object.freeze({ address: value, target: isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`, transport: 'tcp', from });
    }
    default:
      throw invalid(value, from, `has scheme ${JSON.stringify(scheme)}; only unix and tcp are allowed`);
  }
}
