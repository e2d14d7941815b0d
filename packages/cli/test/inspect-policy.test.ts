import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureBuilt, runCli, tempDir } from './helpers/cli.js';

describe('meshless inspect --policy', function () {
  this.timeout(60_000);
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => {
    ensureBuilt();
    ({ dir, cleanup } = await tempDir());
  });
  after(() => cleanup());

  it('prints what each rule matches, with its line, and exits 0 for a valid file', async () => {
    const file = join(dir, 'policy.yaml');
    await writeFile(file, 'allow:\n  - spiffe://prod.example/ns/web/**\n  - spiffe://prod.example/ns/*/sa/api\ndeny:\n  - spiffe://prod.example/ns/web/sa/batch\ndryRun: true\n');
    const r = await runCli(['inspect', '--policy', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /valid — DRY RUN/);
    assert.match(r.stdout, /line 2 +spiffe:\/\/prod\.example\/ns\/web\/\*\* +any SPIFFE ID under spiffe:\/\/prod\.example\/ns\/web\//);
    assert.match(r.stdout, /line 3 +spiffe:\/\/prod\.example\/ns\/\*\/sa\/api +SPIFFE IDs of exactly 4 path segments/);
    assert.match(r.stdout, /deny \(wins over allow\):\n +line 5 +spiffe:\/\/prod\.example\/ns\/web\/sa\/batch +exactly the SPIFFE ID/);
    const asJson = await runCli(['inspect', '--policy', file, '--json']);
    const report = JSON.parse(asJson.stdout) as { ok: boolean; dryRun: boolean; rules: { list: string; line: number }[] };
    assert.equal(report.ok, true);
    assert.equal(report.dryRun, true);
    assert.deepEqual(report.rules.map((x) => [x.list, x.line]), [['allow', 2], ['allow', 3], ['deny', 5]]);
  });

  it('exits 1 with MESHLESS_ERR_POLICY_INVALID naming the line and rule of a bad file', async () => {
    const file = join(dir, 'bad.json');
    await writeFile(file, '{\n  "allow": [\n    "spiffe://prod.example/ns/**/x"\n  ]\n}\n');
    const r = await runCli(['inspect', '--policy', file]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /INVALID\n +policy file .*bad\.json line 3: allow rule "spiffe:\/\/prod\.example\/ns\/\*\*\/x"/);
    assert.match(r.stderr, /meshless inspect: MESHLESS_ERR_POLICY_INVALID/);
    const unknown = join(dir, 'typo.yaml');
    await writeFile(unknown, 'allow: ["*"]\ndenny: ["spiffe://prod.example/ns/x/sa/y"]\n');
    const t = await runCli(['inspect', '--policy', unknown]);
    assert.equal(t.code, 1);
    assert.match(t.stdout, /line 2: unknown key "denny"/);
  });
});
