import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { findFrozenMounts, frozenMounts, parseMountInfo } from '@meshless/core/internal';

// A container's /proc/self/mountinfo with: a whole Secret volume (rotates), a Secret key mounted
// with subPath (a single file, never updated), a directory subPath pinned inside a kubelet
// generation directory, and a path with an escaped space.
const sample = [
  '1180 1050 0:321 / / rw,relatime master:395 - overlay overlay rw,lowerdir=/var/lib/containerd/l1,upperdir=/u,workdir=/w',
  '1181 1180 0:324 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw',
  '1190 1180 0:300 / /var/run/secrets/tls ro,relatime - tmpfs tmpfs rw,size=65536k,inode64',
  '1191 1180 0:300 /..2024_05_01_10_00_00.123456789/tls.crt /etc/app/tls.crt ro,relatime - tmpfs tmpfs rw,size=65536k,inode64',
  '1192 1180 0:301 /..2024_05_01_10_00_00.987654321/certs /etc/pinned ro,relatime - tmpfs tmpfs rw,size=65536k',
  '1193 1180 254:1 /var/lib/kubelet/pods/x/volumes/my\\040vol /etc/with\\040space rw,relatime shared:1 - ext4 /dev/vda1 rw',
  'garbage line',
  '',
].join('\n');

describe('mountinfo: subPath / single-file mount detection', () => {
  it('parses mountinfo lines, optional fields and octal escapes; skips lines that do not parse', () => {
    const entries = parseMountInfo(sample);
    assert.equal(entries.length, 6);
    const secret = entries.find((e) => e.mountPoint === '/var/run/secrets/tls')!;
    assert.equal(secret.root, '/');
    assert.equal(secret.fsType, 'tmpfs');
    assert.equal(secret.mountId, 1190);
    assert.equal(secret.parentId, 1180);
    const spaced = entries.find((e) => e.mountId === 1193)!;
    assert.equal(spaced.mountPoint, '/etc/with space');
    assert.equal(spaced.root, '/var/lib/kubelet/pods/x/volumes/my vol');
    assert.equal(spaced.source, '/dev/vda1');
    assert.equal(entries[0]!.fsType, 'overlay');
  });

  it('flags a credential file that is itself a mount point, and a directory pinned inside a generation directory', () => {
    const entries = parseMountInfo(sample);
    const found = frozenMounts(
      entries,
      new Map([
        ['/etc/app/tls.crt', ['/etc/app/tls.crt']],
        ['/etc/app/tls.key', ['/etc/app/tls.key']],
        ['/var/run/secrets/tls/tls.crt', ['/var/run/secrets/tls/tls.crt']],
      ]),
      new Map([
        ['/etc/app', ['/etc/app']],
        ['/var/run/secrets/tls', ['/var/run/secrets/tls']],
        ['/etc/pinned', ['/etc/pinned']],
        ['/etc/with space', ['/etc/with space']],
      ]),
    );
    assert.deepEqual(
      found.map((f) => [f.kind, f.path]),
      [
        ['file', '/etc/app/tls.crt'],
        ['dir', '/etc/pinned'],
      ],
    );
    assert.equal(found[0]!.entry.root, '/..2024_05_01_10_00_00.123456789/tls.crt');
  });

  it('finds a frozen mount through another spelling of the path (its directory reached by a symlink)', async () => {
    const tmp = await mkdtemp(path.join(tmpdir(), 'meshless-mi-'));
    try {
      const real = path.join(tmp, 'real');
      await mkdir(real);
      await writeFile(path.join(real, 'tls.crt'), 'x');
      await symlink(real, path.join(tmp, 'link'));
      const mountinfo = path.join(tmp, 'mountinfo');
      await writeFile(mountinfo, `${sample}\n2000 1180 0:300 /..2024_05_01_10_00_00.1/tls.crt ${real}/tls.crt ro - tmpfs tmpfs rw\n`);
      const found = await findFrozenMounts([path.join(tmp, 'link', 'tls.crt'), path.join(tmp, 'link', 'tls.key')], [path.join(tmp, 'link')], mountinfo);
      assert.deepEqual(found.map((f) => f.path), [path.join(tmp, 'link', 'tls.crt')]);
      assert.deepEqual(await findFrozenMounts([path.join(tmp, 'link', 'tls.crt')], [], path.join(tmp, 'absent')), [], 'no mountinfo: nothing found');
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });
});
