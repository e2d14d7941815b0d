import assert from 'node:assert/strict';
import diagnostics_channel from 'node:diagnostics_channel';
import { execFileSync, spawn } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { metrics, type Attributes, type BatchObservableCallback, type Meter, type MeterProvider, type Observable } from '@opentelemetry/api';
import {
  channels,
  codes,
  fileSource,
  isMeshlessError,
  privateKeyPem,
  type Credential,
  type FileSource,
  type FileSourceLocation,
  type FileSourceOptions,
  type Health,
  type MeshlessError,
  type MeshlessErrorCode,
} from '@meshless/core';
import {
  verifyChain,
} from '@meshless/core/internal';
import { createTestCA, inPlaceWriter, type IssuedCertificate, kubernetesVolume, type KubernetesVolume, recordingLogger, type TestCA, waitFor } from '@meshless/testing';

// ---- helpers ----------------------------------------------------------------------------------

const ID = 'spiffe://prod.example/ns/pay/sa/api';

/** The base64 body of a PEM key: what must never appear anywhere. */
function keyBody(keyPem: string): string {
  return keyPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '').slice(10, 60);
}

const files = (c: IssuedCertificate, ca = c.ca) => ({ 'tls.crt': c.cert, 'tls.key': c.key, 'ca.crt': ca });

/**
 * A file source under observation: records updates, errors and health events, and checks that
 * every credential it ever served (sampled every few ms, and at every update) is a matching,
 * verifying pair.
 */
class Rig {
  readonly updates: Credential[] = [];
  readonly errors: MeshlessError[] = [];
  readonly healths: Health[] = [];
  readonly violations: string[] = [];
  readonly logger = recordingLogger();
  source!: FileSource;
  #sampler: NodeJS.Timeout | undefined;

  static async open(location: FileSourceLocation, options: FileSourceOptions = {}): Promise<Rig> {
    const rig = new Rig();
    rig.source = await fileSource(location, { logger: rig.logger, ...options });
    rig.check(rig.source.current(), 'initial');
    rig.source.on('update', (c, previous) => {
      rig.check(c, 'update');
      if (c.generation !== previous.generation + 1) rig.violations.push(`generation ${previous.generation} → ${c.generation}`);
      if (previous.contentHash === c.contentHash) rig.violations.push('update with identical content');
      rig.updates.push(c);
    });
    rig.source.on('error', (e) => rig.errors.push(e));
    rig.source.on('health', (h) => rig.healths.push(h));
    rig.#sampler = setInterval(() => rig.check(rig.source.current(), 'sample'), 3);
    return rig;
  }

  check(c: Credential, when: string): void {
    let ok = false;
    try {
      ok = c.leaf.checkPrivateKey(c.privateKey);
    } catch {
      ok = false;
    }
    if (!ok) this.violations.push(`${when}: key does not match leaf ${c.leaf.serialNumber}`);
    const verified = verifyChain(c.leaf, c.chain.slice(1), c.bundle, Date.now());
    if ('problem' in verified && c.notAfter.getTime() > Date.now()) this.violations.push(`${when}: chain does not verify: ${verified.problem}`);
  }

  serial(): string {
    return this.source.current().leaf.serialNumber;
  }

  async servesSerial(serial: string, ms = 5000): Promise<void> {
    await waitFor(() => this.serial() === serial, ms, () => `serial ${serial} to be served (serving ${this.serial()}, errors ${this.errors.map((e) => e.code).join(',')})`);
  }

  async errorWith(code: MeshlessErrorCode, ms = 5000): Promise<MeshlessError> {
    await waitFor(() => this.errors.some((e) => e.code === code), ms, () => `an error ${code} (got ${this.errors.map((e) => e.code).join(',') || 'none'})`);
    return this.errors.find((e) => e.code === code)!;
  }

  /** Nothing served was ever invalid, no key byte was logged or put in an error. */
  assertClean(keys: readonly string[]): void {
    assert.deepEqual(this.violations, []);
    const text = JSON.stringify(this.logger.entries) + this.errors.map((e) => `${e.message} ${JSON.stringify(e)}`).join('\n');
    for (const k of keys) assert.ok(!text.includes(keyBody(k)), 'a private key byte was logged or put in an error');
  }

