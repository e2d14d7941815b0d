import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { MeshlessError, SpiffeId, codes, loadCredential } from '@meshless/core';
import { certificatesToPem, parseCertificates } from '@meshless/core/internal';
import { optionalString, parseCommandLine, parseDuration, positionalsExactly, requiredString, stringList } from '../args.js';
import { exitCodes, type Command } from '../command.js';
import { formatDuration, json } from '../io.js';
import { isIssueLayout, issueLayouts } from '../layouts.js';
import { UsageError } from '../usage.js';

const help = `Usage: meshless ca issue SPIFFE_ID --ca DIR --out DIR [options]

Issues an X509-SVID for SPIFFE_ID from the CA in DIR (made by \`meshless ca init\`) and writes
it to --out. Re-issuing into the same --out rotates it; with the kubernetes layout the swap is
atomic (the kubelet's ..data rename), so a service watching the mount picks it up live.
Private keys are written with mode 0600.

Options:
  --ca DIR             the CA directory (ca.crt, ca.key)
  --out DIR            where to write the credential
  --dns NAME           add a DNS SAN (repeatable)
  --ttl DURATION       validity, e.g. 15m, 1h, 30d (default 1h)
  --layout LAYOUT      kubernetes (tls.crt, tls.key, ca.crt via ..data; default)
                       istio (cert-chain.pem, key.pem, root-cert.pem)
                       spiffe-helper (svid.pem, svid_key.pem, svid_bundle.pem)
                       files (tls.crt, tls.key, ca.crt as plain files)
  --trust FILE         also trust the roots in FILE: append them to the bundle (repeatable;
                       the overlap bundle of a CA rotation)
  --json               print the result as JSON
  -h, --help           show this help
`;

export const caIssue: Command = {
  path: ['ca', 'issue'],
  summary: 'issue a SPIFFE certificate into a directory (kubernetes, istio, spiffe-helper layouts)',
  help,
  async run(argv, io) {
    const { values, positionals } = parseCommandLine(argv, {
      ca: { type: 'string' },
      out: { type: 'string' },
      dns: { type: 'string', multiple: true },
      ttl: { type: 'string' },
      layout: { type: 'string' },
      trust: { type: 'string', multiple: true },
      json: { type: 'boolean' },
    });
    if (values.help) {
      io.out(help);
      return exitCodes.ok;
    }
    const [spiffeId] = positionalsExactly(positionals, ['spiffe_id']) as [string];
    const caDir = requiredString(values, 'ca');
    const out = requiredString(values, 'out');
    const layout = optionalString(values, 'layout') ?? 'kubernetes';
    if (!isIssueLayout(layout)) throw new UsageError(`--layout must be one of ${Object.keys(issueLayouts).join(', ')}; got ${JSON.stringify(layout)}`, 'layout');
    const ttl = optionalString(values, 'ttl');
    const ttlMs = ttl === undefined ? 3_600_000 : parseDuration(ttl, 'ttl');
    const dnsNames = stringList(values, 'dns');
    for (const name of dnsNames) {
      if (!/^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(name)) throw new UsageError(`--dns ${JSON.stringify(name)} is not a DNS name`, 'dns');
    }
    let id: SpiffeId;
    try {
      id = SpiffeId.parse(spiffeId);
    } catch (err) {
      throw new UsageError((err as Error).message, 'spiffe_id');
    }
    if (id.path === '') throw new UsageError(`${spiffeId} names a trust domain, not a workload: add a path, e.g. spiffe://${id.trustDomain}/ns/default/sa/api`, 'spiffe_id');

    // Loaded on use: the CA code pulls in an X.509 library that --help does not need.
    const { loadCA } = await import('../ca/store.js');
    const { writeLayout } = await import('../ca/write-layout.js');
    const ca = await loadCA(caDir);
    if (id.trustDomain !== ca.trustDomain) {
      throw new UsageError(`${spiffeId} is not in the CA's trust domain ${ca.trustDomain} (${ca.certFile}); use spiffe://${ca.trustDomain}/…`, 'spiffe_id');
    }
    const now = Date.now();
    const caNotAfter = Date.parse(ca.certificate.validTo);
    if (now + ttlMs > caNotAfter) {
      throw new MeshlessError(codes.CERT_EXPIRED, `--ttl ${formatDuration(ttlMs)} outlives the CA, which expires at ${new Date(caNotAfter).toISOString()}; use a shorter --ttl or a new CA`, { file: ca.certFile });
    }
    const bundle = [ca.certificate];
    for (const file of stringList(values, 'trust')) {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (cause) {
        throw new MeshlessError(codes.FILE_UNREADABLE, `cannot read --trust ${file} (${(cause as NodeJS.ErrnoException).code ?? 'error'})`, { file, cause });
      }
      for (const root of parseCertificates(text, { field: 'trust', file })) {
        if (!bundle.some((c) => c.fingerprint256 === root.fingerprint256)) bundle.push(root);
      }
    }
    const leaf = await ca.signer.issue({ spiffeId, dnsNames, notBefore: new Date(now - 60_000), notAfter: new Date(now + ttlMs) });
    const pem = { cert: leaf.cert, key: leaf.key, ca: certificatesToPem(bundle) };
    // Never write material that the SDK would refuse.
    const credential = loadCredential(pem);
    const files = await writeLayout(out, layout, pem);
    if (values.json) {
      io.out(json({ spiffeId, dnsNames, serialNumber: leaf.serialNumber, notBefore: credential.notBefore, notAfter: credential.notAfter, layout, dir: out, files, bundleRoots: bundle.length }));
    } else {
      const swap = issueLayouts[layout].atomicSwap ? ' (atomic ..data swap)' : '';
      io.out(
        `issued ${spiffeId}${dnsNames.length ? ` dns=${dnsNames.join(',')}` : ''}\n` +
          `  serial  ${leaf.serialNumber}\n` +
          `  valid   ${formatDuration(ttlMs)}, until ${credential.notAfter.toISOString()}\n` +
          `  wrote   ${layout} layout in ${out}${swap}: ${files.map((f) => basename(f)).join(', ')}` +
          `${bundle.length > 1 ? `\n  bundle  ${bundle.length} roots` : ''}\n`,
      );
    }
    return exitCodes.ok;
  },
};
