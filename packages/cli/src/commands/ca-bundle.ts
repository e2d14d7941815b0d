import type { X509Certificate } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { MeshlessError, codes, formatBundleMap, formatSpiffeBundle } from '@meshless/core';
import { parseCertificates, trustDomainProblem } from '@meshless/core/internal';
import { trustDomainOfCA } from '../inspect/bundles.js';
import { optionalString, parseCommandLine, parseDuration, positionalsExactly, stringList } from '../args.js';
import { exitCodes, type Command } from '../command.js';
import { PUBLIC_MODE, writeFileAtomic } from '../files.js';
import { json } from '../io.js';
import { UsageError } from '../usage.js';

const help = `Usage: meshless ca bundle --ca CA [--ca CA…] [--map] [--out FILE] [options]

Writes CA certificates as a SPIFFE bundle (the JWK Set of the SPIFFE Trust Domain and Bundle
spec), or with --map as a bundle map { "trust_domains": { TD: <bundle>, … } } (the file grpc-go
reads as spiffe_trust_bundle_map_file, and fileSource({ bundleMap })). Hand it to the services
of another trust domain: fileSource({ dir, federation: { 'prod.example': FILE } }) or
fileSource({ dir, bundleMap: FILE }).

CA is a directory made by \`meshless ca init\` (its ca.crt is read), or a PEM file of CA
certificates; prefix it with TD= to name its trust domain (partner.example=ca.pem). Without a
prefix the trust domain is read from the CA's URI SAN spiffe://TD (ca init writes one).
Several --ca of one trust domain (a CA rotation) go into one bundle.

Options:
  --ca CA                  a CA directory or PEM file, optionally TD=… (repeatable)
  --map                    write a bundle map of every trust domain given
  --out FILE               write FILE atomically (default: print to stdout)
  --sequence N             spiffe_sequence (increase it at every change; default 1)
  --refresh-hint DURATION  spiffe_refresh_hint, e.g. 5m (default 5m)
  --json                   with --out, print what was written as JSON
  -h, --help               show this help
`;

interface CaInput {
  trustDomain: string;
  file: string;
  certs: X509Certificate[];
}

async function readCA(arg: string): Promise<CaInput> {
  const eq = arg.indexOf('=');
  const named = eq > 0 ? arg.slice(0, eq) : undefined;
  const path = eq > 0 ? arg.slice(eq + 1) : arg;
  let explicit: string | undefined;
  if (named !== undefined) {
    explicit = named.startsWith('spiffe://') ? named.slice('spiffe://'.length).replace(/\/$/, '') : named;
    const problem = trustDomainProblem(explicit);
    if (problem !== undefined) throw new UsageError(`--ca ${JSON.stringify(arg)}: ${JSON.stringify(named)} is not a trust domain (${problem})`, 'ca');
  }
  let file = path;
  try {
    if ((await stat(path)).isDirectory()) file = join(path, 'ca.crt');
  } catch (cause) {
    throw new MeshlessError(codes.FILE_UNREADABLE, `--ca ${path} cannot be read (${(cause as NodeJS.ErrnoException).code ?? 'error'}); pass a directory made by \`meshless ca init\` or a PEM file`, { file: path, cause });
  }
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new MeshlessError(codes.FILE_UNREADABLE, `${file} cannot be read (${(cause as NodeJS.ErrnoException).code ?? 'error'})`, { file, cause });
  }
  const certs = parseCertificates(text, { field: 'ca', file });
  const found = new Set(certs.map(trustDomainOfCA).filter((td): td is string => td !== undefined));
  for (const c of certs) {
    if (!c.ca) throw new MeshlessError(codes.BUNDLE_INVALID, `${file}: ${JSON.stringify(c.subject.replace(/\n/g, ', '))} is not a CA certificate; a bundle holds only CAs (pass ca.crt, not a workload's certificate)`, { file });
  }
  if (explicit !== undefined) {
    const other = [...found].find((td) => td !== explicit);
    if (other !== undefined) throw new MeshlessError(codes.BUNDLE_INVALID, `${file} holds a CA of trust domain ${other} (its URI SAN), not ${explicit}`, { file });
    return { trustDomain: explicit, file, certs };
  }
  if (found.size !== 1) {
    const why = found.size === 0 ? 'has no spiffe://TD URI SAN' : `names several trust domains (${[...found].join(', ')})`;
    throw new UsageError(`--ca ${arg}: the CA ${why}; name its trust domain: --ca partner.example=${path}`, 'ca');
  }
  return { trustDomain: [...found][0]!, file, certs };
}

