import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { allowList, codes } from '@meshless/core';
import { root } from './helpers/processes.js';

const docs = [
  'README.md',
  'docs/getting-started.md',
  'docs/allow-list.md',
  'docs/errors.md',
  'docs/kubernetes.md',
  'docs/workload-api.md',
  'docs/federation.md',
  'packages/workload-api/README.md',
  'docs/troubleshooting.md',
  'docs/frameworks.md',
  'docs/observability.md',
  'examples/kubernetes/README.md',
  'packages/cli/README.md',
  'docs/migration.md',
];

describe('docs', () => {
  it('docs/errors.md explains every error code of @meshless/core', async () => {
    const text = await readFile(join(root, 'docs/errors.md'), 'utf8');
    const rows = new Set([...text.matchAll(/^\| `(MESHLESS_ERR_[A-Z_]+)` \|/gm)].map((m) => m[1]));
    for (const code of Object.values(codes)) assert.ok(rows.has(code), `docs/errors.md has no row for ${code}`);
    for (const code of rows) assert.ok((Object.values(codes) as string[]).includes(code!), `docs/errors.md lists ${code}, which core does not define`);
  });

  it('every relative link in the guides points to a file that exists', async () => {
    for (const doc of docs) {
      const text = await readFile(join(root, doc), 'utf8');
      for (const [, target] of text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
        if (/^[a-z]+:/.test(target!)) continue;
        assert.ok(existsSync(join(root, dirname(doc), target!)), `${doc} links to ${target}, which does not exist`);
      }
    }
  });

  it('the README opens with the two commands and a usage snippet', async () => {
    const firstScreen = (await readFile(join(root, 'README.md'), 'utf8')).split('\n').slice(0, 40).join('\n');
    assert.match(firstScreen, /^npm test\b/m);
    assert.match(firstScreen, /^npm run demo\b/m);
    assert.match(firstScreen, /createServer\(\{ source, allow: /);
    assert.match(firstScreen, /docs\/getting-started\.md/);
  });

  it('every rule in the allow-list table compiles', async () => {
    const text = await readFile(join(root, 'docs/allow-list.md'), 'utf8');
    const table = text.slice(text.indexOf('| rule | matches |'), text.indexOf('Rules about identities'));
    const rules = [...table.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]!);
    assert.ok(rules.length >= 8, `found ${rules.length} rules`);
    for (const rule of rules) assert.doesNotThrow(() => allowList(rule), rule);
  });
});
