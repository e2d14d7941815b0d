// Every published package carries what a release needs; a new package fails here until it does.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { publishedFolders, root } from './helpers/release.js';

describe('release: package manifests', () => {
  it('every published package has its metadata, LICENSE, CHANGELOG.md, prepack build and publishConfig (scripts/release-manifest.mjs --check)', () => {
    const r = spawnSync(process.execPath, [join(root, 'scripts', 'release-manifest.mjs'), '--check'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  });

  it('every published package is in one fixed changesets group, and states the same supported Node.js lines as the README', () => {
    const config = JSON.parse(readFileSync(join(root, '.changeset', 'config.json'), 'utf8')) as { fixed: string[][]; access: string };
    assert.equal(config.access, 'public');
    const engines = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node;
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    assert.ok(readme.includes(engines), `README.md states the engines range ${engines}`);
    for (const folder of publishedFolders()) {
      const { name } = JSON.parse(readFileSync(join(root, folder, 'package.json'), 'utf8')) as { name: string };
      const inGroup = config.fixed[0]!.some((pattern) => (pattern.endsWith('/*') ? name.startsWith(pattern.slice(0, -1)) : name === pattern));
      assert.ok(inGroup, `${name} is not in the fixed version group of .changeset/config.json`);
    }
  });

  it('changesets can plan a release: `changeset status` succeeds (the fixed group also matches the private workspace packages, so each needs a version)', function () {
    // changesets compares against the base branch of .changeset/config.json
    if (spawnSync('git', ['rev-parse', '--verify', '--quiet', 'main'], { cwd: root }).status !== 0) {
      console.log('      skipped: this checkout has no branch "main" for changesets to compare against');
      this.skip();
    }
    const bin = join(root, 'node_modules', '.bin', 'changeset');
    const r = spawnSync(bin, ['status'], { cwd: root, encoding: 'utf8' });
    assert.equal(r.status, 0, `changeset status failed:\n${r.stdout}\n${r.stderr}`);
  });

  it("the CLI's docs link points into the repository the manifests name", () => {
    const { repository } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { repository: { url: string } };
    const repo = repository.url.replace(/^git\+/, '').replace(/\.git$/, '');
    const source = readFileSync(join(root, 'packages', 'cli', 'src', 'docs.ts'), 'utf8');
    assert.equal(source.match(/docsUrl = '([^']+)'/)?.[1], `${repo}/blob/main/docs`);
  });
});
