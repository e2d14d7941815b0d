// The packages as a release publishes them, served to plain npm: every non-private package under
// packages/ is packed with `pnpm pack` (prepack build, `workspace:*` rewritten, publishConfig
// applied) and served by a small local registry; every other package name is passed through to
// the public registry. A fresh npm project then installs `@meshless/http` by name, exactly as a
// user would once the packages are published.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const UPSTREAM = (process.env.MESHLESS_UPSTREAM_REGISTRY ?? 'https://registry.npmjs.org').replace(/\/$/, '');

export interface PackedPackage {
  name: string;
  version: string;
  folder: string;
  tarball: string;
  /** package.json as published (read back from the tarball). */
  manifest: Record<string, unknown> & { name: string; version: string };
  files: string[];
}

/** Every package a release publishes: packages/<folder>/package.json without "private": true, with a src/ (as scripts/release-manifest.mjs). */
export function publishedFolders(): string[] {
  return readdirSync(join(root, 'packages'), { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(join(root, 'packages', e.name, 'package.json')) && existsSync(join(root, 'packages', e.name, 'src')))
    .filter((e) => JSON.parse(readFileSync(join(root, 'packages', e.name, 'package.json'), 'utf8')).private !== true)
    .map((e) => `packages/${e.name}`);
}

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env, timeoutMs = 240_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

let packed: Promise<PackedPackage[]> | undefined;
const tempDirs: string[] = [];
process.once('exit', () => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

/** A temp folder removed when the test process exits. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

/** Packs every published package once per test run (`pnpm pack`, which runs `prepack`). */
export function packAll(): Promise<PackedPackage[]> {
  packed ??= (async () => {
    const dest = tempDir('meshless-pack-');
    // One build first, so that the prepack builds below find everything up to date and can run side by side.
    const build = await run(process.execPath, [join(root, 'scripts', 'build.mjs')], root);
    if (build.code !== 0) throw new Error(`scripts/build.mjs failed:\n${build.stdout}${build.stderr}`);
    const pnpm = join(root, 'node_modules', '.bin', 'pnpm');
    return Promise.all(
      publishedFolders().map(async (folder) => {
        const r = await run(pnpm, ['pack', '--pack-destination', dest, '--json'], join(root, folder), cleanEnv());
        if (r.code !== 0) throw new Error(`pnpm pack in ${folder} failed:\n${r.stdout}${r.stderr}`);
        const info = JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as { filename: string; files?: { path: string }[] };
        const tarball = info.filename.startsWith('/') ? info.filename : join(dest, info.filename);
        const manifestText = spawnSync('tar', ['-xzOf', tarball, 'package/package.json'], { encoding: 'utf8' });
        if (manifestText.status !== 0) throw new Error(`cannot read package.json from ${tarball}: ${manifestText.stderr}`);
        const list = spawnSync('tar', ['-tzf', tarball], { encoding: 'utf8' });
        const manifest = JSON.parse(manifestText.stdout) as PackedPackage['manifest'];
        return { name: manifest.name, version: manifest.version, folder, tarball, manifest, files: list.stdout.split('\n').filter(Boolean).map((f) => f.replace(/^package\//, '')) };
      }),
    );
  })();
  return packed;
}

/** The environment for npm and the user's commands: none of the npm_* settings of an enclosing `npm test`, no workspace bins on PATH. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) && k !== 'NODE_OPTIONS' && k !== 'INIT_CWD') env[k] = v;
  env.PATH = (process.env.PATH ?? '')
    .split(delimiter)
    .filter((p) => !p.includes(join(root, 'node_modules')) && !p.startsWith(root))
    .join(delimiter);
  // the Node.js running the tests comes first (CI runs them on several versions)
  env.PATH = `${dirname(process.execPath)}${delimiter}${env.PATH}`;
  return { ...env, ...extra };
}

export interface LocalRegistry {
  url: string;
  /** Requests to the public registry that failed at the network level (no answer at all). */
  unreachable: string[];
  /** npm settings (as environment) that install from this registry. */
  env: Record<string, string>;
  close(): Promise<void>;
}

/** Why the public registry cannot be used from here (no answer within 15 s), or undefined when it answers. */
export async function upstreamUnreachable(): Promise<string | undefined> {
  try {
    const res = await fetch(`${UPSTREAM}/undici`, { method: 'HEAD', signal: AbortSignal.timeout(15_000) });
    return res.status >= 500 ? `${UPSTREAM} answers ${res.status}` : undefined;
  } catch (err) {
    return `${UPSTREAM}: ${((err as Error).cause as Error | undefined)?.message ?? (err as Error).message}`;
  }
}

/** Public registry answers, kept for the test process (the consumer and getting-started tests ask for the same names). */
const packuments = new Map<string, { status: number; type: string; body: Buffer }>();

/** Serves the packed packages as a registry; other names are fetched from the public registry. */
export async function localRegistry(packages: PackedPackage[]): Promise<LocalRegistry> {
  const byName = new Map(packages.map((p) => [p.name, p]));
  const unreachable: string[] = [];
  const server: Server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://registry');
      const tarball = url.pathname.match(/^\/-\/tarball\/(.+)$/);
      if (tarball) {
        const pkg = packages.find((p) => encodeURIComponent(p.name) === tarball[1]);
        if (!pkg) return void res.writeHead(404).end();
        res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(readFileSync(pkg.tarball));
        return;
      }
      const name = decodeURIComponent(url.pathname.slice(1));
      const pkg = byName.get(name);
      if (pkg) {
        const bytes = readFileSync(pkg.tarball);
        const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
        const version = {
          ...pkg.manifest,
          _id: `${pkg.name}@${pkg.version}`,
          dist: {
            tarball: `${origin}/-/tarball/${encodeURIComponent(pkg.name)}`,
            integrity: `sha512-${createHash('sha512').update(bytes).digest('base64')}`,
            shasum: createHash('sha1').update(bytes).digest('hex'),
          },
        };
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ name: pkg.name, 'dist-tags': { latest: pkg.version }, versions: { [pkg.version]: version } }));
        return;
      }
      if (req.method !== 'GET' || !/^(@[^/]+\/)?[^/@][^/]*$/.test(name)) return void res.writeHead(404).end();
      const target = `${UPSTREAM}/${name.replace('/', '%2f')}`;
      const accept = req.headers.accept ?? 'application/json';
      const key = `${accept} ${target}`;
      let answer = packuments.get(key);
      if (!answer) {
        const upstream = await fetch(target, { headers: { accept } }).catch((err: Error) => {
          unreachable.push(`${target}: ${(err.cause as Error | undefined)?.message ?? err.message}`);
          throw err;
        });
        answer = { status: upstream.status, type: upstream.headers.get('content-type') ?? 'application/json', body: Buffer.from(await upstream.arrayBuffer()) };
        if (upstream.status === 200) packuments.set(key, answer);
      }
      res.writeHead(answer.status, { 'content-type': answer.type });
      res.end(answer.body);
    })().catch((err: Error) => {
      if (!res.headersSent) res.writeHead(502);
      res.end(String(err.message));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  return {
    url,
    unreachable,
    env: { npm_config_registry: url, npm_config_replace_registry_host: 'never', npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false', npm_config_loglevel: 'error' },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** Runs a command in the user's project with the given environment; resolves with its output. */
export function runIn(cwd: string, cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 240_000) {
  return run(cmd, args, cwd, env, timeoutMs);
}
