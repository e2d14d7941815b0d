import type { KeyType } from '@meshless/testing';
import { parseCommandLine, parseDuration, positionalsExactly, requiredString, optionalString } from '../args.js';
import { exitCodes, type Command } from '../command.js';
import { UsageError } from '../usage.js';
import { formatDuration, json } from '../io.js';

const keyTypes: readonly KeyType[] = ['ec-p256', 'ec-p384', 'rsa-2048', 'ed25519'];

const help = `Usage: meshless ca init --out DIR --trust-domain TD [options]

Creates a development root CA for one SPIFFE trust domain and writes it to DIR:
  DIR/ca.crt   the root certificate (the trust bundle your services trust)
  DIR/ca.key   its private key, mode 0600 (keep it out of version control)

Options:
  --out DIR            directory to write to (created if missing)
  --trust-domain TD    SPIFFE trust domain, e.g. prod.example
  --key-type TYPE      ${keyTypes.join(' | ')} (default ec-p256)
  --ttl DURATION       validity of the root, e.g. 30d (default 365d)
  --force              replace an existing CA in DIR
  --json               print the result as JSON
  -h, --help           show this help

Run it once per trust domain to try federation, e.g. a partner's CA next to yours:
  meshless ca init --trust-domain partner.example --out dev-ca-partner
  meshless ca bundle --map --ca dev-ca --ca dev-ca-partner --out bundles.json

For development and tests only: in production, cert-manager or SPIRE is the CA.
`;

export const caInit: Command = {
  path: ['ca', 'init'],
  summary: 'create a development root CA for a trust domain',
  help,
  async run(argv, io) {
    const { values, positionals } = parseCommandLine(argv, {
      out: { type: 'string' },
      'trust-domain': { type: 'string' },
      'key-type': { type: 'string' },
      ttl: { type: 'string' },
      force: { type: 'boolean' },
      json: { type: 'boolean' },
    });
    if (values.help) {
      io.out(help);
      return exitCodes.ok;
    }
    positionalsExactly(positionals, []);
    const out = requiredString(values, 'out');
    const trustDomain = requiredString(values, 'trust-domain');
    if (!/^[a-z0-9._-]+$/.test(trustDomain)) {
      throw new UsageError(`--trust-domain ${JSON.stringify(trustDomain)} is not a SPIFFE trust domain: use lowercase letters, digits, '.', '_' and '-' (e.g. prod.example)`, 'trust-domain');
    }
    const keyType = optionalString(values, 'key-type') ?? 'ec-p256';
    if (!(keyTypes as readonly string[]).includes(keyType)) throw new UsageError(`--key-type must be one of ${keyTypes.join(', ')}`, 'key-type');
    const ttl = optionalString(values, 'ttl');
    const ttlMs = ttl === undefined ? 365 * 86_400_000 : parseDuration(ttl, 'ttl');
    // Loaded on use: the CA code pulls in an X.509 library that --help does not need.
    const { initCA } = await import('../ca/store.js');
    const ca = await initCA({ out, trustDomain, keyType: keyType as KeyType, ttlMs, force: values.force === true });
    const notAfter = new Date(ca.certificate.validTo);
    if (values.json) {
      io.out(json({ trustDomain: ca.trustDomain, cert: ca.certFile, key: ca.keyFile, serialNumber: ca.certificate.serialNumber, notAfter, fingerprint256: ca.certificate.fingerprint256 }));
    } else {
      io.out(
        `created CA for trust domain ${ca.trustDomain}\n` +
          `  root  ${ca.certFile}  (serial ${ca.certificate.serialNumber}, valid ${formatDuration(notAfter.getTime() - Date.now())})\n` +
          `  key   ${ca.keyFile}  (mode 0600)\n` +
          `next: meshless ca issue spiffe://${ca.trustDomain}/ns/default/sa/api --ca ${out} --out ./certs/api\n`,
      );
    }
    return exitCodes.ok;
  },
};
