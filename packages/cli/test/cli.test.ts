import assert from 'node:assert/strict';
import { BIN, ensureBuilt, runCli } from './helpers/cli.js';

describe('meshless (the binary)', function () {
  this.timeout(60_000);
  before(() => ensureBuilt());

  it('lists its commands on --help and exits 0', async () => {
    const r = await runCli(['--help']);
    assert.equal(r.code, 0, r.stderr);
    for (const cmd of ['ca init', 'ca issue', 'inspect', 'probe', 'serve']) assert.match(r.stdout, new RegExp(`^  ${cmd} `, 'm'));
    // an installed CLI has no docs/ folder next to it: the link is absolute
    assert.match(r.stdout, /Docs: https:\/\/\S+\/docs\/getting-started\.md$/m);
  });

  it('prints usage and exits 2 without a command', async () => {
    const r = await runCli([]);
    assert.equal(r.code, 2);
    assert.match(r.stdout, /Usage: meshless COMMAND/);
  });

  it('exits 2 naming an unknown command', async () => {
    const r = await runCli(['frobnicate']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown command "frobnicate"/);
    const ca = await runCli(['ca', 'destroy']);
    assert.equal(ca.code, 2);
    assert.match(ca.stderr, /meshless ca init/);
  });

  it('prints its version', async () => {
    const r = await runCli(['--version']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^\d+\.\d+\.\d+\n$/);
  });

  for (const cmd of [['ca', 'init'], ['ca', 'issue'], ['inspect'], ['probe'], ['serve']]) {
    it(`\`meshless ${cmd.join(' ')} --help\` shows its usage and exits 0; an unknown option exits 2`, async () => {
      const help = await runCli([...cmd, '--help']);
      assert.equal(help.code, 0, help.stderr);
      assert.match(help.stdout, new RegExp(`^Usage: meshless ${cmd.join(' ')}`));
      const bad = await runCli([...cmd, '--no-such-option']);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /--no-such-option/);
      assert.match(bad.stderr, new RegExp(`Run \`meshless ${cmd.join(' ')} --help\``));
    });
  }

  it('is the bin that package.json declares', async () => {
    const { readFile } = await import('node:fs/promises');
    const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { bin: Record<string, string> };
    assert.equal(new URL(pkg.bin.meshless!, new URL('../', import.meta.url)).pathname, BIN);
    const head = (await readFile(BIN, 'utf8')).split('\n')[0];
    assert.equal(head, '#!/usr/bin/env node');
  });
});
