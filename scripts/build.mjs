#!/usr/bin/env node
// The build: `tsc -b` (type-check, declarations, per-file JavaScript), then one esbuild bundle per
// package entry point, so that `import '@meshless/http'` loads a handful of files instead of ~60.
//
//   node scripts/build.mjs              every package (npm run build, npm test, npm run bench)
//   node scripts/build.mjs <dir>…       those packages and what they reference (prepack: `.`)
//   node scripts/build.mjs --if-stale   only when a src/ or build/ changed since (test helpers)
//
// A package is bundled when its tsconfig.json has `"outDir": "build"`: tsc writes the per-file
// JavaScript there and the declarations to `dist/` (`declarationDir`); this script then writes
// `dist/<entry>.js` for every entry of the package's `exports` (its `source` condition names the
// src file) with ESM code splitting: entry points of one package share chunks, so module state
// (caches, diagnostics channels, error classes) exists once however many entry points load it.
// Dependencies, other @meshless packages included, stay external. Packages without that setting
// (the CLI: its dist/bin.js finds ../package.json and ../../proto relative to its own file) keep
// tsc's per-file output in dist/.
//
// NB: `tsc -b` alone refreshes build/ and the declarations but NOT the bundles in dist/: run this
// script (or npm run build) before anything that loads a package's dist (the CLI binary, the demo,
// the bench, pnpm pack). The test helpers that run dist/ call it with --if-stale.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** tsconfig.json files here are plain JSON except for comments. */
function readTsconfig(file) {
  return JSON.parse(readFileSync(file, 'utf8').replace(/^\s*\/\/.*$/gm, ''));
}

/** The workspace packages whose tsconfig asks for bundling (outDir "build"). */
export function bundledPackages() {
  const dir = join(root, 'packages');
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(join(dir, e.name, 'tsconfig.json')) && existsSync(join(dir, e.name, 'package.json')))
    .map((e) => join(dir, e.name))
    .filter((pkg) => readTsconfig(join(pkg, 'tsconfig.json')).compilerOptions?.outDir === 'build');
}

/** `{ out, in }` pairs: dist/<name>.js from build/<name>.js, one per `exports` entry. */
export function entryPoints(pkg) {
  const manifest = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8'));
  const entries = [];
  for (const [subpath, target] of Object.entries(manifest.exports ?? {})) {
    const source = target?.source;
    const output = target?.default;
    if (typeof source !== 'string' || typeof output !== 'string') throw new Error(`${manifest.name}: exports["${subpath}"] needs a "source" (src/*.ts) and a "default" (dist/*.js) to be bundled`);
    const m = /^\.\/src\/(.+)\.ts$/.exec(source);
    const o = /^\.\/dist\/([^/]+)\.js$/.exec(output);
    if (!m || !o) throw new Error(`${manifest.name}: exports["${subpath}"]: expected ./src/<name>.ts and ./dist/<name>.js, got ${source} and ${output}`);
    entries.push({ out: o[1], in: join(pkg, 'build', `${m[1]}.js`) });
  }
  return entries;
}

/** Writes `file` only when its content changes, through a rename (a concurrent reader never sees half a file). */
function writeIfChanged(file, contents) {
  if (existsSync(file) && readFileSync(file).equals(contents)) return false;
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, contents);
  renameSync(tmp, file);
  return true;
}

/** Every *.js and *.js.map under dir (what an earlier build or an older layout left in dist/). */
function javascriptFiles(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && /\.js(\.map)?$/.test(e.name))
    .map((e) => join(e.parentPath ?? e.path, e.name));
}

/**
 * Node built-ins through `process.getBuiltinModule`, not ESM imports. Node builds the ESM facade
 * of a built-in by reading every one of its exports, getters included: `node:tls` parses the
 * bundled root certificates (`rootCertificates`, +0.6 MB RSS), and on Node 22/24 `node:http` loads
 * Node's own undici (its WebSocket getter, +7 MB), `node:util` and `node:fs` about +1.5 MB more.
 * Each import becomes one read of the property it names, when the bundle loads; esbuild drops the
 * names nothing imports (they are marked pure). `export default` is the CommonJS object itself.
 */
/**
 * Built-ins loaded on first use: on Node 22/24 loading `node:fs/promises` loads readline and the
 * REPL history with it (+1.3 MB RSS), and the server path calls none of its functions unless a
 * file source or policy file is in use.
 */
const DEFERRED_BUILTINS = new Set(['node:fs/promises']);

