import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createTestCA, kubernetesVolume, type TestCA } from '@meshless/testing';
import { ensureBuilt, runCli, tempDir } from './helpers/cli.js';

interface Report {
  ok: boolean;
  error?: { code: string; message: string };
  warnings: Array<{ kind: string; message: string }>;
  layout?: { name: string; atomicSwap: boolean };
  identity?: { spiffeId?: string; dnsNames: string[] };
  validity?: { timeLeftMs: number };
  key?: { matchesLeaf: boolean };
  chain: unknown[];
  bundle: Array<{ timeLeftMs: number }>;
  verifiedPath?: string[];
}

const HOUR = 3_600_000;
const ID = 'spiffe://prod.example/ns/pay/sa/api';

describe('meshless inspect', function () {
  this.timeout(60_000);
  let ca: TestCA;
  let other: TestCA;
  let dir: string;
  let cleanup: () => Promise<void>;
  let n = 0;

  before(async () => {
    ensureBuilt();
    ({ dir, cleanup } = await tempDir());
    ca = await createTestCA({ trustDomain: 'prod.example' });
    other = await createTestCA({ trustDomain: 'prod.example' });
  });
  after(() => cleanup());

  /** Writes cert/key/ca as plain files of a layout into a new directory. */
  async function plain(files: Record<string, string>): Promise<string> {
    const d = join(dir, `case-${++n}`);
    await mkdir(d);
    for (const [name, content] of Object.entries(files)) await writeFile(join(d, name), content);
    return d;
  }

  async function inspectJson(path: string): Promise<{ code: number | null; report: Report; stderr: string }> {
    const r = await runCli(['inspect', path, '--json']);
    return { code: r.code, report: JSON.parse(r.stdout) as Report, stderr: r.stderr };
  }

  it('reports a healthy Kubernetes mount: layout, identity, validity, key match, verified chain (exit 0)', async () => {
    const issued = await ca.issue({ spiffeId: ID, dnsNames: ['api.pay.svc'] });
    const mount = join(dir, 'k8s');
    const volume = kubernetesVolume(mount);
    await volume.write({ 'tls.crt': issued.cert, 'tls.key': issued.key, 'ca.crt': issued.ca });
    await volume.close();

    const text = await runCli(['inspect', mount]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /layout +kubernetes .*atomic \.\.data swap/);
    assert.match(text.stdout, new RegExp(`identity +${ID}`));
    assert.match(text.stdout, /dns +api\.pay\.svc/);
    assert.match(text.stdout, /key +ec prime256v1, matches the leaf/);
    assert.match(text.stdout, /validity .*\((59m[^)]*|1h) left/);
    assert.match(text.stdout, /verifies +spiffe:\/\/prod\.example\/ns\/pay\/sa\/api → .*meshless test root prod\.example/);
    assert.match(text.stdout, /^OK$/m);

    const { code, report } = await inspectJson(mount);
    assert.equal(code, 0);
    assert.equal(report.ok, true);
    assert.deepEqual(report.warnings, []);
    assert.equal(report.layout?.name, 'kubernetes');
    assert.equal(report.layout?.atomicSwap, true);
    assert.equal(report.identity?.spiffeId, ID);
    assert.equal(report.key?.matchesLeaf, true);
    assert.equal(report.verifiedPath?.length, 2);
    assert.ok(report.validity!.timeLeftMs > 0.9 * HOUR && report.validity!.timeLeftMs <= HOUR);
  });

  for (const [layout, names] of [
    ['istio', ['cert-chain.pem', 'key.pem', 'root-cert.pem']],
    ['spiffe-helper', ['svid.pem', 'svid_key.pem', 'svid_bundle.pem']],
    ['gke', ['certificates.pem', 'private_key.pem', 'ca_certificates.pem']],
  ] as const) {
    it(`recognises the ${layout} layout`, async () => {
      const issued = await ca.issue(ID);
      const d = await plain({ [names[0]]: issued.cert, [names[1]]: issued.key, [names[2]]: issued.ca });
      const { code, report } = await inspectJson(d);
      assert.equal(code, 0, JSON.stringify(report.error));
      assert.equal(report.layout?.name, layout);
      assert.equal(report.layout?.atomicSwap, false);
    });
  }

  describe('errors exit 1 with their code', () => {
    const cases: Array<[string, string, () => Promise<Record<string, string>>, (r: Report) => void]> = [
      ['a key that does not match the leaf', 'MESHLESS_ERR_KEY_MISMATCH', async () => {
        const a = await ca.issue(ID);
        const b = await ca.issue(ID);
        return { 'tls.crt': a.cert, 'tls.key': b.key, 'ca.crt': a.ca };
      }, (r) => assert.equal(r.key?.matchesLeaf, false)],
      ['an expired leaf', 'MESHLESS_ERR_CERT_EXPIRED', async () => {
        const c = await ca.issue({ spiffeId: ID, notBefore: new Date(Date.now() - 2 * HOUR), notAfter: new Date(Date.now() - HOUR) });
        return { 'tls.crt': c.cert, 'tls.key': c.key, 'ca.crt': c.ca };
      }, (r) => assert.ok(r.validity!.timeLeftMs < 0)],
      ['a leaf not yet valid', 'MESHLESS_ERR_CERT_NOT_YET_VALID', async () => {
        const c = await ca.issue({ spiffeId: ID, notBefore: new Date(Date.now() + HOUR), notAfter: new Date(Date.now() + 2 * HOUR) });
        return { 'tls.crt': c.cert, 'tls.key': c.key, 'ca.crt': c.ca };
      }, () => undefined],
      ['a CA certificate used as the leaf', 'MESHLESS_ERR_LEAF_IS_CA', async () => {
        const c = await ca.issue({ spiffeId: ID, isCA: true });
        return { 'tls.crt': c.cert, 'tls.key': c.key, 'ca.crt': c.ca };
      }, () => undefined],
      ['a chain that does not verify to the bundle', 'MESHLESS_ERR_CHAIN_UNTRUSTED', async () => {
        const c = await ca.issue(ID);
        return { 'tls.crt': c.cert, 'tls.key': c.key, 'ca.crt': other.bundle };
      }, (r) => assert.equal(r.verifiedPath, undefined)],
      ['a leaf with no identity', 'MESHLESS_ERR_NO_IDENTITY', async () => {
        const c = await ca.issue({});
        return { 'tls.crt': c.cert, 'tls.key': c.key, 'ca.crt': c.ca };
      }, () => undefined],
      ['a missing key file', 'MESHLESS_ERR_LAYOUT_NOT_FOUND', async () => {
        const c = await ca.issue(ID);
        return { 'tls.crt': c.cert, 'ca.crt': c.ca };
      }, (r) => assert.match(r.error!.message, /missing tls\.key/)],
      ['a directory with no known layout', 'MESHLESS_ERR_LAYOUT_NOT_FOUND', async () => ({ 'server.pem': 'x' }), () => undefined],
      ['a garbage certificate file', 'MESHLESS_ERR_PEM_INVALID', async () => {
        const c = await ca.issue(ID);
        return { 'tls.crt': 'not a certificate', 'tls.key': c.key, 'ca.crt': c.ca };
      }, () => undefined],
    ];
    for (const [i, [what, code, make, extra]] of cases.entries()) {
      it(`${what}: ${code}`, async () => {
        const d = await plain(await make());
        if (i < 2) {
          // The text form, for a couple of cases: the verdict line and the code on stderr.
          const text = await runCli(['inspect', d]);
          assert.equal(text.code, 1, text.stdout + text.stderr);
          assert.match(text.stdout, new RegExp(`^ERROR ${code}: `, 'm'));
          assert.match(text.stderr, new RegExp(code));
        }
        const { code: exit, report } = await inspectJson(d);
        assert.equal(exit, 1);
        assert.equal(report.ok, false);
        assert.equal(report.error?.code, code);
        extra(report);
      });
    }
  });

  describe('warnings are listed and exit 0', () => {
    it('a leaf past its renewal point is "expiring soon"', async () => {
      const c = await ca.issue({ spiffeId: ID, notBefore: new Date(Date.now() - 50 * 60_000), notAfter: new Date(Date.now() + 10 * 60_000) });
      const d = await plain({ 'tls.crt': c.cert, 'tls.key': c.key, 'ca.crt': c.ca });
      const text = await runCli(['inspect', d]);
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /warning \[expiring-soon\]: the leaf is 8\d% through its lifetime/);
      assert.match(text.stdout, /^OK with 1 warning\(s\)$/m);
    });

    it('an expired root in the bundle', async () => {
      const c = await ca.issue(ID);
      const expiredRoot = await other.selfSigned({ isCA: true, commonName: 'old root', notBefore: new Date(Date.now() - 48 * HOUR), notAfter: new Date(Date.now() - 24 * HOUR) });
      const d = await plain({ 'tls.crt': c.cert, 'tls.key': c.key, 'ca.crt': expiredRoot.cert + c.ca });
      const { code, report } = await inspectJson(d);
      assert.equal(code, 0, JSON.stringify(report.error));
      assert.deepEqual(report.warnings.map((w) => w.kind), ['expired-root']);
      assert.match(report.warnings[0]!.message, /CN=old root/);
      assert.equal(report.bundle.length, 2);
    });

    it('a CN-only leaf', async () => {
      const c = await ca.issue({ commonName: 'legacy-batch' });
      const d = await plain({ 'tls.crt': c.cert, 'tls.key': c.key, 'ca.crt': c.ca });
      const { code, report } = await inspectJson(d);
      assert.equal(code, 0);
      assert.deepEqual(report.warnings.map((w) => w.kind), ['cn-only']);
    });

    it('a subPath mount (a file mounted on its own never rotates)', async function () {
      const probe = spawnSync('unshare', ['-m', 'true']);
      if (probe.status !== 0) {
        console.log('      (skipped: cannot create a mount namespace with `unshare -m` here)');
        return this.skip();
      }
      const c = await ca.issue(ID);
      const d = await plain({ 'tls.crt': 'placeholder', 'tls.key': c.key, 'ca.crt': c.ca });
      const source = join(dir, `subpath-source-${n}.crt`);
      await writeFile(source, c.cert);
      const wrap = ['unshare', '-m', 'sh', '-c', 'mount --bind "$1" "$2" && shift 2 && exec "$@"', 'sh', source, join(d, 'tls.crt')];
      const r = await runCli(['inspect', d, '--json'], { wrap });
      assert.equal(r.code, 0, r.stderr);
      const report = JSON.parse(r.stdout) as Report;
      assert.ok(report.warnings.some((w) => w.kind === 'subpath-mount' && w.message.includes('tls.crt')), JSON.stringify(report.warnings));
    });
  });

  it('exits 2 without PATH', async () => {
    const r = await runCli(['inspect']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /missing PATH/);
  });
});