  async close(): Promise<void> {
    if (this.#sampler) clearInterval(this.#sampler);
    await this.source?.close();
  }
}

// ---- fixtures ---------------------------------------------------------------------------------

let ca: TestCA;
let otherCA: TestCA;
let pool: IssuedCertificate[] = [];
const allKeys = () => pool.map((c) => c.key);

let tmp: string;
let rig: Rig | undefined;
let volume: KubernetesVolume | undefined;

async function kubeletDir(first: IssuedCertificate, options: Parameters<typeof kubernetesVolume>[1] = {}): Promise<string> {
  const dir = path.join(tmp, 'tls');
  volume = kubernetesVolume(dir, options);
  await volume.write(files(first));
  return dir;
}

let swapCount = 0;
/** The kubelet's AtomicWriter steps, synchronously (as kubernetesVolume does them asynchronously). */
function kubeletSwapSync(dir: string, set: Record<string, string>): void {
  const generation = `..sync_${process.pid}_${++swapCount}`;
  mkdirSync(path.join(dir, generation));
  for (const [name, content] of Object.entries(set)) writeFileSync(path.join(dir, generation, name), content);
  symlinkSync(generation, path.join(dir, '..data_tmp'));
  renameSync(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
}

async function plainDir(first: IssuedCertificate): Promise<string> {
  const dir = path.join(tmp, 'plain');
  await inPlaceWriter(dir).write(files(first));
  return dir;
}

// ---- tests ------------------------------------------------------------------------------------

describe('fileSource', () => {
  before(async function () {
    this.timeout(30_000);
    ca = await createTestCA({ trustDomain: 'prod.example' });
    otherCA = await createTestCA({ trustDomain: 'prod.example' });
    pool = await Promise.all(Array.from({ length: 12 }, () => ca.issue(ID)));
  });

  beforeEach(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), 'meshless-fs-'));
  });

  afterEach(async () => {
    await rig?.close();
    rig = undefined;
    await volume?.close();
    volume = undefined;
    await rm(tmp, { recursive: true, force: true });
  });

  describe('fileSource: first load', () => {
    it('loads a kubelet volume and reports fresh health, generation 1 and the detected layout', async () => {
      const dir = await kubeletDir(pool[0]!);
      rig = await Rig.open({ dir });
      const c = rig.source.current();
      assert.equal(c.generation, 1);
      assert.equal(c.leaf.serialNumber, pool[0]!.serialNumber);
      assert.equal(String(c.identity), ID);
      assert.equal(rig.source.layout?.cert, 'tls.crt');
      assert.deepEqual(rig.source.files, { cert: path.join(dir, 'tls.crt'), key: path.join(dir, 'tls.key'), ca: path.join(dir, 'ca.crt') });
      const h = rig.source.health();
      assert.equal(h.state, 'fresh');
      assert.equal(h.generation, 1);
      assert.equal(h.notAfter.getTime(), c.notAfter.getTime());
      assert.equal(h.lastError, undefined);
      assert.ok(h.lastReloadAt instanceof Date);
    });

    for (const layout of [
      { name: 'Kubernetes TLS Secret', cert: 'tls.crt', key: 'tls.key', ca: 'ca.crt' },
      { name: 'Istio', cert: 'cert-chain.pem', key: 'key.pem', ca: 'root-cert.pem' },
      { name: 'spiffe-helper', cert: 'svid.pem', key: 'svid_key.pem', ca: 'svid_bundle.pem' },
      { name: 'GKE workload certificates', cert: 'certificates.pem', key: 'private_key.pem', ca: 'ca_certificates.pem' },
    ]) {
      it(`detects the ${layout.name} layout (${layout.cert}) and rotates it`, async () => {
        const dir = path.join(tmp, 'vol');
        volume = kubernetesVolume(dir);
        const write = (c: IssuedCertificate) => volume!.write({ [layout.cert]: c.cert, [layout.key]: c.key, [layout.ca]: c.ca });
        await write(pool[0]!);
        rig = await Rig.open({ dir });
        assert.equal(rig.source.layout?.cert, layout.cert);
        assert.equal(rig.source.files.key, path.join(dir, layout.key));
        assert.equal(rig.serial(), pool[0]!.serialNumber);
        await write(pool[1]!);
        await rig.servesSerial(pool[1]!.serialNumber);
        rig.assertClean(allKeys());
      });
    }

    it('uses explicit files, wherever they are, and they override a detected layout', async () => {
      const dir = await plainDir(pool[0]!);
      const elsewhere = path.join(tmp, 'elsewhere');
      await inPlaceWriter(elsewhere).write({ 'my.crt': pool[1]!.cert, 'my.key': pool[1]!.key, 'roots.pem': pool[1]!.ca });
      rig = await Rig.open({ certFile: path.join(elsewhere, 'my.crt'), keyFile: path.join(elsewhere, 'my.key'), caFile: path.join(elsewhere, 'roots.pem') });
      assert.equal(rig.serial(), pool[1]!.serialNumber);
      assert.equal(rig.source.layout, undefined);
      await rig.close();
      // dir + explicit names (relative to dir): the explicit ones win over tls.*
      rig = await Rig.open({ dir: elsewhere, certFile: 'my.crt', keyFile: 'my.key', caFile: 'roots.pem' });
      assert.equal(rig.serial(), pool[1]!.serialNumber);
      await rig.close();
      // dir with only caFile explicit: cert and key come from the layout
      await writeFile(path.join(tmp, 'bundle.pem'), ca.bundle);
      rig = await Rig.open({ dir, caFile: path.join(tmp, 'bundle.pem') });
      assert.equal(rig.serial(), pool[0]!.serialNumber);
      assert.equal(rig.source.files.ca, path.join(tmp, 'bundle.pem'));
      assert.equal(rig.source.files.cert, path.join(dir, 'tls.crt'));
    });

    it('rejects with LAYOUT_NOT_FOUND listing every name it looked for', async () => {
      const dir = path.join(tmp, 'odd');
      await mkdir(dir);
      await writeFile(path.join(dir, 'server.pem'), pool[0]!.cert);
      await writeFile(path.join(dir, 'tls.crt'), pool[0]!.cert);
      await writeFile(path.join(dir, 'tls.key'), pool[0]!.key);
      const err = await fileSource({ dir }, { logger: recordingLogger() }).then(() => undefined, (e: unknown) => e);
      assert.ok(isMeshlessError(err, codes.LAYOUT_NOT_FOUND), String(err));
      for (const name of ['tls.crt', 'ca.crt', 'cert-chain.pem', 'root-cert.pem', 'svid.pem', 'svid_bundle.pem', 'certificates.pem', 'ca_certificates.pem', 'missing ca.crt', 'server.pem', 'certFile']) {
        assert.ok(err.message.includes(name), `message should mention ${name}: ${err.message}`);
      }
      assert.equal(err.file, dir);
    });

    it('rejects with the coded error when the first load is bad, and names the file', async () => {
      const dir = path.join(tmp, 'bad');
      const cases: [string, Record<string, string>, MeshlessErrorCode, string][] = [
        ['garbage', { 'tls.crt': 'hello', 'tls.key': pool[0]!.key, 'ca.crt': ca.bundle }, codes.PEM_INVALID, 'tls.crt'],
        ['empty key', { 'tls.crt': pool[0]!.cert, 'tls.key': '', 'ca.crt': ca.bundle }, codes.PEM_EMPTY, 'tls.key'],
        ['mismatched pair', { 'tls.crt': pool[0]!.cert, 'tls.key': pool[1]!.key, 'ca.crt': ca.bundle }, codes.KEY_MISMATCH, 'tls.key'],
        ['other CA', { 'tls.crt': pool[0]!.cert, 'tls.key': pool[0]!.key, 'ca.crt': otherCA.bundle }, codes.CHAIN_UNTRUSTED, 'ca.crt'],
      ];
      for (const [what, set, code, file] of cases) {
        await rm(dir, { recursive: true, force: true });
        await inPlaceWriter(dir).write(set);
        const err = await fileSource({ dir }, { logger: recordingLogger() }).then(() => undefined, (e: unknown) => e);
        assert.ok(isMeshlessError(err, code), `${what}: expected ${code}, got ${String(err)}`);
        assert.equal(err.file, path.join(dir, file), what);
        assert.ok(!err.message.includes(keyBody(pool[0]!.key)) && !err.message.includes(keyBody(pool[1]!.key)));
      }
      const missing = await fileSource({ dir: path.join(tmp, 'nope') }).then(() => undefined, (e: unknown) => e);
      assert.ok(isMeshlessError(missing, codes.FILE_UNREADABLE), String(missing));
      assert.match(missing.message, /does not exist/);
      const wrongId = await kubeletDir(pool[0]!);
      const mismatch = await fileSource({ dir: wrongId }, { expectIdentity: 'spiffe://prod.example/ns/other/**', logger: recordingLogger() }).then(() => undefined, (e: unknown) => e);
      assert.ok(isMeshlessError(mismatch, codes.IDENTITY_MISMATCH), String(mismatch));
    });

    it('refuses bad options with INVALID_OPTION naming the option', async () => {
      const dir = await kubeletDir(pool[0]!);
      for (const [options, field] of [
        [{ debounceMs: -1 }, 'debounceMs'],
        [{ renewAtShare: 1.5 }, 'renewAtShare'],
        [{ pollIntervalMs: 0 }, 'pollIntervalMs'],
        [{ recheckIntervalMs: Number.NaN }, 'recheckIntervalMs'],
      ] as [FileSourceOptions, string][]) {
        const err = await fileSource({ dir }, options).then(() => undefined, (e: unknown) => e);
        assert.ok(isMeshlessError(err, codes.INVALID_OPTION), String(err));
        assert.equal(err.field, field);
      }
      const noFiles = await fileSource({ certFile: 'a' } as unknown as FileSourceLocation).then(() => undefined, (e: unknown) => e);
      assert.ok(isMeshlessError(noFiles, codes.INVALID_OPTION));
    });
  });

  describe('fileSource: kubelet rotations and faults', () => {
    it('rotates on the ..data swap, with a new generation, update(credential, previous) and no error', async () => {
      const dir = await kubeletDir(pool[0]!);
      rig = await Rig.open({ dir });
      const seen: [number, number][] = [];
      rig.source.on('update', (c, p) => seen.push([c.generation, p.generation]));
      await volume!.write(files(pool[1]!));
      await rig.servesSerial(pool[1]!.serialNumber);
      assert.deepEqual(seen, [[2, 1]]);
      assert.equal(rig.source.health().generation, 2);
      assert.deepEqual(rig.errors, []);
      rig.assertClean(allKeys());
    });

    it('swaps during the first load end on the last generation', async () => {
      const dir = await kubeletDir(pool[0]!);
      const opening = Rig.open({ dir });
      await volume!.write(files(pool[1]!));
      await volume!.write(files(pool[2]!));
      rig = await opening;
      await rig.servesSerial(pool[2]!.serialNumber);
      rig.assertClean(allKeys());
    });

    it('rapid double swaps (< 50 ms apart) end on the last generation', async () => {
      const dir = await kubeletDir(pool[0]!);
      rig = await Rig.open({ dir });
      // With kubernetesVolume, back to back: < 50 ms apart unless the machine is very busy.
      for (let round = 0; round < 3; round++) {
        const a = pool[1 + 2 * round]!;
        const b = pool[2 + 2 * round]!;
        await volume!.write(files(a));
        await volume!.write(files(b));
        await rig.servesSerial(b.serialNumber);
      }
      // The same swaps done synchronously: the two renames of ..data are certainly < 50 ms apart.
      for (let round = 0; round < 3; round++) {
        const a = pool[7 + round]!;
        const b = pool[(8 + round) % pool.length]!;
        const t0 = performance.now();
        kubeletSwapSync(dir, files(a));
        kubeletSwapSync(dir, files(b));
        assert.ok(performance.now() - t0 < 50, 'two synchronous swaps take < 50 ms');
        await rig.servesSerial(b.serialNumber);
      }
      assert.deepEqual(rig.errors, []);
      rig.assertClean(allKeys());
    });

    it('rotates when the old generation directory is never deleted (keepOld)', async () => {
      const dir = await kubeletDir(pool[0]!, { keepOld: true });
      rig = await Rig.open({ dir });
      for (let i = 1; i <= 4; i++) {
        await volume!.write(files(pool[i]!));
        await rig.servesSerial(pool[i]!.serialNumber);
      }
      const generations = (await readdir(dir)).filter((n) => n.startsWith('..') && n !== '..data');
      assert.equal(generations.length, 5, 'all old generation directories are still there');
      assert.equal(rig.source.current().generation, 5);
      rig.assertClean(allKeys());
    });

    it('100 rotations in a row end on the last one, every generation in write order', async function () {
      this.timeout(40_000);
      const dir = await kubeletDir(pool[0]!);
      rig = await Rig.open({ dir });
      const order = new Map(pool.map((c, i) => [c.serialNumber, i]));
      let last: IssuedCertificate = pool[0]!;
      for (let i = 1; i <= 100; i++) {
        // alternate between pool entries so every write is new content
        last = pool[1 + (i % (pool.length - 1))]!;
        await volume!.write(files(last));
      }
      await rig.servesSerial(last.serialNumber, 10_000);
      assert.ok(rig.updates.length >= 1);
      const generations = rig.updates.map((u) => u.generation);
      assert.deepEqual(generations, generations.map((_, i) => i + 2), 'generations count up by one');
      for (const u of rig.updates) assert.ok(order.has(u.leaf.serialNumber));
      assert.deepEqual(rig.errors, []);
      rig.assertClean(allKeys());
    });

    it('key deleted: keeps serving, reports FILE_UNREADABLE naming the key, stale; recovers on the next good write', async () => {
      const dir = await kubeletDir(pool[0]!);
      rig = await Rig.open({ dir });
      await volume!.write({ 'tls.crt': pool[1]!.cert, 'ca.crt': pool[1]!.ca });
      const err = await rig.errorWith(codes.FILE_UNREADABLE);
      assert.equal(err.file, path.join(dir, 'tls.key'));
      assert.equal(rig.serial(), pool[0]!.serialNumber);
      const h = rig.source.health();
      assert.equal(h.state, 'stale');
      assert.equal(h.lastError, err);
      assert.equal(rig.healths.at(-1)?.state, 'stale');
      await volume!.write(files(pool[2]!));
      await rig.servesSerial(pool[2]!.serialNumber);
      assert.equal(rig.source.health().state, 'fresh');
      assert.equal(rig.source.health().lastError, undefined);
      assert.equal(rig.healths.at(-1)?.state, 'fresh');
      rig.assertClean(allKeys());
    });

    it('empty file, garbage PEM, cert from another CA, expired cert: each refused with its code, old generation kept', async () => {
      const dir = await kubeletDir(pool[0]!);
      rig = await Rig.open({ dir });
      const foreign = await otherCA.issue(ID);
      const now = Date.now();
      const expired = await ca.issue({ spiffeId: ID, notBefore: new Date(now - 7_200_000), notAfter: new Date(now - 3_600_000) });
      const cases: [string, Record<string, string>, MeshlessErrorCode, string][] = [
        ['empty cert', { 'tls.crt': '', 'tls.key': pool[1]!.key, 'ca.crt': ca.bundle }, codes.PEM_EMPTY, 'tls.crt'],
        ['garbage cert', { 'tls.crt': '-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n', 'tls.key': pool[1]!.key, 'ca.crt': ca.bundle }, codes.PEM_INVALID, 'tls.crt'],
        ['garbage key', { 'tls.crt': pool[1]!.cert, 'tls.key': 'garbage', 'ca.crt': ca.bundle }, codes.PEM_INVALID, 'tls.key'],
        ['another CA', { 'tls.crt': foreign.cert, 'tls.key': foreign.key, 'ca.crt': ca.bundle }, codes.CHAIN_UNTRUSTED, 'ca.crt'],
        ['expired', files(expired), codes.CERT_EXPIRED, 'tls.crt'],
      ];
      for (const [what, set, code, file] of cases) {
        rig.errors.length = 0;
        await volume!.write(set);
        const err = await rig.errorWith(code);
        assert.equal(err.file, path.join(dir, file), what);
        assert.equal(rig.serial(), pool[0]!.serialNumber, `${what}: the old generation stays`);
        assert.equal(rig.source.health().state, 'stale', what);
      }
      await volume!.write(files(pool[3]!));
      await rig.servesSerial(pool[3]!.serialNumber);
      assert.equal(rig.source.health().state, 'fresh');
      assert.equal(rig.source.current().generation, 2, 'refused generations do not count');
      rig.assertClean([...allKeys(), foreign.key, expired.key]);
    });

    it('the whole directory removed and re-created: stale meanwhile, then the new generation', async () => {
      const dir = await kubeletDir(pool[0]!);
      rig = await Rig.open({ dir });
      await rm(dir, { recursive: true, force: true });
      const err = await rig.errorWith(codes.FILE_UNREADABLE);
      assert.match(err.message, /does not exist/);
      assert.equal(rig.source.health().state, 'stale');
      assert.equal(rig.serial(), pool[0]!.serialNumber);
      await volume!.write(files(pool[1]!));
      await rig.servesSerial(pool[1]!.serialNumber);
      assert.equal(rig.source.health().state, 'fresh');
      // still watched after the re-creation
      await volume!.write(files(pool[2]!));
      await rig.servesSerial(pool[2]!.serialNumber);
      rig.assertClean(allKeys());
    });

    it('identical content is not a new generation', async () => {
      const dir = await kubeletDir(pool[0]!);
      rig = await Rig.open({ dir });
      await volume!.write(files(pool[0]!)); // new ..data, same bytes
      await rig.source.reload();
      await volume!.write(files(pool[1]!));
      await rig.servesSerial(pool[1]!.serialNumber);
      assert.equal(rig.source.current().generation, 2);
      assert.equal(rig.updates.length, 1);
    });

    it('a trust bundle change alone is a new generation (CA rotation: both roots)', async () => {
      const dir = await kubeletDir(pool[0]!);
      rig = await Rig.open({ dir });
      const before = rig.source.current();
      await volume!.write(files(pool[0]!, ca.bundle + otherCA.bundle));
      await waitFor(() => rig!.source.current().generation === 2, 5000, 'the bundle rotation');
      const after = rig.source.current();
      assert.equal(after.leaf.serialNumber, before.leaf.serialNumber);
      assert.notEqual(after.bundleHash, before.bundleHash);
      assert.equal(after.bundle.length, 2);
    });

    it('refuses an identity change unless expectIdentity or allowIdentityChange allows it', async () => {
      const other = await ca.issue('spiffe://prod.example/ns/pay/sa/worker');
      const dir = await kubeletDir(pool[0]!);
      rig = await Rig.open({ dir });
      await volume!.write(files(other));
      const err = await rig.errorWith(codes.IDENTITY_MISMATCH);
      assert.match(err.message, /sa\/worker/);
      assert.match(err.message, /allowIdentityChange/);
      assert.equal(rig.serial(), pool[0]!.serialNumber);
      await rig.close();

      await volume!.write(files(pool[1]!));
      rig = await Rig.open({ dir }, { expectIdentity: 'spiffe://prod.example/ns/pay/sa/*' });
      await volume!.write(files(other));
      await rig.servesSerial(other.serialNumber);
      const outside = await ca.issue('spiffe://prod.example/ns/billing/sa/api');
      await volume!.write(files(outside));
      const refused = await rig.errorWith(codes.IDENTITY_MISMATCH);
      assert.match(refused.message, /ns\/billing/);
      assert.equal(rig.serial(), other.serialNumber);
      await rig.close();

      rig = await Rig.open({ dir }, { allowIdentityChange: true });
      await volume!.write(files(pool[2]!));
      await rig.servesSerial(pool[2]!.serialNumber);
    });
  });

  describe('fileSource: plain files and in-place writers', () => {
    it('in-place torn writer (new cert with old key on the way): never serves a torn pair, ends on the new one', async () => {
      const dir = await plainDir(pool[0]!);
      rig = await Rig.open({ dir });
      const writer = inPlaceWriter(dir);
      await writer.write(files(pool[1]!), { betweenFilesMs: 40, midFileMs: 15 });
      await rig.servesSerial(pool[1]!.serialNumber);
      await writer.write({ 'tls.key': pool[2]!.key, 'tls.crt': pool[2]!.cert }, { betweenFilesMs: 60 });
      await rig.servesSerial(pool[2]!.serialNumber);
      for (const e of rig.errors) assert.ok([codes.KEY_MISMATCH, codes.PEM_INVALID, codes.PEM_EMPTY, codes.KEY_INVALID, codes.GENERATION_UNSTABLE].includes(e.code as never), e.code);
      rig.assertClean(allKeys());
    });

    it('a reload() in the torn state itself refuses it with KEY_MISMATCH and keeps the old pair', async () => {
      const dir = await plainDir(pool[0]!);
      rig = await Rig.open({ dir }, { debounceMs: 1000 });
      let torn: Credential | undefined;
      await inPlaceWriter(dir).write(files(pool[1]!), {
        onFileWritten: async (name) => {
          if (name === 'tls.crt') torn = await rig!.source.reload();
        },
      });
      assert.equal(torn?.leaf.serialNumber, pool[0]!.serialNumber);
      const err = rig.errors.find((e) => e.code === codes.KEY_MISMATCH);
      assert.ok(err, `expected KEY_MISMATCH, got ${rig.errors.map((e) => e.code).join(',')}`);
      assert.equal(err.file, path.join(dir, 'tls.key'));
      await rig.source.reload();
      assert.equal(rig.serial(), pool[1]!.serialNumber);
      assert.equal(rig.source.health().state, 'fresh');
      rig.assertClean(allKeys());
    });

    it('a file replaced by a directory: FILE_UNREADABLE "is a directory"; recovers', async () => {
      const dir = await plainDir(pool[0]!);
      rig = await Rig.open({ dir });
      await unlink(path.join(dir, 'tls.crt'));
      await mkdir(path.join(dir, 'tls.crt'));
      const err = await rig.errorWith(codes.FILE_UNREADABLE);
      assert.match(err.message, /directory/);
      assert.equal(err.file, path.join(dir, 'tls.crt'));
      assert.equal(rig.serial(), pool[0]!.serialNumber);
      await rm(path.join(dir, 'tls.crt'), { recursive: true });
      await inPlaceWriter(dir).write(files(pool[1]!));
      await rig.servesSerial(pool[1]!.serialNumber);
      rig.assertClean(allKeys());
    });

    it('unreadable files: a FIFO (never blocks) and a dangling symlink are refused with FILE_UNREADABLE', async function () {
      const dir = await plainDir(pool[0]!);
      rig = await Rig.open({ dir });
      const key = path.join(dir, 'tls.key');
      await unlink(key);
      try {
        execFileSync('mkfifo', [key]);
      } catch {
        console.log('      (mkfifo is not available: FIFO case skipped)');
        await symlink('nowhere.key', key);
      }
      const fifo = await rig.errorWith(codes.FILE_UNREADABLE);
      assert.equal(fifo.file, key);
      assert.match(fifo.message, /named pipe|does not exist/);
      rig.errors.length = 0;
      await unlink(key);
      await symlink(path.join(dir, 'gone', 'tls.key'), key);
      const dangling = await rig.errorWith(codes.FILE_UNREADABLE);
      assert.match(dangling.message, /symbolic link to .*gone.*does not exist/);
      assert.equal(rig.serial(), pool[0]!.serialNumber);
      await unlink(key);
      await inPlaceWriter(dir).write(files(pool[1]!));
      await rig.servesSerial(pool[1]!.serialNumber);
      rig.assertClean(allKeys());
    });

    it('files that never stop changing: GENERATION_UNSTABLE, never a half-read file', async function () {
      this.timeout(20_000);
      const dir = await plainDir(pool[0]!);
      // polling once a minute: no file event (this writer would flood inotify), only reload()
      rig = await Rig.open({ dir }, { pollIntervalMs: 60_000, recheckIntervalMs: 0 });
      // Another process rewrites the certificate in place every 0.2 ms without truncating (pwrite
      // at offset 0): the size never changes and the mtime only moves once per kernel tick, so
      // only reading the bytes twice can tell that the file is never still.
      const a = `${pool[0]!.cert}\n${'x'.repeat(64)}\n`;
      const b = `${pool[0]!.cert}\n${'y'.repeat(64)}\n`;
      await writeFile(path.join(dir, 'tls.crt'), a);
      const writer = spawn(process.execPath, ['-e', `
        const fs = require('node:fs');
        const [file, a, b] = process.argv.slice(1);
        const fd = fs.openSync(file, 'r+');
        const pause = new Int32Array(new SharedArrayBuffer(4));
        const end = Date.now() + 15000;
        for (let i = 0; Date.now() < end; i++) {
          fs.writeSync(fd, i % 2 ? a : b, 0);
          Atomics.wait(pause, 0, 0, 0.2);
        }
      `, path.join(dir, 'tls.crt'), a, b], { stdio: 'ignore' });
      try {
        await waitFor(() => readFileSync(path.join(dir, 'tls.crt'), 'utf8').includes('y'.repeat(64)), 5000, 'the writer to start');
        const seen = new Set<string>();
        for (let i = 0; i < 40 && !seen.has(codes.GENERATION_UNSTABLE); i++) {
          rig.errors.length = 0;
          await rig.source.reload();
          for (const e of rig.errors) seen.add(e.code);
        }
        assert.ok(seen.has(codes.GENERATION_UNSTABLE), `expected GENERATION_UNSTABLE among ${[...seen].join(', ') || 'no errors'}`);
        assert.deepEqual([...seen], [codes.GENERATION_UNSTABLE]);
        const unstable = rig.source.health().lastError;
        assert.equal(unstable?.code, codes.GENERATION_UNSTABLE);
        assert.match(unstable.message, /kept changing/);
        assert.equal(rig.serial(), pool[0]!.serialNumber);
      } finally {
        writer.kill('SIGKILL');
      }
      rig.assertClean(allKeys());
    });

    it('an encrypted key loads with passphrase, and is refused without it', async () => {
      const encrypted = createPrivateKey(pool[0]!.key).export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'open sesame' }).toString();
      const dir = path.join(tmp, 'enc');
      await inPlaceWriter(dir).write({ 'tls.crt': pool[0]!.cert, 'tls.key': encrypted, 'ca.crt': ca.bundle });
      const refused = await fileSource({ dir }, { logger: recordingLogger() }).then(() => undefined, (e: unknown) => e);
      assert.ok(isMeshlessError(refused, codes.KEY_ENCRYPTED), String(refused));
      rig = await Rig.open({ dir }, { passphrase: 'open sesame' });
      assert.equal(rig.serial(), pool[0]!.serialNumber);
      assert.ok(!JSON.stringify(rig.logger.entries).includes('open sesame'));
    });

    it('explicit files in a kubelet volume are read from one generation too', async () => {
      const dir = await kubeletDir(pool[0]!);
      rig = await Rig.open({ certFile: path.join(dir, 'tls.crt'), keyFile: path.join(dir, 'tls.key'), caFile: path.join(dir, 'ca.crt') });
      await volume!.write(files(pool[1]!));
      await volume!.write(files(pool[2]!));
      await rig.servesSerial(pool[2]!.serialNumber);
      rig.assertClean(allKeys());
    });
  });

  describe('fileSource: triggers', () => {
    it('reload() reads now and resolves with the current credential', async () => {
      const dir = await plainDir(pool[0]!);
      rig = await Rig.open({ dir }, { debounceMs: 10_000 });
      await inPlaceWriter(dir).write(files(pool[1]!));
      const c = await rig.source.reload();
      assert.equal(c.leaf.serialNumber, pool[1]!.serialNumber);
      assert.equal(rig.source.current(), c);
    });

    it('the periodic re-check catches a change no event reported', async () => {
      const dir = await kubeletDir(pool[0]!);
      // polling every minute: no event will arrive during the test; only the re-check can see it
      rig = await Rig.open({ dir }, { pollIntervalMs: 60_000, recheckIntervalMs: 150 });
      await volume!.write(files(pool[1]!));
      await rig.servesSerial(pool[1]!.serialNumber);
    });

    it('pollIntervalMs watches by polling (network filesystems)', async () => {
      const dir = await kubeletDir(pool[0]!);
      rig = await Rig.open({ dir }, { pollIntervalMs: 40, recheckIntervalMs: 0 });
      await volume!.write(files(pool[1]!));
      await rig.servesSerial(pool[1]!.serialNumber);
      await volume!.write(files(pool[2]!));
      await rig.servesSerial(pool[2]!.serialNumber);
    });

    it('a listener that throws does not break the source', async () => {
      const dir = await kubeletDir(pool[0]!);
      rig = await Rig.open({ dir });
      rig.source.on('update', () => {
        throw new Error('listener bug');
      });
      await volume!.write(files(pool[1]!));
      await rig.servesSerial(pool[1]!.serialNumber);
      await volume!.write(files(pool[2]!));
      await rig.servesSerial(pool[2]!.serialNumber);
      assert.ok(rig.logger.entries.some((l) => l.level === 'error' && (l.obj as { listenerError?: string }).listenerError === 'listener bug'));
      assert.equal(rig.source.health().state, 'fresh');
    });

    it('a failure with no error listener is logged, not thrown', async () => {
      const dir = await kubeletDir(pool[0]!);
      const logger = recordingLogger();
      const source = await fileSource({ dir }, { logger });
      try {
        await volume!.write({ 'tls.crt': 'garbage', 'tls.key': pool[1]!.key, 'ca.crt': ca.bundle });
        await waitFor(() => source.health().state === 'stale', 5000, 'stale health');
        assert.ok(logger.entries.some((l) => l.level === 'warn' && (l.obj as { err?: { code?: string } }).err?.code === codes.PEM_INVALID));
        assert.equal(source.current().leaf.serialNumber, pool[0]!.serialNumber);
      } finally {
        await source.close();
      }
    });
  });

  describe('fileSource: health', () => {
    it('turns expiring past renewAtShare of the lifetime, then expired, without any file event', async function () {
      this.timeout(10_000);
      // X.509 times have a 1 s resolution: align, so the boundaries are exact.
      const start = Math.floor(Date.now() / 1000) * 1000;
      const short = await ca.issue({ spiffeId: ID, notBefore: new Date(start - 2000), notAfter: new Date(start + 3000) });
      const dir = await kubeletDir(short);
      // renewal point at 4/5 of 5 s = start + 2 s; expiry at start + 3 s
      rig = await Rig.open({ dir }, { renewAtShare: 0.8 });
      assert.equal(rig.source.health().state, 'fresh');
      await waitFor(() => rig!.healths.some((h) => h.state === 'expired'), 5000, 'expired');
      assert.deepEqual(rig.healths.map((h) => h.state), ['expiring', 'expired']);
      assert.ok(Date.now() >= start + 3000);
      assert.equal(rig.source.health().state, 'expired');
      // a failed reload while expired stays expired (the more severe state)
      await volume!.write({ 'tls.crt': 'garbage', 'tls.key': short.key, 'ca.crt': ca.bundle });
      await rig.errorWith(codes.PEM_INVALID);
      assert.equal(rig.source.health().state, 'expired');
      assert.equal(rig.source.health().lastError?.code, codes.PEM_INVALID);
      // a renewal makes it fresh again
      await volume!.write(files(pool[1]!));
      await rig.servesSerial(pool[1]!.serialNumber);
      assert.equal(rig.source.health().state, 'fresh');
      assert.equal(rig.healths.at(-1)?.state, 'fresh');
    });

    it('is expiring at start when loaded past the renewal point', async () => {
      const now = Date.now();
      const old = await ca.issue({ spiffeId: ID, notBefore: new Date(now - 3_000_000), notAfter: new Date(now + 600_000) });
      const dir = await kubeletDir(old);
      rig = await Rig.open({ dir });
      assert.equal(rig.source.health().state, 'expiring');
      assert.ok(rig.logger.entries.some((l) => l.level === 'warn' && /expiring/.test(l.msg ?? '')));
    });
  });

  describe('fileSource: observability', () => {
    it('publishes update, error and health on diagnostics channels, and logs, with no key byte anywhere', async () => {
      const seen: { channel: string; message: unknown }[] = [];
      const subscriptions = [channels.sourceUpdate, channels.sourceError, channels.sourceHealth].map((ch) => {
        const fn = (message: unknown) => seen.push({ channel: ch.name as string, message });
        diagnostics_channel.subscribe(ch.name, fn);
        return () => diagnostics_channel.unsubscribe(ch.name, fn);
      });
      try {
        const dir = await kubeletDir(pool[0]!);
        rig = await Rig.open({ dir });
        await volume!.write(files(pool[1]!));
        await rig.servesSerial(pool[1]!.serialNumber);
        await volume!.write({ 'tls.crt': pool[2]!.cert, 'tls.key': pool[3]!.key, 'ca.crt': ca.bundle });
        await rig.errorWith(codes.KEY_MISMATCH);
        const mine = seen.filter((s) => (s.message as { source?: unknown }).source === rig!.source);
        const names = mine.map((s) => s.channel);
        assert.ok(names.includes('meshless:source:update'));
        assert.ok(names.includes('meshless:source:error'));
        assert.ok(names.includes('meshless:source:health'));
        const update = mine.find((s) => s.channel === 'meshless:source:update')!.message as { credential: Credential; previous: Credential };
        assert.equal(update.credential.leaf.serialNumber, pool[1]!.serialNumber);
        assert.equal(update.previous.leaf.serialNumber, pool[0]!.serialNumber);
        const serialized = JSON.stringify(mine.map((s) => ({ ...(s.message as object), source: undefined })));
        for (const k of allKeys()) assert.ok(!serialized.includes(keyBody(k)));
        assert.ok(!serialized.includes(keyBody(privateKeyPem(rig.source.current()))));
        assert.ok(rig.logger.entries.some((l) => l.msg?.includes('rotated')));
        assert.ok(rig.logger.entries.some((l) => l.level === 'warn' && l.msg?.includes('reload failed')));
        rig.assertClean(allKeys());
      } finally {
        for (const off of subscriptions) off();
      }
    });

    it('counts reloads by outcome and observes expiry seconds and generation until close', async () => {
      const recorder = new RecordingMeterProvider();
      metrics.disable();
      assert.ok(metrics.setGlobalMeterProvider(recorder), 'test meter provider installed');
      try {
        const dir = await kubeletDir(pool[0]!);
        rig = await Rig.open({ dir });
        await volume!.write(files(pool[1]!));
        await rig.servesSerial(pool[1]!.serialNumber);
        await volume!.write({ 'tls.crt': 'x', 'tls.key': pool[1]!.key, 'ca.crt': ca.bundle });
        await rig.errorWith(codes.PEM_INVALID);
        const reloads = recorder.counts('meshless.credential.reloads');
        assert.ok(reloads.some((r) => r.attributes.outcome === 'success' && r.attributes['meshless.source'] === dir));
        assert.ok(reloads.some((r) => r.attributes.outcome === 'failure' && r.attributes['error.code'] === codes.PEM_INVALID));
        const observed = recorder.collect();
        const expiry = observed.find((o) => o.name === 'meshless.credential.expiry_seconds');
        const generation = observed.find((o) => o.name === 'meshless.credential.generation');
        assert.ok(expiry && expiry.value > 3000 && expiry.value <= 3600, `expiry ≈ 1 h, got ${expiry?.value}`);
        assert.equal(generation?.value, 2);
        assert.equal(generation?.attributes['meshless.identity'], ID);
        await rig.close();
        assert.deepEqual(recorder.collect(), [], 'gauges removed on close');
      } finally {
        metrics.disable();
      }
    });
  });

  describe('fileSource: close', () => {
    it('stops watching: current() still returns the last generation, reload() rejects, no update after close', async () => {
      const dir = await kubeletDir(pool[0]!);
      rig = await Rig.open({ dir });
      const witness = await Rig.open({ dir });
      try {
        await rig.source.close();
        await rig.source.close(); // idempotent
        assert.equal(rig.serial(), pool[0]!.serialNumber);
        const err = await rig.source.reload().then(() => undefined, (e: unknown) => e);
        assert.ok(isMeshlessError(err, codes.SOURCE_CLOSED));
        await volume!.write(files(pool[1]!));
        await witness.servesSerial(pool[1]!.serialNumber);
        // the witness saw the swap event and rotated: a live source watching the same directory
        // would have rotated too.
        await witness.source.reload();
        assert.equal(rig.serial(), pool[0]!.serialNumber);
        assert.equal(rig.updates.length, 0);
      } finally {
        await witness.close();
      }
    });
  });
});

