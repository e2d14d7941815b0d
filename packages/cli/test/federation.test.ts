import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileSource, formatBundleMap, parseBundleMap, parseSpiffeBundle } from '@meshless/core';
import { ensureBuilt, runCli, startCli, tempDir, type RunningCli } from './helpers/cli.js';
import { waitFor } from '@meshless/testing';

interface Report {
  ok: boolean;
  error?: { code: string; message: string; file?: string };
  warnings: Array<{ kind: string; message: string }>;
  bundles?: Array<{ trustDomain: string; own: boolean; file: string; format: string; sequence?: number; authorities: Array<{ fingerprint256: string }>; ignored?: string }>;
}

// Two trust domains from the command line: `ca init` for each, `ca bundle` to hand one's CA to
// the other, `inspect` listing bundles per trust domain.
describe('meshless ca bundle and inspect with federation', function () {
  this.timeout(60_000);
  let dir: string;
  let cleanup: () => Promise<void>;
  let prodRoot: X509Certificate;
  let partnerRoot: X509Certificate;
  const p = (...parts: string[]): string => join(dir, ...parts);

  before(async () => {
    ensureBuilt();
    ({ dir, cleanup } = await tempDir());
    for (const [td, out] of [['prod.example', 'dev-ca'], ['partner.example', 'dev-ca-partner']] as const) {
      const r = await runCli(['ca', 'init', '--trust-domain', td, '--out', p(out)]);
      assert.equal(r.code, 0, r.stderr);
    }
    const r = await runCli(['ca', 'issue', 'spiffe://prod.example/ns/pay/sa/api', '--ca', p('dev-ca'), '--out', p('certs', 'api')]);
    assert.equal(r.code, 0, r.stderr);
    prodRoot = new X509Certificate(await readFile(p('dev-ca', 'ca.crt')));
    partnerRoot = new X509Certificate(await readFile(p('dev-ca-partner', 'ca.crt')));
  });
  after(() => cleanup());

  it('ca init makes a second trust domain\'s CA', () => {
    assert.match(partnerRoot.subjectAltName ?? '', /URI:spiffe:\/\/partner\.example/);
    assert.notEqual(partnerRoot.fingerprint256, prodRoot.fingerprint256);
  });

  it('ca bundle writes a SPIFFE bundle that parseSpiffeBundle reads (trust domain from the CA, or TD=)', async () => {
    const r = await runCli(['ca', 'bundle', '--ca', p('dev-ca-partner'), '--out', p('partner.json'), '--sequence', '4', '--refresh-hint', '10m']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /wrote SPIFFE bundle of partner\.example to .*partner\.json \(sequence 4\)/);
    const bundle = parseSpiffeBundle(await readFile(p('partner.json')), { trustDomain: 'partner.example' });
    assert.equal(bundle.format, 'jwks');
    assert.equal(bundle.sequence, 4);
    assert.equal(bundle.refreshHintSeconds, 600);
    assert.deepEqual(bundle.x509Authorities.map((c) => c.fingerprint256), [partnerRoot.fingerprint256]);
    // Printed to stdout without --out; a PEM file named with TD=.
    const stdout = await runCli(['ca', 'bundle', '--ca', `partner.example=${p('dev-ca-partner', 'ca.crt')}`]);
    assert.equal(stdout.code, 0, stdout.stderr);
    assert.deepEqual(parseSpiffeBundle(stdout.stdout).x509Authorities.map((c) => c.fingerprint256), [partnerRoot.fingerprint256]);
  });

  it('ca bundle --map writes a bundle map of every trust domain (a CA rotation: two roots in one bundle)', async () => {
    // A CA rotation of the partner: its old and new roots go into one bundle.
    assert.equal((await runCli(['ca', 'init', '--trust-domain', 'partner.example', '--out', p('dev-ca-partner-next')])).code, 0);
    const r = await runCli(['ca', 'bundle', '--map', '--ca', p('dev-ca'), '--ca', p('dev-ca-partner'), '--ca', p('dev-ca-partner-next'), '--out', p('bundles-rotation.json'), '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { format: string; trustDomains: Array<{ trustDomain: string; authorities: number }> };
    assert.equal(out.format, 'bundle-map');
    assert.deepEqual(out.trustDomains, [{ trustDomain: 'partner.example', authorities: 2 }, { trustDomain: 'prod.example', authorities: 1 }]);
    const map = parseBundleMap(await readFile(p('bundles-rotation.json')));
    assert.deepEqual([...map.keys()], ['partner.example', 'prod.example']);
    assert.equal(map.get('partner.example')!.x509Authorities[0]!.fingerprint256, partnerRoot.fingerprint256);
    assert.equal(map.get('partner.example')!.x509Authorities.length, 2);
    assert.equal((await runCli(['ca', 'bundle', '--map', '--ca', p('dev-ca'), '--ca', p('dev-ca-partner'), '--out', p('bundles.json')])).code, 0);
  });

  it('ca bundle refuses mixed trust domains without --map, a leaf, a trust domain the CA does not name (coded or usage errors)', async () => {
    const mixed = await runCli(['ca', 'bundle', '--ca', p('dev-ca'), '--ca', p('dev-ca-partner')]);
    assert.equal(mixed.code, 2);
    assert.match(mixed.stderr, /2 trust domains .*pass --map/);
    const leaf = await runCli(['ca', 'bundle', '--ca', `prod.example=${p('certs', 'api', 'tls.crt')}`]);
    assert.equal(leaf.code, 1);
    assert.match(leaf.stderr, /MESHLESS_ERR_BUNDLE_INVALID: .*not a CA certificate/);
    const wrong = await runCli(['ca', 'bundle', '--ca', `other.example=${p('dev-ca-partner')}`]);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /MESHLESS_ERR_BUNDLE_INVALID: .*trust domain partner\.example \(its URI SAN\), not other\.example/);
    const none = await runCli(['ca', 'bundle']);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /--ca is required/);
  });

  it('the bundle map is what fileSource({ bundleMap }) serves', async () => {
    const source = await fileSource({ dir: p('certs', 'api'), bundleMap: p('bundles.json') }, { recheckIntervalMs: 0, logger: { error() {}, warn() {}, info() {}, debug() {} } });
    try {
      assert.deepEqual([...source.current().bundles.keys()], ['partner.example', 'prod.example']);
    } finally {
      await source.close();
    }
  });

  it('inspect lists bundles per trust domain (own, then federated; a map entry for our own trust domain is ignored, and said)', async () => {
    const r = await runCli(['inspect', p('certs', 'api'), '--bundle-map', p('bundles.json'), '--federation', `spiffe://partner.example=${p('partner.json')}`, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as Report;
    assert.equal(report.ok, true);
    assert.deepEqual(report.bundles!.map((b) => [b.trustDomain, b.own, b.format, b.file.endsWith('.json') ? b.file.slice(dir.length + 1) : 'ca.crt']), [
      ['prod.example', true, 'pem', 'ca.crt'],
      ['partner.example', false, 'jwks', 'partner.json'],
      ['prod.example', false, 'jwks', 'bundles.json'],
    ]);
    assert.equal(report.bundles![1]!.sequence, 4);
    assert.match(report.bundles![2]!.ignored ?? '', /our own trust domain/);
    const kinds = report.warnings.map((w) => w.kind);
    assert.deepEqual(kinds, ['federation', 'federation']);
    assert.match(report.warnings[0]!.message, /partner\.example is in bundle map file .* and has its own federation file .*; the federation file wins/);
    const text = await runCli(['inspect', p('certs', 'api'), '--bundle-map', p('bundles.json')]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /bundle partner\.example +.*bundles\.json \(federated, SPIFFE bundle, sequence 1, 1 CA\)/);
  });

  it('inspect warns about another trust domain\'s root in our own bundle (a flattened bundle) and about a revoked bundle', async () => {
    const flat = p('certs', 'flat');
    const r0 = await runCli(['ca', 'issue', 'spiffe://prod.example/ns/pay/sa/web', '--ca', p('dev-ca'), '--out', flat]);
    assert.equal(r0.code, 0, r0.stderr);
    const caFile = join(flat, 'ca.crt');
    await writeFile(caFile, (await readFile(caFile, 'utf8')) + (await readFile(p('dev-ca-partner', 'ca.crt'), 'utf8')));
    await writeFile(p('revoked.json'), '{ "keys": [] }');
    const r = await runCli(['inspect', flat, '--federation', `other.example=${p('revoked.json')}`, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as Report;
    const foreign = report.warnings.find((w) => w.kind === 'foreign-root');
    assert.ok(foreign, JSON.stringify(report.warnings));
    assert.match(foreign.message, /holds a root of trust domain partner\.example .* refused with MESHLESS_ERR_NO_BUNDLE unless its bundle is given/);
    assert.ok(report.warnings.some((w) => w.kind === 'revoked-bundle' && /other\.example .* revoked its keys/.test(w.message)));
  });

  it('serve --bundle-map accepts a partner client; probe --federation checks the server against its own trust domain\'s bundle', async () => {
    const partnerDir = p('certs', 'partner');
    assert.equal((await runCli(['ca', 'issue', 'spiffe://partner.example/ns/billing/sa/api', '--ca', p('dev-ca-partner'), '--out', partnerDir])).code, 0);
    assert.equal((await runCli(['ca', 'bundle', '--ca', p('dev-ca'), '--out', p('prod.json')])).code, 0);
    // A partner whose map files our CA under the wrong trust domain: OpenSSL would accept us, meshless does not.
    await writeFile(p('misfiled.json'), formatBundleMap({ 'other.example': [prodRoot] }));
    let serve: RunningCli | undefined;
    try {
      serve = startCli(['serve', '--dir', p('certs', 'api'), '--bundle-map', p('bundles.json'), '--allow', 'spiffe://partner.example/ns/billing/**', '--http', '0']);
      const line = await waitFor(() => serve!.stdout().split('\n').find((l) => l.includes('"ready"')), 20_000, `the ready line (stderr: ${serve!.stderr()})`);
      const url = `https://localhost:${(JSON.parse(line) as { http: number }).http}/`;
      const ok = await runCli(['probe', url, '--dir', partnerDir, '--federation', `prod.example=${p('prod.json')}`, '--allow', 'spiffe://prod.example/ns/pay/sa/api', '--json']);
      assert.equal(ok.code, 0, ok.stdout + ok.stderr);
      const report = JSON.parse(ok.stdout) as { verified: boolean; client: { accepted: boolean; answer: string } };
      assert.equal(report.verified, true);
      assert.equal(report.client.accepted, true, report.client.answer);
      const noBundle = await runCli(['probe', url, '--dir', partnerDir, '--bundle-map', p('misfiled.json'), '--json']);
      assert.equal(noBundle.code, 1);
      const refused = JSON.parse(noBundle.stdout) as { verified: boolean; error: { code: string; message: string }; client: { asked?: boolean } };
      assert.equal(refused.error.code, 'MESHLESS_ERR_NO_BUNDLE', refused.error.message);
      assert.equal(refused.verified, false);
      assert.equal(refused.client.asked, false, 'nothing is sent to a server that does not verify');
      const usage = await runCli(['serve', '--workload-api', '--bundle-map', p('bundles.json'), '--allow', '*', '--http', '0']);
      assert.equal(usage.code, 2);
      assert.match(usage.stderr, /go with --dir/);
    } finally {
      if (serve && serve.child.exitCode === null) {
        serve.child.kill('SIGKILL');
        await serve.exited;
      }
    }
  });

  it('inspect fails with BUNDLE_INVALID naming the file for a broken map, and exits 2 on a malformed --federation', async () => {
    await writeFile(p('broken.json'), '{ "trust_domains": { "partner.example": { "keys": [ { "use": "x509-svid", "kty": "EC", "x5c": [] } ] } } }');
    const r = await runCli(['inspect', p('certs', 'api'), '--bundle-map', p('broken.json'), '--json']);
    assert.equal(r.code, 1);
    const report = JSON.parse(r.stdout) as Report;
    assert.equal(report.error?.code, 'MESHLESS_ERR_BUNDLE_INVALID');
    assert.equal(report.error?.file, p('broken.json'));
    assert.match(report.error!.message, /trust domain partner\.example: keys\[0\]/);
    const usage = await runCli(['inspect', p('certs', 'api'), '--federation', 'partner.example']);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /write TD=FILE/);
  });
});
