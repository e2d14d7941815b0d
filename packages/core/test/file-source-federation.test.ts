import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  codes,
  fileSource,
  formatBundleMap,
  formatSpiffeBundle,
  isMeshlessError,
  type Credential,
  type FileSource,
  type FileSourceLocation,
  type MeshlessError,
  type MeshlessErrorCode,
} from '@meshless/core';
import { createTestCA, type IssuedCertificate, kubernetesVolume, type KubernetesVolume, recordingLogger, type TestCA, waitFor } from '@meshless/testing';

// fileSource with federated bundles: a bundle map and per-trust-domain files on a mount of their
// own (a trust-manager ConfigMap, a SPIRE bundle publisher), swapped the way the kubelet does.

/** How long a swap may take to be served: the file source reads at once on the ..data rename. */
const ROTATION_BOUND_MS = 2000;

class Rig {
  readonly updates: Credential[] = [];
  readonly errors: MeshlessError[] = [];
  readonly logger = recordingLogger();
  source!: FileSource;

  static async open(location: FileSourceLocation): Promise<Rig> {
    const rig = new Rig();
    rig.source = await fileSource(location, { logger: rig.logger, recheckIntervalMs: 0 });
    rig.source.on('update', (c) => rig.updates.push(c));
    rig.source.on('error', (e) => rig.errors.push(e));
    return rig;
  }

  fingerprints(td: string): string[] | undefined {
    return this.source.current().bundles.get(td)?.map((c) => c.fingerprint256);
  }

  async until(check: (c: Credential) => boolean, what: string, ms = ROTATION_BOUND_MS): Promise<number> {
    const started = Date.now();
    await waitFor(() => check(this.source.current()), ms, () => `${what} (errors: ${this.errors.map((e) => e.message).join(' | ') || 'none'})`);
    return Date.now() - started;
  }

  async errorWith(code: MeshlessErrorCode, ms = ROTATION_BOUND_MS): Promise<MeshlessError> {
    await waitFor(() => this.errors.some((e) => e.code === code), ms, () => `an error ${code} (got ${this.errors.map((e) => e.code).join(',') || 'none'})`);
    return this.errors.find((e) => e.code === code)!;
  }
}

const ID = 'spiffe://prod.example/ns/pay/sa/api';
const fp = (pem: string): string => new X509Certificate(pem).fingerprint256;
const certOf = (pem: string): X509Certificate => new X509Certificate(pem);
const trio = (c: IssuedCertificate) => ({ 'tls.crt': c.cert, 'tls.key': c.key, 'ca.crt': c.ca });

