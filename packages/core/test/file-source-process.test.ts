import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmod, copyFile, mkdtemp, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestCA, inPlaceWriter, kubernetesVolume, type IssuedCertificate, type TestCA } from '@meshless/testing';
import { copyCoreWithDependencies } from './helpers/portable-core.js';

// Tests that need a process of their own: exiting with no handle left, a real EACCES (as another
// user), and a real single-file bind mount (in a private mount namespace).

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const ID = 'spiffe://prod.example/ns/pay/sa/api';

interface Child {
  lines: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
  /** Resolves with the first JSON line whose `event` is `name`. */
  next(name: string, ms: number): Promise<Record<string, unknown>>;
  kill(): void;
}

/**
 * Runs ESM code in a child node process: by default in the checkout, TypeScript sources resolved
 * through tsx; with `cwd` (and `uid`/`gid`), plain Node in that folder, on what it holds.
 */
function runChild(code: string, env: Record<string, string>, options: { wrap?: string[]; cwd?: string; uid?: number; gid?: number; node?: string } = {}): Child {
  const nodeArgs = options.cwd ? ['--input-type=module', '-e', code] : ['--conditions=source', '--import', 'tsx', '--input-type=module', '-e', code];
  const node = options.node ?? process.execPath;
  const [cmd, args] = options.wrap ? [options.wrap[0]!, [...options.wrap.slice(1), node, ...nodeArgs]] : [node, nodeArgs];
  const started = performance.now();
  const child = spawn(cmd, args, {
    cwd: options.cwd ?? repo,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(options.uid === undefined ? {} : { uid: options.uid, gid: options.gid }),
  });
  const lines: string[] = [];
  const waiters: { name: string; resolve: (v: Record<string, unknown>) => void }[] = [];
  let buffer = '';
  child.stdout.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      lines.push(line);
      try {
        const parsed = JSON.parse(line) as Record<string, unknown>;
        for (const w of waiters.filter((w) => w.name === parsed.event)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(parsed);
        }
      } catch {
        // not JSON: kept in lines for the failure message
      }
    }
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, ms: performance.now() - started })),
  );
  return {
    lines,
    exited,
    next(name, ms) {
      const found = lines.map((l) => { try { return JSON.parse(l) as Record<string, unknown>; } catch { return undefined; } }).find((p) => p?.event === name);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`child: no "${name}" within ${ms} ms; stdout: ${lines.join(' | ')}; stderr: ${stderr.slice(-2000)}`)), ms);
        waiters.push({ name, resolve: (v) => { clearTimeout(timer); resolve(v); } });
        void exited.then(() => setImmediate(() => { clearTimeout(timer); reject(new Error(`child exited before "${name}"; stdout: ${lines.join(' | ')}; stderr: ${stderr.slice(-2000)}`)); }));
      });
    },
    kill() {
      child.kill('SIGKILL');
    },
  };
}

/** Fails if the child has not exited by itself within `ms` (then kills it). */
async function exitsWithin(child: Child, ms: number): Promise<{ code: number | null; ms: number }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms)));
  const result = await Promise.race([child.exited, timeout]);
  clearTimeout(timer);
  if (result === 'timeout') {
    child.kill();
    throw new Error(`the child did not exit by itself within ${ms} ms: a handle kept it alive; stdout: ${child.lines.join(' | ')}`);
  }
  return result;
}

let ca: TestCA;
let certs: IssuedCertificate[];
let tmp: string;
const cleanup: string[] = [];

/** The first of `dirs` that another (unprivileged) user can traverse, with every folder above it. */
async function firstReachableByOthers(dirs: string[]): Promise<string | undefined> {
  for (const dir of dirs) {
    let ok = true;
    for (let d = path.resolve(dir); ; d = path.dirname(d)) {
      const mode = await stat(d).then((s) => (s.isDirectory() ? s.mode : 0), () => 0);
      if (!(mode & 0o001)) ok = false;
      if (d === path.dirname(d) || !ok) break;
    }
    if (ok) return path.resolve(dir);
  }
  return undefined;
}

const files = (c: IssuedCertificate) => ({ 'tls.crt': c.cert, 'tls.key': c.key, 'ca.crt': c.ca });