function nonNegativeInteger(text: string, name: string): number {
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) throw new UsageError(`--${name} ${JSON.stringify(text)} must be a non-negative integer`, name);
  return Number(text);
}

export const caBundle: Command = {
  path: ['ca', 'bundle'],
  summary: 'write a SPIFFE bundle or a bundle map from CA files (for federation)',
  help,
  async run(argv, io) {
    const { values, positionals } = parseCommandLine(argv, {
      ca: { type: 'string', multiple: true },
      map: { type: 'boolean' },
      out: { type: 'string' },
      sequence: { type: 'string' },
      'refresh-hint': { type: 'string' },
      json: { type: 'boolean' },
    });
    if (values.help) {
      io.out(help);
      return exitCodes.ok;
    }
    positionalsExactly(positionals, []);
    const args = stringList(values, 'ca');
    if (args.length === 0) throw new UsageError('--ca is required (a CA directory or PEM file; repeat it for more)', 'ca');
    const sequenceText = optionalString(values, 'sequence');
    const sequence = sequenceText === undefined ? 1 : nonNegativeInteger(sequenceText, 'sequence');
    const hint = optionalString(values, 'refresh-hint');
    const refreshHintSeconds = Math.max(1, Math.round((hint === undefined ? 300_000 : parseDuration(hint, 'refresh-hint')) / 1000));
    const inputs = await Promise.all(args.map(readCA));
    const byDomain = new Map<string, X509Certificate[]>();
    for (const input of inputs) {
      const certs = byDomain.get(input.trustDomain) ?? [];
      for (const c of input.certs) if (!certs.some((x) => x.fingerprint256 === c.fingerprint256)) certs.push(c);
      byDomain.set(input.trustDomain, certs);
    }
    const domains = [...byDomain.keys()].sort();
    if (!values.map && domains.length > 1) {
      throw new UsageError(`the CAs are of ${domains.length} trust domains (${domains.join(', ')}): a SPIFFE bundle is one trust domain's; pass --map to write a bundle map`, 'ca');
    }
    const text = values.map ? formatBundleMap(byDomain, { sequence, refreshHintSeconds }) : formatSpiffeBundle(byDomain.get(domains[0]!)!, { sequence, refreshHintSeconds });
    const out = optionalString(values, 'out');
    if (out === undefined) {
      io.out(text);
      return exitCodes.ok;
    }
    await writeFileAtomic(out, text, PUBLIC_MODE);
    const summary = domains.map((td) => ({ trustDomain: td, authorities: byDomain.get(td)!.length }));
    if (values.json) {
      io.out(json({ file: out, format: values.map ? 'bundle-map' : 'spiffe-bundle', sequence, refreshHintSeconds, trustDomains: summary }));
    } else {
      const what = values.map ? 'bundle map' : `SPIFFE bundle of ${domains[0]}`;
      io.out(
        `wrote ${what} to ${out} (sequence ${sequence})\n` +
          summary.map((s) => `  ${s.trustDomain}: ${s.authorities} CA certificate${s.authorities === 1 ? '' : 's'}`).join('\n') +
          `\nuse: fileSource({ dir, ${values.map ? `bundleMap: '${out}'` : `federation: { '${domains[0]}': '${out}' }`} })\n`,
      );
    }
    return exitCodes.ok;
  },
};