const lazyBuiltins = {
  name: 'lazy-builtins',
  setup(build) {
    build.onResolve({ filter: /^node:/ }, (args) => ({ path: args.path, namespace: 'lazy-builtin' }));
    build.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, (args) => {
      const mod = process.getBuiltinModule(args.path);
      if (!mod) return { errors: [{ text: `${args.path} is not a Node.js built-in module` }] };
      const id = JSON.stringify(args.path);
      const names = Object.keys(mod).filter((k) => /^[A-Za-z_$][\w$]*$/.test(k) && k !== 'default');
      const lines = ['let $$builtin;', `const $$load = () => ($$builtin ??= process.getBuiltinModule(${id}));`, 'const $$get = (name) => $$load()[name];', 'export default /* @__PURE__ */ $$load();'];
      for (const name of names) {
        // A function of a deferred built-in loads the module on its first call.
        if (DEFERRED_BUILTINS.has(args.path) && typeof mod[name] === 'function') lines.push(`export function ${name}(...args) { return $$load().${name}(...args); }`);
        else lines.push(`export const ${name} = /* @__PURE__ */ $$get(${JSON.stringify(name)});`);
      }
      return { contents: lines.join('\n'), loader: 'js' };
    });
  },
};

export async function bundle(pkg) {
  const { build } = await import('esbuild');
  const dist = join(pkg, 'dist');
  const result = await build({
    absWorkingDir: pkg,
    entryPoints: entryPoints(pkg),
    outdir: dist,
    bundle: true,
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    format: 'esm',
    platform: 'node',
    target: 'node20.19',
    packages: 'external',
    // error classes and functions keep their names (messages, logs and tests read .name)
    keepNames: true,
    // tsc's maps are read in, so the bundle's maps point at src/*.ts
    sourcemap: 'linked',
    sourcesContent: false,
    legalComments: 'inline',
    plugins: [lazyBuiltins],
    write: false,
    logLevel: 'warning',
  });
  const written = new Set();
  let changed = 0;
  for (const f of result.outputFiles) {
    written.add(f.path);
    if (writeIfChanged(f.path, Buffer.from(f.contents))) changed++;
  }
  // tsc's per-file JavaScript from before this layout, or chunks of an earlier build
  for (const file of javascriptFiles(dist)) if (!written.has(file)) rmSync(file, { force: true });
  writeFileSync(join(pkg, 'build', STAMP), '');
  return { files: written.size, changed };
}

/** Written into build/ after each bundling: build/*.js newer than it means the bundles are stale. */
const STAMP = '.bundled';

function newestMtime(dir, filter = () => true) {
  if (!existsSync(dir)) return 0;
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile() || !filter(e.name)) continue;
    newest = Math.max(newest, statSync(join(e.parentPath ?? e.path, e.name)).mtimeMs);
  }
  return newest;
}

/**
 * Why the build is out of date, or undefined when it is not: a package's src/ changed after its
 * last tsc build, or tsc wrote build/ after the last bundling (someone ran `tsc -b` alone).
 */
export function staleness() {
  const dir = join(root, 'packages');
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const pkg = join(dir, e.name);
    if (!e.isDirectory() || !existsSync(join(pkg, 'tsconfig.json')) || !existsSync(join(pkg, 'src'))) continue;
    const info = join(pkg, 'tsconfig.tsbuildinfo');
    if (!existsSync(info)) return `${e.name} was never built`;
    if (newestMtime(join(pkg, 'src')) > statSync(info).mtimeMs) return `${e.name}/src changed since its last build`;
  }
  for (const pkg of bundledPackages()) {
    const stamp = join(pkg, 'build', STAMP);
    if (!existsSync(stamp)) return `${basename(pkg)} was never bundled`;
    if (newestMtime(join(pkg, 'build'), (n) => n.endsWith('.js')) > statSync(stamp).mtimeMs) return `${basename(pkg)}/build changed since its last bundling (tsc -b alone)`;
  }
  return undefined;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  // --if-stale: build only when staleness() finds a reason (the test helpers that run dist/ call it)
  if (args.includes('--if-stale') && staleness() === undefined) process.exit(0);
  const dirs = args.filter((a) => a !== '--if-stale').map((d) => resolve(d));
  const tsc = join(root, 'node_modules', '.bin', 'tsc');
  const r = spawnSync(tsc, ['-b', ...dirs.map((d) => relative(root, d) || '.')], { cwd: root, stdio: 'inherit' });
  if (r.error) throw r.error;
  if (r.status !== 0) process.exit(r.status ?? 1);
  // After `tsc -b <dir>` the packages it references are current too: bundle them all (a no-op for unchanged ones).
  for (const pkg of bundledPackages()) {
    try {
      await bundle(pkg);
    } catch (err) {
      console.error(`build: bundling ${basename(pkg)} failed: ${err.message}`);
      process.exit(1);
    }
  }
}