describe('fileSource in a process of its own', function () {
  this.timeout(30_000);
  before(async () => {
    ca = await createTestCA({ trustDomain: 'prod.example' });
    certs = await Promise.all([ca.issue(ID), ca.issue(ID)]);
  });
  beforeEach(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), 'meshless-fsp-'));
  });
  afterEach(async () => {
    await rm(tmp, { recursive: true, force: true });
    for (const dir of cleanup.splice(0)) await rm(dir, { recursive: true, force: true });
  });

  /** A Kubernetes volume in tmp/tls holding the first certificate; returns its folder. */
  async function mountFirstGeneration(): Promise<string> {
    const dir = path.join(tmp, 'tls');
    const volume = kubernetesVolume(dir);
    await volume.write(files(certs[0]!));
    await volume.close();
    return dir;
  }

  it('close() leaves no handle: the process rotates once, closes and exits by itself', async () => {
    const dir = await mountFirstGeneration();
    const child = runChild(
      `import { fileSource, silentLogger } from '@meshless/core';
       import { kubernetesVolume } from '@meshless/testing';
       const alive = setInterval(() => {}, 1000); // the application's own handle (a server, usually)
       const s = await fileSource({ dir: process.env.DIR }, { logger: silentLogger, recheckIntervalMs: 1000 });
       const rotated = new Promise((r) => s.once('update', r));
       const v = kubernetesVolume(process.env.DIR);
       await v.write(JSON.parse(process.env.NEXT));
       await v.close();
       const c = await rotated;
       await s.close();
       clearInterval(alive);
       console.log(JSON.stringify({ event: 'closed', generation: c.generation, serial: s.current().leaf.serialNumber }));`,
      { DIR: dir, NEXT: JSON.stringify(files(certs[1]!)) },
    );
    const closed = await child.next('closed', 20_000);
    assert.equal(closed.generation, 2);
    assert.equal(closed.serial, certs[1]!.serialNumber);
    const { code } = await exitsWithin(child, 10_000);
    assert.equal(code, 0);
  });

  it('a source never holds the process open, even when not closed', async () => {
    const dir = await mountFirstGeneration();
    const child = runChild(
      `import { fileSource, silentLogger } from '@meshless/core';
       const s = await fileSource({ dir: process.env.DIR }, { logger: silentLogger, pollIntervalMs: process.env.POLL ? 50 : undefined });
       console.log(JSON.stringify({ event: 'loaded', generation: s.current().generation }));`,
      { DIR: dir },
    );
    assert.equal((await child.next('loaded', 20_000)).generation, 1);
    assert.equal((await exitsWithin(child, 10_000)).code, 0);
    const polling = runChild(
      `import { fileSource, silentLogger } from '@meshless/core';
       const s = await fileSource({ dir: process.env.DIR }, { logger: silentLogger, pollIntervalMs: 50 });
       console.log(JSON.stringify({ event: 'loaded', generation: s.current().generation }));`,
      { DIR: dir },
    );
    assert.equal((await polling.next('loaded', 20_000)).generation, 1);
    assert.equal((await exitsWithin(polling, 10_000)).code, 0);
  });

  it('permission denied (as an unprivileged user): FILE_UNREADABLE naming the key, old generation kept', async function () {
    // As root, the child runs as nobody and the new key is root's, mode 0600. Otherwise the child
    // runs as us and the new key has mode 0000 (its owner cannot read it either).
    // The checkout and TMPDIR may be private (a clone inside a mode-0700 folder): as root, the
    // child runs in a temp folder that nobody can reach, holding the mount it reads and a copy of
    // the built core with its dependencies (nothing is read from the checkout).
    const asRoot = process.getuid?.() === 0;
    let base = tmp;
    let node: string | undefined;
    if (asRoot) {
      const reachable = await firstReachableByOthers([tmpdir(), '/tmp', '/var/tmp', '/dev/shm']);
      if (!reachable) {
        console.log('      (no temp folder that an unprivileged user can reach: TMPDIR, /tmp, /var/tmp and /dev/shm are all private)');
        this.skip();
      }
      base = await mkdtemp(path.join(reachable, 'meshless-nobody-'));
      cleanup.push(base);
      copyCoreWithDependencies(base);
      // The Node binary may sit where nobody cannot reach it either (CI's Node 22/24 live in
      // ~/.cache/meshless-node under a mode-0700 /root): then nobody runs a copy of it.
      const execDir = path.dirname(process.execPath);
      if ((await firstReachableByOthers([execDir])) === undefined || !((await stat(process.execPath)).mode & 0o001)) {
        node = path.join(base, 'node');
        await copyFile(process.execPath, node);
        await chmod(node, 0o755);
      }
    }
    const dir = path.join(base, 'plain');
    await inPlaceWriter(dir).write(files(certs[0]!));
    await chmod(base, 0o755);
    await chmod(dir, 0o755);
    for (const name of ['tls.crt', 'tls.key', 'ca.crt']) await chmod(path.join(dir, name), 0o644);
    const child = runChild(
      `import { fileSource, silentLogger } from '@meshless/core';
       const s = await fileSource({ dir: process.env.DIR }, { logger: silentLogger });
       const alive = setInterval(() => {}, 1000); // a source never holds the process: we do, until the error
       s.on('error', (e) => {
         clearInterval(alive);
         console.log(JSON.stringify({ event: 'error', code: e.code, file: e.file, message: e.message, serial: s.current().leaf.serialNumber, health: s.health().state }));
         void s.close();
       });
       console.log(JSON.stringify({ event: 'loaded', uid: process.getuid() }));`,
      { DIR: dir, HOME: base },
      asRoot ? { cwd: base, uid: 65534, gid: 65534, ...(node ? { node } : {}) } : {},
    );
    const loaded = await child.next('loaded', 20_000);
    if (asRoot) assert.notEqual(loaded.uid, 0, 'the child runs unprivileged');
    // replace the key with one the child may not read
    const key = path.join(dir, 'tls.key');
    const mode = asRoot ? 0o600 : 0o000;
    await writeFile(`${key}.new`, certs[1]!.key, { mode });
    await chmod(`${key}.new`, mode);
    await rename(`${key}.new`, key);
    const error = await child.next('error', 10_000);
    assert.equal(error.code, 'MESHLESS_ERR_FILE_UNREADABLE');
    assert.equal(error.file, key);
    assert.match(String(error.message), /permission denied/);
    assert.equal(error.serial, certs[0]!.serialNumber);
    assert.equal(error.health, 'stale');
    assert.equal((await exitsWithin(child, 10_000)).code, 0);
  });

  it('warns once when a credential file is a single-file bind mount (like a Kubernetes subPath)', async function () {
    const probe = spawnSync('unshare', ['-m', 'sh', '-c', `touch ${tmp}/a ${tmp}/b && mount --bind ${tmp}/a ${tmp}/b`], { stdio: 'ignore' });
    if (probe.status !== 0) {
      console.log('      (unshare -m / mount --bind not permitted here: only the mountinfo parser is tested, in file-source-mountinfo.test.ts)');
      this.skip();
    }
    const dir = path.join(tmp, 'etc-tls');
    await inPlaceWriter(dir).write(files(certs[0]!));
    const volume = kubernetesVolume(path.join(tmp, 'volume'));
    await volume.write(files(certs[0]!));
    await volume.close();
    const pinned = path.join(volume.dataDir()!, 'tls.crt');
    const child = runChild(
      `import { fileSource } from '@meshless/core';
       const warnings = [];
       const log = (level) => (obj, msg) => { if (level === 'warn') warnings.push({ path: obj.path, msg }); };
       const logger = { warn: log('warn'), info: log('info'), debug: log('debug'), error: log('error') };
       const s = await fileSource({ dir: process.env.DIR }, { logger });
       const deadline = Date.now() + 5000;
       while (warnings.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
       await s.reload();
       await s.close();
       console.log(JSON.stringify({ event: 'warnings', warnings }));`,
      { DIR: dir },
      { wrap: ['unshare', '-m', 'sh', '-c', 'mount --bind "$0" "$1" && shift && exec "$@"', pinned, path.join(dir, 'tls.crt')] },
    );
    const { warnings } = (await child.next('warnings', 20_000)) as { warnings: { path: string; msg: string }[] };
    assert.equal(warnings.length, 1, `exactly one warning: ${JSON.stringify(warnings)}`);
    assert.equal(warnings[0]!.path, path.join(dir, 'tls.crt'));
    assert.match(warnings[0]!.msg, /single-file mount.*subPath/);
    assert.equal((await exitsWithin(child, 10_000)).code, 0);
  });
});