describe('fileSource with federated bundles', function () {
  this.timeout(60_000);
  let prod: TestCA;
  let partner: TestCA;
  let partnerNext: TestCA;
  let other: TestCA;
  let own: IssuedCertificate[];
  let tmp: string;
  let tls: KubernetesVolume;
  let trust: KubernetesVolume;
  let rig: Rig | undefined;
  let mapFile: string;

  before(async () => {
    [prod, partner, partnerNext, other] = await Promise.all([
      createTestCA({ trustDomain: 'prod.example' }),
      createTestCA({ trustDomain: 'partner.example' }),
      createTestCA({ trustDomain: 'partner.example' }),
      createTestCA({ trustDomain: 'other.example' }),
    ]);
    own = await Promise.all([prod.issue(ID), prod.issue(ID), prod.issue(ID)]);
  });
  beforeEach(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), 'meshless-federation-'));
    tls = kubernetesVolume(path.join(tmp, 'tls'));
    trust = kubernetesVolume(path.join(tmp, 'trust'));
    await tls.write(trio(own[0]!));
    mapFile = path.join(tmp, 'trust', 'bundles.json');
  });
  afterEach(async () => {
    await rig?.source.close();
    rig = undefined;
    await Promise.all([tls.close(), trust.close()]);
    await rm(tmp, { recursive: true, force: true });
  });

  const map = (entries: Record<string, TestCA[]>, sequence = 1): string =>
    formatBundleMap(Object.fromEntries(Object.entries(entries).map(([td, cas]) => [td, cas.map((c) => certOf(c.certPem))])), { sequence });

  it('bundle map: a new partner CA is served within the rotation bound; our own leaf and bundle stay', async () => {
    await trust.write({ 'bundles.json': map({ 'partner.example': [partner] }) });
    rig = await Rig.open({ dir: path.join(tmp, 'tls'), bundleMap: mapFile });
    const first = rig.source.current();
    assert.deepEqual([...first.bundles.keys()], ['partner.example', 'prod.example']);
    assert.deepEqual(rig.fingerprints('partner.example'), [fp(partner.certPem)]);
    assert.deepEqual(rig.fingerprints('prod.example'), [fp(prod.certPem)]);
    assert.equal(rig.source.federatedBundles().get('partner.example')?.format, 'jwks');
    assert.equal(rig.source.federatedBundles().get('partner.example')?.sequence, 1);
    assert.deepEqual(rig.source.trustFiles, { federation: {}, bundleMap: mapFile });
    const loaded = rig.logger.entries.find((l) => l.msg === 'meshless: credential loaded')!;
    assert.match(JSON.stringify(loaded.obj), /"partner.example":\{"authorities":1,"sequence":1/);

    const started = Date.now();
    await trust.write({ 'bundles.json': map({ 'partner.example': [partner, partnerNext] }, 2) });
    await rig.until((c) => c.bundles.get('partner.example')?.length === 2, 'the new partner CA');
    console.log(`      (map write → new partner CA served in ${Date.now() - started} ms; bound ${ROTATION_BOUND_MS} ms)`);
    const next = rig.source.current();
    assert.equal(next.leaf.serialNumber, first.leaf.serialNumber);
    assert.notEqual(next.bundleHash, first.bundleHash);
    assert.equal(next.generation, first.generation + 1);
    assert.equal(rig.updates.length, 1);
    assert.ok(next.trustPem.includes(partnerNext.certPem.trim().split('\n')[1]!));
    assert.ok(rig.logger.at('info').map((l) => l.msg).includes('meshless: federated trust bundles changed'));
    assert.deepEqual(rig.errors, []);
  });

  it('bundle map: a removed trust domain disappears from credential.bundles; an empty keys list revokes', async () => {
    await trust.write({ 'bundles.json': map({ 'partner.example': [partner], 'other.example': [other] }) });
    rig = await Rig.open({ dir: path.join(tmp, 'tls'), bundleMap: mapFile });
    assert.deepEqual([...rig.source.current().bundles.keys()], ['other.example', 'partner.example', 'prod.example']);
    await trust.write({ 'bundles.json': map({ 'partner.example': [partner] }) });
    await rig.until((c) => !c.bundles.has('other.example'), 'other.example to be gone');
    await trust.write({ 'bundles.json': JSON.stringify({ trust_domains: { 'partner.example': { keys: [], spiffe_sequence: 9 } } }) });
    await rig.until((c) => c.bundles.get('partner.example')?.length === 0, 'partner.example revoked (empty bundle)');
    assert.ok(rig.source.current().bundles.has('partner.example'), 'a revoked trust domain is known, with no CA');
    assert.deepEqual(rig.errors, []);
  });

  it('a broken map keeps the last good bundles, names the file and trust domain, and does not block our own rotation', async () => {
    await trust.write({ 'bundles.json': map({ 'partner.example': [partner] }) });
    rig = await Rig.open({ dir: path.join(tmp, 'tls'), bundleMap: mapFile });
    const good = rig.source.current();
    const broken = JSON.parse(map({ 'partner.example': [partner, partnerNext] })) as { trust_domains: Record<string, { keys: Array<{ x5c: string[] }> }> };
    broken.trust_domains['partner.example']!.keys[1]!.x5c.push(broken.trust_domains['partner.example']!.keys[0]!.x5c[0]!);
    await trust.write({ 'bundles.json': JSON.stringify(broken) });
    const err = await rig.errorWith(codes.BUNDLE_INVALID);
    assert.equal(err.file, mapFile);
    assert.match(err.message, /bundle map file .*bundles\.json, trust domain partner\.example: keys\[1\].*x5c holds 2 certificates/);
    assert.equal(rig.source.current(), good);
    assert.equal(rig.source.health().state, 'stale');
    assert.equal(rig.source.health().lastError?.code, codes.BUNDLE_INVALID);

    // Our own certificate rotates meanwhile: served, with the last good partner bundle.
    await tls.write(trio(own[1]!));
    await rig.until((c) => c.leaf.serialNumber === own[1]!.serialNumber, 'our own rotation while the map is broken');
    assert.deepEqual(rig.fingerprints('partner.example'), [fp(partner.certPem)]);
    assert.equal(rig.source.health().state, 'stale', 'still stale: the map is still broken');

    // A duplicate trust domain (raw JSON keys) is refused too.
    const errorsBefore = rig.errors.length;
    const one = JSON.stringify(JSON.parse(map({ 'partner.example': [partnerNext] })).trust_domains['partner.example']);
    await trust.write({ 'bundles.json': `{ "trust_domains": { "partner.example": ${one}, "partner.example": ${one} } }` });
    await waitFor(() => rig!.errors.slice(errorsBefore).some((e) => /appears twice/.test(e.message)), ROTATION_BOUND_MS, () => 'a duplicate-key error');
    assert.deepEqual(rig.fingerprints('partner.example'), [fp(partner.certPem)]);

    await trust.write({ 'bundles.json': map({ 'partner.example': [partnerNext] }, 3) });
    await rig.until((c) => c.bundles.get('partner.example')?.[0]?.fingerprint256 === fp(partnerNext.certPem), 'the repaired map');
    await waitFor(() => rig!.source.health().state === 'fresh', ROTATION_BOUND_MS, () => `health fresh (is ${rig!.source.health().state})`);
    assert.equal(rig.source.current().leaf.serialNumber, own[1]!.serialNumber);
  });

  it('a broken own mount does not block a partner CA update', async () => {
    await trust.write({ 'bundles.json': map({ 'partner.example': [partner] }) });
    rig = await Rig.open({ dir: path.join(tmp, 'tls'), bundleMap: mapFile });
    await tls.write({ ...trio(own[1]!), 'tls.key': own[2]!.key });
    await rig.errorWith(codes.KEY_MISMATCH);
    await trust.write({ 'bundles.json': map({ 'partner.example': [partnerNext] }, 2) });
    await rig.until((c) => c.bundles.get('partner.example')?.[0]?.fingerprint256 === fp(partnerNext.certPem), 'the partner update');
    assert.equal(rig.source.current().leaf.serialNumber, own[0]!.serialNumber, 'the last good own certificate stays');
  });

  it('federation files (PEM and SPIFFE bundle) with a map: the per-trust-domain file wins, and it is logged', async () => {
    await trust.write({
      'bundles.json': map({ 'partner.example': [partnerNext], 'other.example': [other], 'prod.example': [partner] }),
      'partner.pem': partner.certPem,
      'other.json': formatSpiffeBundle([certOf(other.certPem), certOf(partnerNext.certPem)], { sequence: 5 }),
    });
    rig = await Rig.open({
      dir: path.join(tmp, 'tls'),
      bundleMap: mapFile,
      federation: { 'spiffe://partner.example': path.join(tmp, 'trust', 'partner.pem'), 'other.example': path.join(tmp, 'trust', 'other.json') },
    });
    assert.deepEqual(rig.fingerprints('partner.example'), [fp(partner.certPem)]);
    assert.deepEqual(rig.fingerprints('other.example'), [fp(other.certPem), fp(partnerNext.certPem)]);
    assert.deepEqual(rig.fingerprints('prod.example'), [fp(prod.certPem)], 'our own ca.crt verifies our own trust domain, never the map');
    assert.equal(rig.source.federatedBundles().get('partner.example')?.format, 'pem');
    assert.equal(rig.source.federatedBundles().get('other.example')?.sequence, 5);
    const warnings = rig.logger.at('warn').map((l) => l.msg);
    assert.ok(warnings.some((m) => /trust domain partner\.example is in bundle map file .* and has its own federation file .*partner\.pem; the federation file wins/.test(m)), warnings.join('\n'));
    assert.ok(warnings.some((m) => /prod\.example; it is ignored/.test(m)), warnings.join('\n'));
    // Notices are logged once, not at every reload.
    const count = warnings.length;
    await trust.write({
      'bundles.json': map({ 'partner.example': [partnerNext], 'other.example': [other], 'prod.example': [partner] }, 2),
      'partner.pem': partner.certPem + partnerNext.certPem,
      'other.json': formatSpiffeBundle([certOf(other.certPem)], { sequence: 6 }),
    });
    await rig.until((c) => c.bundles.get('partner.example')?.length === 2 && c.bundles.get('other.example')?.length === 1, 'both federation files');
    assert.equal(rig.logger.at('warn').map((l) => l.msg).length, count);
  });

  it('a federation file that vanishes keeps the last good (FILE_UNREADABLE naming it)', async () => {
    await trust.write({ 'partner.json': formatSpiffeBundle([certOf(partner.certPem)]) });
    const file = path.join(tmp, 'trust', 'partner.json');
    rig = await Rig.open({ dir: path.join(tmp, 'tls'), federation: { 'partner.example': file } });
    await trust.write({ 'renamed.json': formatSpiffeBundle([certOf(partner.certPem)]) });
    const err = await rig.errorWith(codes.FILE_UNREADABLE);
    assert.equal(err.file, file);
    assert.match(err.message, /federated trust bundle file .*partner\.json/);
    assert.deepEqual(rig.fingerprints('partner.example'), [fp(partner.certPem)]);
  });

  it('the first load refuses bad federation input with a coded error', async () => {
    await trust.write({ 'bad.json': '{ "keys": [ { "use": "x509-svid", "kty": "EC", "x5c": [] } ] }', 'leaf.pem': own[0]!.cert });
    const dir = path.join(tmp, 'tls');
    const rejects = async (location: FileSourceLocation, code: MeshlessErrorCode, message: RegExp): Promise<void> => {
      await assert.rejects(fileSource(location, { recheckIntervalMs: 0 }), (e: unknown) => isMeshlessError(e, code) && message.test(e.message));
    };
    await rejects({ dir, federation: { 'partner.example': path.join(tmp, 'trust', 'bad.json') } }, codes.BUNDLE_INVALID, /bad\.json for trust domain partner\.example: keys\[0\].*x5c holds 0/);
    await rejects({ dir, federation: { 'partner.example': path.join(tmp, 'trust', 'leaf.pem') } }, codes.BUNDLE_INVALID, /not a CA certificate/);
    await rejects({ dir, federation: { 'partner.example': path.join(tmp, 'trust', 'missing.pem') } }, codes.FILE_UNREADABLE, /missing\.pem does not exist/);
    await rejects({ dir, bundleMap: path.join(tmp, 'trust', 'bad.json') }, codes.BUNDLE_INVALID, /no "trust_domains" object/);
    await rejects({ dir, federation: { 'Partner.example': 'x' } }, codes.INVALID_OPTION, /trust domain must be lowercase/);
    await rejects({ dir, federation: { 'partner.example': 'a', 'spiffe://partner.example': 'b' } }, codes.INVALID_OPTION, /partner\.example twice/);
    await rejects({ dir, federation: ['x'] as unknown as Record<string, string> }, codes.INVALID_OPTION, /must map trust domains/);
    await rejects({ dir, bundleMap: 7 as unknown as string }, codes.INVALID_OPTION, /bundleMap must be a non-empty path/);
  });

  it('the trust mount vanishing does not stop our own rotation', async () => {
    await trust.write({ 'bundles.json': map({ 'partner.example': [partner] }) });
    rig = await Rig.open({ dir: path.join(tmp, 'tls'), bundleMap: mapFile });
    await trust.close();
    await rm(path.join(tmp, 'trust'), { recursive: true, force: true });
    await tls.write(trio(own[2]!));
    await rig.until((c) => c.leaf.serialNumber === own[2]!.serialNumber, 'our own rotation with the trust mount gone');
    assert.deepEqual(rig.fingerprints('partner.example'), [fp(partner.certPem)]);
    await rig.errorWith(codes.FILE_UNREADABLE);
    // It comes back: read again (with the new CA).
    trust = kubernetesVolume(path.join(tmp, 'trust'));
    await trust.write({ 'bundles.json': map({ 'partner.example': [partnerNext] }, 2) });
    await rig.until((c) => c.bundles.get('partner.example')?.[0]?.fingerprint256 === fp(partnerNext.certPem), 'the trust mount back', 5000);
  });
});
