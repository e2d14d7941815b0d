import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { lstat, readFile, readlink, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadCredential } from '@meshless/core';
import { createTestCA } from '@meshless/testing';
import { ensureBuilt, runCli, tempDir } from './helpers/cli.js';

describe('meshless ca', function () {
  this.timeout(60_000);
  let dir: string;
  let cleanup: () => Promise<void>;
  let caDir: string;

  before(async () => {
    ensureBuilt();
    ({ dir, cleanup } = await tempDir());
    caDir = join(dir, 'ca');
    const r = await runCli(['ca', 'init', '--out', caDir, '--trust-domain', 'prod.example']);
    assert.equal(r.code, 0, r.stderr);
  });
  after(() => cleanup());

  describe('init', () => {
    it('persists a root CA with its key readable by the owner only', async () => {
      const root = new X509Certificate(await readFile(join(caDir, 'ca.crt')));
      assert.equal(root.ca, true);
      assert.match(root.subjectAltName ?? '', /URI:spiffe:\/\/prod\.example/);
      assert.equal((await stat(join(caDir, 'ca.key'))).mode & 0o777, 0o600);
      assert.ok(Date.parse(root.validTo) - Date.now() > 300 * 86_400_000, 'default validity is a year');
    });

    it('refuses to overwrite an existing CA without --force (exit 1, coded)', async () => {
      const before = await readFile(join(caDir, 'ca.crt'), 'utf8');
      const r = await runCli(['ca', 'init', '--out', caDir, '--trust-domain', 'prod.example']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /MESHLESS_ERR_INVALID_OPTION: .*ca\.key already exists.*--force/);
      assert.equal(await readFile(join(caDir, 'ca.crt'), 'utf8'), before);
    });

    it('replaces it with --force, and reports JSON with --json', async () => {
      const other = join(dir, 'ca-forced');
      assert.equal((await runCli(['ca', 'init', '--out', other, '--trust-domain', 'a.example'])).code, 0);
      const first = await readFile(join(other, 'ca.crt'), 'utf8');
      const r = await runCli(['ca', 'init', '--out', other, '--trust-domain', 'b.example', '--force', '--json', '--key-type', 'ec-p384', '--ttl', '30d']);
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout) as { trustDomain: string; notAfter: string };
      assert.equal(out.trustDomain, 'b.example');
      const days = (Date.parse(out.notAfter) - Date.now()) / 86_400_000;
      assert.ok(days > 29 && days <= 30, `30d ttl, got ${days}`);
      assert.notEqual(await readFile(join(other, 'ca.crt'), 'utf8'), first);
    });

    it('exits 2 on a missing or invalid option', async () => {
      const noOut = await runCli(['ca', 'init', '--trust-domain', 'prod.example']);
      assert.equal(noOut.code, 2);
      assert.match(noOut.stderr, /--out is required/);
      const badTd = await runCli(['ca', 'init', '--out', join(dir, 'x'), '--trust-domain', 'Prod.Example']);
      assert.equal(badTd.code, 2);
      assert.match(badTd.stderr, /not a SPIFFE trust domain/);
      const badTtl = await runCli(['ca', 'init', '--out', join(dir, 'x'), '--trust-domain', 'p.example', '--ttl', 'forever']);
      assert.equal(badTtl.code, 2);
      assert.match(badTtl.stderr, /--ttl "forever" is not a duration/);
    });
  });

  describe('issue', () => {
    const layouts = {
      kubernetes: ['tls.crt', 'tls.key', 'ca.crt'],
      istio: ['cert-chain.pem', 'key.pem', 'root-cert.pem'],
      'spiffe-helper': ['svid.pem', 'svid_key.pem', 'svid_bundle.pem'],
      files: ['tls.crt', 'tls.key', 'ca.crt'],
    } as const;

    for (const [layout, [certName, keyName, caName]] of Object.entries(layouts)) {
      it(`writes the ${layout} layout: a credential the SDK loads, key mode 0600`, async () => {
        const out = join(dir, `svid-${layout}`);
        const r = await runCli(['ca', 'issue', 'spiffe://prod.example/ns/pay/sa/api', '--ca', caDir, '--out', out, '--layout', layout, '--dns', 'api.pay.svc', '--ttl', '15m']);
        assert.equal(r.code, 0, r.stderr);
        const credential = loadCredential({ cert: await readFile(join(out, certName)), key: await readFile(join(out, keyName)), ca: await readFile(join(out, caName)) });
        assert.equal(credential.identity.spiffeId, 'spiffe://prod.example/ns/pay/sa/api');
        assert.deepEqual(credential.identity.dnsNames, ['api.pay.svc']);
        const ttl = credential.notAfter.getTime() - Date.now();
        assert.ok(ttl > 13 * 60_000 && ttl <= 15 * 60_000, `ttl 15m, got ${ttl} ms`);
        assert.equal((await stat(join(out, keyName))).mode & 0o777, 0o600);
        assert.equal((await lstat(join(out, certName))).isSymbolicLink(), layout === 'kubernetes');
      });
    }

    it('names the files it wrote for a relative --out too', async () => {
      for (const [out, names] of [['./certs/payments', 'tls.crt, tls.key, ca.crt'], ['certs/files', 'tls.crt, tls.key, ca.crt']] as const) {
        const layout = out.endsWith('files') ? 'files' : 'kubernetes';
        const r = await runCli(['ca', 'issue', 'spiffe://prod.example/ns/pay/sa/api', '--ca', caDir, '--out', out, '--layout', layout], { cwd: dir });
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, new RegExp(`wrote   ${layout} layout in ${out.replace(/\./g, '\\.')}.*: ${names}$`, 'm'));
      }
    });

    it('re-issuing into a kubernetes mount swaps ..data to a new generation', async () => {
      const out = join(dir, 'rotating');
      const issue = () => runCli(['ca', 'issue', 'spiffe://prod.example/ns/web/sa/front', '--ca', caDir, '--out', out, '--json']);
      const first = await issue();
      assert.equal(first.code, 0, first.stderr);
      const dataBefore = await readlink(join(out, '..data'));
      const second = await issue();
      assert.equal(second.code, 0, second.stderr);
      const dataAfter = await readlink(join(out, '..data'));
      assert.notEqual(dataAfter, dataBefore);
      assert.equal(await readlink(join(out, 'tls.crt')), '..data/tls.crt');
      const serial = (JSON.parse(second.stdout) as { serialNumber: string }).serialNumber;
      assert.notEqual(serial, (JSON.parse(first.stdout) as { serialNumber: string }).serialNumber);
      assert.equal(new X509Certificate(await readFile(join(out, 'tls.crt'))).serialNumber, serial);
      await assert.rejects(lstat(join(out, dataBefore)), 'the previous generation is removed');
    });

    it('refuses to turn plain files into a kubernetes mount (exit 1, coded), and leaves them alone', async () => {
      const out = join(dir, 'plain');
      assert.equal((await runCli(['ca', 'issue', 'spiffe://prod.example/a', '--ca', caDir, '--out', out, '--layout', 'files'])).code, 0);
      const before = await readFile(join(out, 'tls.crt'), 'utf8');
      const r = await runCli(['ca', 'issue', 'spiffe://prod.example/a', '--ca', caDir, '--out', out]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /MESHLESS_ERR_INVALID_OPTION: .*tls\.crt is a plain file.*--layout files/);
      assert.equal(await readFile(join(out, 'tls.crt'), 'utf8'), before);
    });

    it('--trust appends roots to the bundle (the overlap bundle of a CA rotation)', async () => {
      const next = await createTestCA({ trustDomain: 'prod.example' });
      const nextRoot = join(dir, 'next-root.pem');
      await writeFile(nextRoot, next.certPem);
      const out = join(dir, 'overlap');
      const r = await runCli(['ca', 'issue', 'spiffe://prod.example/ns/pay/sa/api', '--ca', caDir, '--out', out, '--trust', nextRoot, '--trust', join(caDir, 'ca.crt')]);
      assert.equal(r.code, 0, r.stderr);
      const bundle = await readFile(join(out, 'ca.crt'), 'utf8');
      assert.equal(bundle.match(/BEGIN CERTIFICATE/g)?.length, 2, 'own root + next root, without duplicates');
      assert.ok(bundle.includes(next.certPem.trim()));
    });

    it('exits 2 for an invalid SPIFFE ID, a foreign trust domain, an unknown layout, a bad --dns', async () => {
      const out = join(dir, 'never');
      const cases: Array<[string[], RegExp]> = [
        [['spiffe://prod.example/ns/../sa'], /SPIFFE/],
        [['spiffe://other.example/ns/a/sa/b'], /not in the CA's trust domain prod\.example/],
        [['spiffe://prod.example'], /names a trust domain, not a workload/],
        [['spiffe://prod.example/a', '--layout', 'nginx'], /--layout must be one of kubernetes, istio, spiffe-helper, files/],
        [['spiffe://prod.example/a', '--dns', 'bad name'], /--dns "bad name" is not a DNS name/],
        [[], /missing SPIFFE_ID/],
      ];
      for (const [args, message] of cases) {
        const r = await runCli(['ca', 'issue', ...args, '--ca', caDir, '--out', out]);
        assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, message);
      }
      await assert.rejects(stat(out), 'nothing was written');
    });

    it('exits 1 with MESHLESS_ERR_FILE_UNREADABLE when --ca holds no CA', async () => {
      const r = await runCli(['ca', 'issue', 'spiffe://prod.example/a', '--ca', join(dir, 'nope'), '--out', join(dir, 'o')]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /MESHLESS_ERR_FILE_UNREADABLE: cannot read the CA certificate .*meshless ca init/);
    });

    it('refuses a --ttl that outlives the CA', async () => {
      const r = await runCli(['ca', 'issue', 'spiffe://prod.example/a', '--ca', caDir, '--out', join(dir, 'o'), '--ttl', '400d']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /MESHLESS_ERR_CERT_EXPIRED: --ttl 400d 0h outlives the CA|outlives the CA/);
    });
  });
});
