import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { inPlaceWriter, kubernetesVolume, waitFor } from '@meshless/testing';
import { useTempDir, within } from './support.js';

describe('inPlaceWriter', () => {
  const tmp = useTempDir();

  it('rewrites files in place: same inode, new content', async () => {
    const dir = join(tmp(), 'certs');
    const writer = inPlaceWriter(dir);
    assert.equal(writer.dir, dir);
    await writer.write({ 'tls.crt': 'cert 1', 'tls.key': 'key 1' });
    const inode = (await stat(join(dir, 'tls.crt'))).ino;
    await writer.write({ 'tls.crt': 'cert 2 longer', 'tls.key': Buffer.from('key 2') });
    assert.equal((await stat(join(dir, 'tls.crt'))).ino, inode);
    assert.equal(await readFile(join(dir, 'tls.crt'), 'utf8'), 'cert 2 longer');
    assert.equal(await readFile(join(dir, 'tls.key'), 'utf8'), 'key 2');
    assert.equal((await stat(join(dir, 'tls.key'))).mode & 0o777, 0o600);
    assert.equal((await stat(join(dir, 'tls.crt'))).mode & 0o777, 0o644);
  });

  it('leaves a torn pair between two files: new cert, old key', async () => {
    const dir = tmp();
    const writer = inPlaceWriter(dir);
    await writer.write({ 'tls.crt': 'cert 1', 'tls.key': 'key 1' });
    const seen: Array<[string, string]> = [];
    await writer.write(
      { 'tls.crt': 'cert 2', 'tls.key': 'key 2' },
      {
        onFileWritten: async () => {
          seen.push([await readFile(join(dir, 'tls.crt'), 'utf8'), await readFile(join(dir, 'tls.key'), 'utf8')]);
        },
      },
    );
    assert.deepEqual(seen, [
      ['cert 2', 'key 1'],
      ['cert 2', 'key 2'],
    ]);
  });

  it('betweenFilesMs holds the torn state open', async () => {
    const dir = tmp();
    const writer = inPlaceWriter(dir);
    await writer.write({ 'tls.crt': 'cert 1', 'tls.key': 'key 1' });
    const writing = writer.write({ 'tls.crt': 'cert 2', 'tls.key': 'key 2' }, { betweenFilesMs: 1_000 });
    await waitFor(async () => (await readFile(join(dir, 'tls.crt'), 'utf8')) === 'cert 2', 5_000, 'the first file');
    assert.equal(await readFile(join(dir, 'tls.key'), 'utf8'), 'key 1');
    await within(writing, 5_000, 'the write to finish');
    assert.equal(await readFile(join(dir, 'tls.key'), 'utf8'), 'key 2');
  });

  it('midFileMs leaves a half-written file', async () => {
    const dir = tmp();
    const writer = inPlaceWriter(dir);
    const full = 'x'.repeat(100);
    const writing = writer.write({ 'tls.crt': full }, { midFileMs: 1_000 });
    await waitFor(() => existsSync(join(dir, 'tls.crt')), 5_000, 'the file to be created');
    const partial = await readFile(join(dir, 'tls.crt'), 'utf8');
    assert.ok(partial.length < full.length && full.startsWith(partial), `${partial.length} bytes`);
    await within(writing, 5_000, 'the write to finish');
    assert.equal(await readFile(join(dir, 'tls.crt'), 'utf8'), full);
  });

  it('follows the symlinks of a kubelet volume (and so writes into its ..data generation)', async () => {
    const dir = tmp();
    const volume = kubernetesVolume(dir);
    await volume.write({ 'tls.crt': 'cert 1', 'tls.key': 'key 1' });
    await inPlaceWriter(dir).write({ 'tls.crt': 'cert 2' });
    assert.equal(await readFile(join(volume.dataDir()!, 'tls.crt'), 'utf8'), 'cert 2');
    await volume.close();
  });

  it('rejects escaping names', async () => {
    await assert.rejects(inPlaceWriter(tmp()).write({ '../x': 'y' }), /invalid file name/);
  });
});
