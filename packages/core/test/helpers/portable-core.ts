// A copy of @meshless/core (its built dist) and of every package it depends on, in a folder of
// our choosing: for a child process that runs as another user (nobody) and may not read the
// checkout, e.g. a clone inside a private (mode 0700) folder.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const coreDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const repo = path.resolve(coreDir, '../..');

/** Where package `name` resolves from the package in `from` (Node's node_modules walk). */
function resolvePackage(name: string, from: string): string | undefined {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const candidate = path.basename(dir) === 'node_modules' ? path.join(dir, name) : path.join(dir, 'node_modules', name);
    if (existsSync(path.join(candidate, 'package.json'))) return realpathSync(candidate);
    if (dir === path.dirname(dir)) return undefined;
  }
}

/**
 * Builds core (a no-op when dist is current), then copies it and its dependency closure into
 * `dir/node_modules`, so that `import '@meshless/core'` from `dir` needs nothing else.
 */
export function copyCoreWithDependencies(dir: string): void {
  const build = spawnSync(process.execPath, [path.join(repo, 'scripts', 'build.mjs'), coreDir], { cwd: repo, encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`scripts/build.mjs packages/core failed:\n${build.stdout}${build.stderr}`);
  const target = path.join(dir, 'node_modules');
  mkdirSync(path.join(target, '@meshless', 'core'), { recursive: true });
  cpSync(path.join(coreDir, 'package.json'), path.join(target, '@meshless', 'core', 'package.json'));
  cpSync(path.join(coreDir, 'dist'), path.join(target, '@meshless', 'core', 'dist'), { recursive: true });
  const copied = new Set<string>();
  const queue: string[] = [coreDir];
  while (queue.length) {
    const from = queue.shift()!;
    const manifest = JSON.parse(readFileSync(path.join(from, 'package.json'), 'utf8')) as { dependencies?: Record<string, string>; optionalDependencies?: Record<string, string> };
    for (const name of Object.keys({ ...manifest.dependencies, ...manifest.optionalDependencies })) {
      if (copied.has(name)) continue;
      const found = resolvePackage(name, from);
      if (!found) continue; // an optional dependency that is not installed
      copied.add(name);
      cpSync(found, path.join(target, name), { recursive: true, dereference: true, filter: (src) => !src.includes(`${path.sep}node_modules${path.sep}`, found.length) });
      queue.push(found);
    }
  }
}
