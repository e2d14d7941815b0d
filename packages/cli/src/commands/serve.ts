import { allowList, isMeshlessError } from '@meshless/core';
import { optionalString, parseCommandLine, parseDuration, parsePort, positionalsExactly, requiredString, stringList } from '../args.js';
import { exitCodes, type Command } from '../command.js';
import { docLink } from '../docs.js';
import { federationFlags, federationHelp, federationOptions, hasFederation } from '../federation-flags.js';
import { UsageError } from '../usage.js';

const help = `Usage: meshless serve --dir CERTS [--federation TD=FILE…] [--bundle-map FILE] --allow RULE… [options]
       meshless serve --workload-api [ADDRESS] --allow RULE… [options]

A reference service with mutual TLS that rotates with its mount: run it to check a deployment
end to end, or as the other side while you write a client.

  HTTPS  GET /  →  {"peer":{"spiffeId":…,"dnsNames":[…]},"served":{"spiffeId":…,"serial":…,"generation":N}}
  gRPC   meshless.echo.v1.Echo/Who (proto/echo.proto in this package)

When listening it prints one JSON line on stdout: {"event":"ready","http":PORT,"grpc":PORT}.
Events (started, rotated, reload-failed, refused, frozen-mount, draining, stopped) are JSON
lines on stderr. SIGTERM
or SIGINT stops accepting, lets requests in flight finish, and exits 0.

Options:
  --dir DIR              the mounted credential (tls.crt/tls.key/ca.crt, svid.pem…, istio, gke)
  --workload-api [ADDR]  instead of --dir: SVIDs from the SPIFFE Workload API at ADDR (else
                         SPIFFE_ENDPOINT_SOCKET), e.g. unix:///spiffe-workload-api/spire-agent.sock
${federationHelp.trimEnd()}
                         (with --dir; clients of another trust domain need its bundle)
  --allow RULE           which clients may call (repeatable; '*' = any client whose
                         certificate verifies; the rules: ${docLink('allow-list.md')})
  --deny RULE            refuse these clients even when an allow rule matches (repeatable)
  --http PORT            serve HTTPS on PORT (0 picks a free port)
  --grpc PORT            serve gRPC on PORT (0 picks a free port)
  --host HOST            address to listen on (default 127.0.0.1)
  --drain-timeout DUR    longest wait for requests in flight on shutdown (default 10s)
  --log-level LEVEL      level of the SDK's own log lines on stderr: debug, info, warn, error,
                         silent (default error: the events above already cover rotations,
                         refusals and refused reloads)
  -h, --help             show this help
`;

export const serve: Command = {
  path: ['serve'],
  summary: 'run a reference HTTPS/gRPC service with mutual TLS that rotates with its mount',
  help,
  async run(argv, io) {
    const { values, positionals } = parseCommandLine(argv, {
      dir: { type: 'string' },
      'workload-api': { type: 'boolean' },
      allow: { type: 'string', multiple: true },
      deny: { type: 'string', multiple: true },
      http: { type: 'string' },
      grpc: { type: 'string' },
      host: { type: 'string' },
      'drain-timeout': { type: 'string' },
      'log-level': { type: 'string' },
      ...federationOptions,
    });
    if (values.help) {
      io.out(help);
      return exitCodes.ok;
    }
    const workloadApi = values['workload-api'] === true;
    if (workloadApi && positionals.length > 1) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[1])}: --workload-api takes one ADDRESS at most`, 'workload-api');
    if (!workloadApi) positionalsExactly(positionals, []);
    if (workloadApi && values.dir !== undefined) throw new UsageError('give --dir or --workload-api, not both', 'dir');
    const dir = workloadApi ? undefined : requiredString(values, 'dir');
    const federation = federationFlags(values);
    if (workloadApi && hasFederation(federation)) throw new UsageError('--federation and --bundle-map go with --dir: the Workload API hands its own federated bundles', 'federation');
    const allow = stringList(values, 'allow');
    const deny = stringList(values, 'deny');
    if (allow.length === 0) throw new UsageError("--allow is required: say which clients may call (e.g. --allow 'spiffe://prod.example/ns/web/**', or --allow '*' for any verified client)", 'allow');
    try {
      allowList(allow, { deny });
    } catch (err) {
      if (isMeshlessError(err)) throw new UsageError(err.message, 'allow');
      throw err;
    }
    const httpPort = optionalString(values, 'http');
    const grpcPort = optionalString(values, 'grpc');
    if (httpPort === undefined && grpcPort === undefined) throw new UsageError('give --http PORT, --grpc PORT or both (0 picks a free port)', 'http');
    const drain = optionalString(values, 'drain-timeout');
    const drainTimeoutMs = drain === undefined ? 10_000 : parseDuration(drain, 'drain-timeout');
    const level = optionalString(values, 'log-level') ?? 'error';
    const { isLogLevel, jsonLogger } = await import('../serve/json-logger.js');
    if (!isLogLevel(level)) throw new UsageError('--log-level must be one of debug, info, warn, error, silent', 'log-level');

    const { startService } = await import('../serve/service.js');
    const events = jsonLogger((line) => io.err(line), 'debug');
    const log = (at: 'info' | 'warn' | 'error', fields: object, msg: string) => events.event(at, fields, msg);
    const service = await startService({
      ...(dir === undefined ? { workloadApi: positionals[0] === undefined ? {} : { address: positionals[0] } } : { dir, federation }),
      allow,
      deny,
      ...(httpPort === undefined ? {} : { http: parsePort(httpPort, 'http') }),
      ...(grpcPort === undefined ? {} : { grpc: parsePort(grpcPort, 'grpc') }),
      host: optionalString(values, 'host') ?? '127.0.0.1',
      logger: jsonLogger((line) => io.err(line), level),
      log,
    });
    const { findFrozenMounts } = await import('@meshless/core/internal');
    const files = service.source.files;
    for (const frozen of files && dir ? await findFrozenMounts([files.cert, files.key, files.ca], [dir]) : []) {
      log('warn', { event: 'frozen-mount', path: frozen.path, kind: frozen.kind }, `${frozen.path} is a mount of its own (subPath): it will never see a rotation; mount the volume as a directory`);
    }
    const credential = service.source.current();
    log('info', { event: 'started', ...(dir === undefined ? { workloadApi: (service.source as { address?: string }).address } : { dir }), identity: String(credential.identity), serial: credential.leaf.serialNumber, notAfter: credential.notAfter.toISOString(), ...service.ports }, 'listening');
    io.out(JSON.stringify({ event: 'ready', ...service.ports }) + '\n');

    const signal = await new Promise<NodeJS.Signals>((resolve) => {
      const on = (s: NodeJS.Signals) => {
        process.off('SIGTERM', on);
        process.off('SIGINT', on);
        resolve(s);
      };
      process.on('SIGTERM', on);
      process.on('SIGINT', on);
    });
    log('info', { event: 'draining', signal, drainTimeoutMs }, 'stopping: no new connections, requests in flight finish');
    await service.close(drainTimeoutMs);
    log('info', { event: 'stopped' }, 'stopped');
    return exitCodes.ok;
  },
};
