#!/usr/bin/env node
// Keeps every published package (packages/*/package.json without "private": true) ready for
// `pnpm publish`: metadata from the root manifest, the published `exports` without the `source`
// condition, a `prepack` build (scripts/build.mjs), typings for `moduleResolution: node10` (TypeScript's default for
// `module: commonjs`), LICENSE, CHANGELOG.md, and README links that work from npm.
//
//   node scripts/release-manifest.mjs           fills in what is missing or stale (then commit it)
//   node scripts/release-manifest.mjs --check   lists what is wrong and exits 1 (npm test runs it)
//
// What it cannot write for you: "description" and "keywords" (say what the package is for).
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const readJson = (file) => JSON.parse(readFileSync(file, 'utf8'));

/**
 * Every package a release publishes: `packages/<folder>` with a package.json that is not private
 * and a `src/` folder (a package.json alone, e.g. dependencies added ahead of the code, is not a
 * package yet; `--check` names it).
 */
export function publishedPackages({ all = false } = {}) {
  return readdirSync(join(root, 'packages'), { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(join(root, 'packages', e.name, 'package.json')))
    .map((e) => ({ folder: `packages/${e.name}`, dir: join(root, 'packages', e.name), manifest: readJson(join(root, 'packages', e.name, 'package.json')) }))
    .filter((p) => p.manifest.private !== true && (all || existsSync(join(p.dir, 'src'))));
}

/** `exports` as published: the same map without the `source` condition (src/*.ts does not load from node_modules). */
function withoutSource(exports) {
  if (typeof exports !== 'object' || exports === null) return exports;
  return Object.fromEntries(Object.entries(exports).filter(([k]) => k !== 'source').map(([k, v]) => [k, withoutSource(v)]));
}

function condition(entry, name) {
  return typeof entry === 'object' && entry !== null ? entry[name] : undefined;
}

/** The build before `pnpm pack` / `pnpm publish`: tsc -b, then the entry-point bundles (scripts/build.mjs). */
export const PREPACK = 'node ../../scripts/build.mjs .';

/** The manifest with every derived field set; fields a person writes are kept as they are. */
export function expectedManifest({ folder, manifest }, rootManifest = readJson(join(root, 'package.json'))) {
  const repo = rootManifest.repository.url.replace(/^git\+/, '').replace(/\.git$/, '');
  const m = { ...manifest };
  m.license = rootManifest.license;
  m.repository = { type: 'git', url: rootManifest.repository.url, directory: folder };
  m.homepage = `${repo}/tree/main/${folder}#readme`;
  m.bugs = rootManifest.bugs;
  m.engines = { ...manifest.engines, node: rootManifest.engines.node };
  const files = [...(manifest.files ?? [])];
  for (const f of ['dist', 'README.md', 'LICENSE', 'CHANGELOG.md']) if (!files.includes(f)) files.push(f);
  m.files = files;
  m.scripts = { ...manifest.scripts, prepack: PREPACK };
  const exports = manifest.exports ?? {};
  const main = exports['.'];
  if (condition(main, 'default')) m.main = condition(main, 'default');
  if (condition(main, 'types')) m.types = condition(main, 'types');
  const subpaths = Object.entries(exports).filter(([k, v]) => k !== '.' && condition(v, 'types'));
  if (subpaths.length) m.typesVersions = { '*': Object.fromEntries(subpaths.map(([k, v]) => [k.replace(/^\.\//, ''), [condition(v, 'types')]])) };
  m.publishConfig = { ...manifest.publishConfig, access: 'public', exports: withoutSource(exports) };
  return m;
}

/** README text with links that leave the package (`../../docs/x.md`) made absolute. */
function absoluteLinks(text, folder, rootManifest) {
  const repo = rootManifest.repository.url.replace(/^git\+/, '').replace(/\.git$/, '');
  return text.replace(/\]\((\.\.\/[^)\s]*)\)/g, (_, target) => {
    const path = join(folder, target).replace(/\\/g, '/');
    return `](${repo}/blob/main/${path})`;
  });
}

const KEY_ORDER = ['name', 'version', 'description', 'keywords', 'license', 'repository', 'homepage', 'bugs', 'type', 'engines', 'main', 'types', 'typesVersions', 'exports', 'bin', 'files', 'scripts'];
function ordered(m) {
  const out = {};
  for (const k of KEY_ORDER) if (k in m) out[k] = m[k];
  for (const k of Object.keys(m)) if (!(k in out)) out[k] = m[k];
  return out;
}

/** What is wrong with each published package, as sentences; with `write`, fixes what it can first. */
export function check({ write = false } = {}) {
  const rootManifest = readJson(join(root, 'package.json'));
  const license = readFileSync(join(root, 'LICENSE'), 'utf8');
  const problems = [];
  for (const pkg of publishedPackages()) {
    const { folder, dir, manifest } = pkg;
    const name = manifest.name ?? folder;
    const expected = ordered(expectedManifest(pkg, rootManifest));
    const file = join(dir, 'package.json');
    if (JSON.stringify(expected) !== JSON.stringify(manifest)) {
      if (write) writeFileSync(file, `${JSON.stringify(expected, null, 2)}\n`);
      else {
        const stale = Object.keys(expected).filter((k) => JSON.stringify(expected[k]) !== JSON.stringify(manifest[k]));
        problems.push(`${name}: package.json fields missing or stale: ${stale.join(', ') || 'key order'}`);
      }
    }
    if (!manifest.description) problems.push(`${name}: package.json has no "description"`);
    if (!Array.isArray(manifest.keywords) || manifest.keywords.length === 0) problems.push(`${name}: package.json has no "keywords"`);
    if (!manifest.version) problems.push(`${name}: package.json has no "version"`);
    const licenseFile = join(dir, 'LICENSE');
    if (!existsSync(licenseFile) || readFileSync(licenseFile, 'utf8') !== license) {
      if (write) writeFileSync(licenseFile, license);
      else problems.push(`${name}: ${folder}/LICENSE is missing or differs from the root LICENSE`);
    }
    const changelog = join(dir, 'CHANGELOG.md');
    if (!existsSync(changelog)) {
      if (write) writeFileSync(changelog, `# ${name}\n`);
      else problems.push(`${name}: ${folder}/CHANGELOG.md is missing (changesets adds entries to it)`);
    }
    const readme = join(dir, 'README.md');
    if (!existsSync(readme)) problems.push(`${name}: ${folder}/README.md is missing`);
    else {
      const text = readFileSync(readme, 'utf8');
      const fixed = absoluteLinks(text, folder, rootManifest);
      if (fixed !== text) {
        if (write) writeFileSync(readme, fixed);
        else problems.push(`${name}: ${folder}/README.md links outside the package (${[...text.matchAll(/\]\((\.\.\/[^)\s]*)\)/g)].map((m) => m[1]).join(', ')}): npm shows the README without the repository around it`);
      }
    }
    const references = readJson(join(root, 'tsconfig.json')).references?.map((r) => r.path) ?? [];
    if (!references.includes(folder)) problems.push(`${name}: ${folder} is not in the root tsconfig.json references (tsc -b would not build it)`);
  }
  return problems;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const write = !process.argv.includes('--check');
  for (const p of publishedPackages({ all: true })) {
    if (!existsSync(join(p.dir, 'src'))) console.log(`release-manifest: ${p.folder} has no src/ yet: not a package to publish, skipped`);
  }
  const problems = check({ write });
  for (const p of problems) console.error(`release-manifest: ${p}`);
  if (problems.length) {
    if (!write) console.error('release-manifest: run `node scripts/release-manifest.mjs` to fill in the derived fields, LICENSE and CHANGELOG.md; write description and keywords yourself');
    process.exit(1);
  }
  if (!process.argv.includes('--check')) console.log(`release-manifest: ${publishedPackages().map((p) => p.manifest.name).join(', ')} are release-ready`);
}
