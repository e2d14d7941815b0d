import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, readlink, realpath, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { kubernetesVolume, type KubernetesVolume, waitFor } from '@meshless/testing';
import { useTempDir } from './support.js';

const TIMESTAMP_DIR = /^\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\.\d+$/;
const generation = (n: number) => ({ 'tls.crt': `cert ${n}\n`, 'tls.key': `key ${n}\n`, 'ca.crt': `ca ${n}\n` });
const timestampDirs = async (dir: string) => (await readdir(dir)).filter((name) => TIMESTAMP_DIR.test(name)).sort();

describe('kubernetesVolume', () => {
  const tmp = useTempDir();
  const volumes: KubernetesVolume[] = [];
  const open = (...args: Parameters<typeof kubernetesVolume>) => {
    const volume = kubernetesVolume(...args);
    volumes.push(volume);
    return volume;
  };
  afterEach(async () => {
    await Promise.all(volumes.splice(0).map((volume) => volume.close()));
  });

  it('lays out a volume the way the kubelet does', async () => {
    const dir = join(tmp(), 'nested', 'certs');
    const volume = open(dir);
    assert.equal(volume.dir, dir);
    assert.equal(volume.dataDir(), undefined);
    await volume.write(generation(1));

    const data = await readlink(join(dir, '..data'));
    assert.match(data, TIMESTAMP_DIR);
    assert.equal(volume.dataDir(), join(dir, data));
    for (const name of ['tls.crt', 'tls.key', 'ca.crt']) {
      assert.ok((await lstat(join(dir, name))).isSymbolicLink());
      assert.equal(await readlink(join(dir, name)), `..data/${name}`);
      assert.equal(await realpath(join(dir, name)), join(dir, data, name));
    }
    assert.equal(await readFile(join(dir, 'tls.crt'), 'utf8'), 'cert 1\n');
    assert.equal(await readFile(join(dir, 'tls.key'), 'utf8'), 'key 1\n');
    assert.deepEqual((await readdir(dir)).sort(), ['..data', data, 'ca.crt', 'tls.crt', 'tls.key'].sort());
    assert.equal((await stat(join(dir, 'tls.crt'))).mode & 0o777, 0o644);
    assert.equal((await stat(join(dir, 'tls.key'))).mode & 0o777, 0o600);
    assert.equal((await stat(join(dir, data))).mode & 0o777, 0o755);
  });

  it('swaps ..data to a new timestamp directory and removes the old one', async () => {
    const dir = tmp();
    const volume = open(dir);
    await volume.write(generation(1));
    const first = await readlink(join(dir, '..data'));
    await volume.write(generation(2));
    const second = await readlink(join(dir, '..data'));
    assert.notEqual(second, first);
    assert.equal(existsSync(join(dir, first)), false);
    assert.deepEqual(await timestampDirs(dir), [second]);
    assert.equal(await readFile(join(dir, 'tls.crt'), 'utf8'), 'cert 2\n');
    assert.equal(await readFile(join(dir, 'tls.key'), 'utf8'), 'key 2\n');
    assert.equal(existsSync(join(dir, '..data_tmp')), false);
  });

  it('serializes writes made without waiting', async () => {
    const dir = tmp();
    const volume = open(dir);
    await Promise.all([1, 2, 3].map((n) => volume.write(generation(n))));
    assert.equal(await readFile(join(dir, 'tls.crt'), 'utf8'), 'cert 3\n');
    assert.equal((await timestampDirs(dir)).length, 1);
  });

  it('keepOld keeps every previous generation', async () => {
    const dir = tmp();
    const volume = open(dir, { keepOld: true });
    await volume.write(generation(1));
    const first = volume.dataDir()!;
    await volume.write(generation(2));
    assert.equal(await readFile(join(first, 'tls.crt'), 'utf8'), 'cert 1\n');
    assert.equal((await timestampDirs(dir)).length, 2);
    await volume.close();
    assert.equal((await timestampDirs(dir)).length, 2);
  });

  it('removeOldAfterMs removes the previous generation later', async () => {
    const dir = tmp();
    const volume = open(dir, { removeOldAfterMs: 50 });
    await volume.write(generation(1));
    const first = volume.dataDir()!;
    await volume.write(generation(2));
    assert.equal(await readFile(join(first, 'tls.key'), 'utf8'), 'key 1\n', 'a slow reader can still finish');
    await waitFor(() => !existsSync(first), 5_000, 'the delayed removal');
    assert.deepEqual(await timestampDirs(dir), [await readlink(join(dir, '..data'))]);
  });

  it('close() removes what was scheduled for later, and refuses more writes', async () => {
    const dir = tmp();
    const volume = open(dir, { removeOldAfterMs: 3_600_000 });
    await volume.write(generation(1));
    const first = volume.dataDir()!;
    await volume.write(generation(2));
    assert.ok(existsSync(first));
    await volume.close();
    assert.equal(existsSync(first), false);
    await assert.rejects(volume.write(generation(3)), /after close/);
  });

  it('removes visible links of names that are gone, and adds new ones', async () => {
    const dir = tmp();
    const volume = open(dir);
    await volume.write({ 'tls.crt': 'a', 'tls.key': 'b', 'ca.crt': 'c' });
    await volume.write({ 'tls.crt': 'a2', 'tls.key': 'b2', 'bundle.pem': 'd' });
    const data = await readlink(join(dir, '..data'));
    assert.deepEqual((await readdir(dir)).sort(), ['..data', data, 'bundle.pem', 'tls.crt', 'tls.key'].sort());
    assert.equal(await readFile(join(dir, 'bundle.pem'), 'utf8'), 'd');
  });

  it('links the top directory of nested names', async () => {
    const dir = tmp();
    const volume = open(dir);
    await volume.write({ 'certs/tls.crt': 'x', 'top.pem': 'y' });
    assert.equal(await readlink(join(dir, 'certs')), '..data/certs');
    assert.equal(await readFile(join(dir, 'certs', 'tls.crt'), 'utf8'), 'x');
  });

  it('takes over a volume written before (by another writer instance)', async () => {
    const dir = tmp();
    await open(dir).write(generation(1));
    const before = await readlink(join(dir, '..data'));
    await open(dir).write(generation(2));
    assert.equal(existsSync(join(dir, before)), false);
    assert.equal(await readFile(join(dir, 'ca.crt'), 'utf8'), 'ca 2\n');
  });

  it('honours fileMode and keyFileMode', async () => {
    const dir = tmp();
    const volume = open(dir, { fileMode: 0o640, keyFileMode: 0o400 });
    await volume.write({ 'cert-chain.pem': 'c', 'key.pem': 'k', 'svid_key.pem': 'k2' });
    assert.equal((await stat(join(dir, 'cert-chain.pem'))).mode & 0o777, 0o640);
    assert.equal((await stat(join(dir, 'key.pem'))).mode & 0o777, 0o400);
    assert.equal((await stat(join(dir, 'svid_key.pem'))).mode & 0o777, 0o400);
  });

  it('accepts Buffers', async () => {
    const dir = tmp();
    await open(dir).write({ 'tls.crt': Buffer.from([0, 1, 2, 255]) });
    assert.deepEqual(await readFile(join(dir, 'tls.crt')), Buffer.from([0, 1, 2, 255]));
  });

  it('rejects reserved and escaping names without touching the volume', async () => {
    const dir = tmp();
    const volume = open(dir);
    for (const name of ['..data', '../escape', '/abs', '', 'a//b', './x', 'sub/..hidden']) {
      await assert.rejects(volume.write({ [name]: 'x' }), /invalid file name/, name);
    }
    assert.deepEqual(await readdir(dir), []);
  });

  it('refuses to replace a visible name that is not a symlink', async () => {
    const dir = tmp();
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'tls.crt'), 'plain file');
    await assert.rejects(open(dir).write(generation(1)), /not a symlink/);
  });
});
