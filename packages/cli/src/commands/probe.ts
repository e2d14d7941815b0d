import { allowList, isMeshlessError } from '@meshless/core';
import { optionalString, parseCommandLine, parseDuration, positionalsExactly, requiredString, stringList } from '../args.js';
import { exitCodes, type Command } from '../command.js';
import { json } from '../io.js';
import { federationFlags, federationHelp, federationOptions } from '../federation-flags.js';
import { UsageError } from '../usage.js';

const help = `Usage: meshless probe URL --dir CERTS [--allow RULE]… [--federation TD=FILE…] [options]

The first thing to run when a handshake fails. Connects to URL as a meshless client would
(presenting the credential in CERTS, trusting only its bundle) and shows: the server's
identity, TLS version and cipher, the chain it sent and whether it verifies to our bundle,
the time it has left, whether --allow accepts it, whether the server accepted our
certificate, and whether a second connection resumes the TLS session.

URL is https://HOST[:PORT][/PATH] (GET PATH over HTTP/1.1) or grpc://HOST[:PORT] (one call of
--method over HTTP/2). Exit status: 0 when the server verifies, --allow accepts it and it
accepts us; 1 with the MESHLESS_ERR_* code (or the network error) otherwise; 2 on a usage error.

Options:
  --dir DIR            our credential (any layout meshless recognises)
${federationHelp.replace(/ {3}(a |a federated)/g, ' $1').trimEnd()}
                       (a server of another trust domain needs its bundle)
  --allow RULE         rules the server's identity must pass (repeatable; default: not checked)
  --deny RULE          identities to refuse even when allowed (repeatable)
  --method PATH        gRPC method to call (default /grpc.health.v1.Health/Check); per-method
                       authorization shows only on a method the server serves
  --servername NAME    SNI name to send (default: the URL's host name)
  --timeout DURATION   for the connection and the answer (default 5s)
  --json               print the report as JSON
  -h, --help           show this help
`;

export const probeCommand: Command = {
  path: ['probe'],
  summary: "connect to an https:// or grpc:// server and show its identity, TLS details, and who refuses whom",
  help,
  async run(argv, io) {
    const { values, positionals } = parseCommandLine(argv, {
      dir: { type: 'string' },
      allow: { type: 'string', multiple: true },
      deny: { type: 'string', multiple: true },
      method: { type: 'string' },
      servername: { type: 'string' },
      timeout: { type: 'string' },
      json: { type: 'boolean' },
      ...federationOptions,
    });
    if (values.help) {
      io.out(help);
      return exitCodes.ok;
    }
    const [target] = positionalsExactly(positionals, ['url']) as [string];
    let url: URL;
    try {
      url = new URL(target);
    } catch {
      throw new UsageError(`${JSON.stringify(target)} is not a URL: write https://host:port/path or grpc://host:port`, 'url');
    }
    if (url.protocol !== 'https:' && url.protocol !== 'grpc:') throw new UsageError(`${url.protocol}// is not supported: use https:// or grpc://`, 'url');
    const dir = requiredString(values, 'dir');
    const allow = stringList(values, 'allow');
    const deny = stringList(values, 'deny');
    if (allow.length > 0 || deny.length > 0) {
      try {
        allowList(allow.length > 0 ? allow : '*', { deny });
      } catch (err) {
        if (isMeshlessError(err)) throw new UsageError(err.message, 'allow');
        throw err;
      }
    }
    const method = optionalString(values, 'method') ?? '/grpc.health.v1.Health/Check';
    if (!/^\/[^/]+\/[^/]+$/.test(method)) throw new UsageError(`--method ${JSON.stringify(method)} is not a gRPC method path like /package.Service/Method`, 'method');
    const timeout = optionalString(values, 'timeout');
    const timeoutMs = timeout === undefined ? 5000 : parseDuration(timeout, 'timeout');

    const { loadDirCredential } = await import('../credential-dir.js');
    const { probe } = await import('../probe/probe.js');
    const { renderProbe } = await import('../probe/render.js');
    const { credential, files } = await loadDirCredential(dir, federationFlags(values));
    const servername = optionalString(values, 'servername');
    const report = await probe({ url, credential, bundleFile: files.ca, allow, deny, method, timeoutMs, ...(servername ? { servername } : {}) });
    io.out(values.json ? json(report) : renderProbe(report));
    if (!report.ok && !values.json) io.err(`meshless probe: ${report.error!.code}\n`);
    return report.ok ? exitCodes.ok : exitCodes.failed;
  },
};