// ---- a MeterProvider that records, for the metrics test --------------------------------------

class RecordingMeterProvider implements MeterProvider {
  readonly added: { name: string; value: number; attributes: Attributes }[] = [];
  readonly batch = new Map<BatchObservableCallback, Observable[]>();
  readonly names = new WeakMap<object, string>();

  getMeter(): Meter {
    const observable = (name: string) => {
      const o = { addCallback() {}, removeCallback() {} };
      this.names.set(o, name);
      return o;
    };
    const counter = (name: string) => ({ add: (value: number, attributes: Attributes = {}) => this.added.push({ name, value, attributes }) });
    const meter = {
      createCounter: counter,
      createUpDownCounter: counter,
      createHistogram: (name: string) => ({ record: (value: number, attributes: Attributes = {}) => this.added.push({ name, value, attributes }) }),
      createGauge: (name: string) => ({ record: (value: number, attributes: Attributes = {}) => this.added.push({ name, value, attributes }) }),
      createObservableGauge: observable,
      createObservableCounter: observable,
      createObservableUpDownCounter: observable,
      addBatchObservableCallback: (cb: BatchObservableCallback, obs: Observable[]) => void this.batch.set(cb, obs),
      removeBatchObservableCallback: (cb: BatchObservableCallback) => void this.batch.delete(cb),
    };
    return meter as unknown as Meter;
  }

  counts(name: string) {
    return this.added.filter((a) => a.name === name);
  }

  collect(): { name: string; value: number; attributes: Attributes }[] {
    const out: { name: string; value: number; attributes: Attributes }[] = [];
    for (const cb of this.batch.keys()) {
      void cb({ observe: (o: Observable, value: number, attributes: Attributes = {}) => out.push({ name: this.names.get(o) ?? '?', value, attributes }) });
    }
    return out;
  }
}
