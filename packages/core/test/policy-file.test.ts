import assert from 'node:assert/strict';
import diagnostics_channel from 'node:diagnostics_channel';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  allowList,
  channels,
  codes,
  createPeer,
  isDryRunDecision,
  isMeshlessError,
  policyFile,
  type MeshlessError,
  type Peer,
  type PolicyFile,
} from '@meshless/core';
import {
  dryRunAuthorizer,
  onPolicyChange,
  parsePolicy,
  type PolicyChange,
} from '@meshless/core/internal';
import { kubernetesVolume, type KubernetesVolume, recordingLogger, waitFor } from '@meshless/testing';

const WEB = 'spiffe://prod.example/ns/web/sa/frontend';
const BATCH = 'spiffe://prod.example/ns/web/sa/batch';
const PAY = 'spiffe://prod.example/ns/pay/sa/api';

function peer(spiffeId: string): Peer {
  return createPeer({
    spiffeId,
    trustDomain: 'prod.example',
    dnsNames: [],
    uris: [spiffeId],
    serialNumber: '01',
    fingerprint256: 'AA',
    notBefore: new Date(0),
    notAfter: new Date(Date.now() + 3_600_000),
  });
}

function policyError(fn: () => unknown): MeshlessError {
  try {
    fn();
  } catch (err) {
    assert.ok(isMeshlessError(err, codes.POLICY_INVALID), `MESHLESS_ERR_POLICY_INVALID, got ${String(err)}`);
    return err;
  }
  assert.fail('expected MESHLESS_ERR_POLICY_INVALID');
}

describe('parsePolicy', () => {
  it('reads YAML and JSON: allow, deny, dryRun, each rule with its line', () => {
    const yaml = parsePolicy(`# who may call web\nallow:\n  - spiffe://prod.example/ns/web/**\ndeny:\n  - ${BATCH}\ndryRun: true\n`, '/p/policy.yaml');
    assert.deepEqual(yaml.allow, ['spiffe://prod.example/ns/web/**']);
    assert.deepEqual(yaml.deny, [BATCH]);
    assert.equal(yaml.dryRun, true);
    assert.deepEqual(yaml.rules.map((r) => [r.list, r.line]), [['allow', 3], ['deny', 5]]);
    assert.equal(yaml.authorizer(peer(WEB)).allowed, true);
    assert.equal(yaml.authorizer(peer(BATCH)).allowed, false);
    const json = parsePolicy(JSON.stringify({ allow: [PAY] }, null, 2), '/p/policy.json');
    assert.deepEqual(json.allow, [PAY]);
    assert.equal(json.dryRun, false);
    assert.equal(json.rules[0]!.line, 3);
  });

  it('refuses unknown keys, naming the file and line (a typo must not widen access)', () => {
    const err = policyError(() => parsePolicy(`allow: [${PAY}]\ndenny: [${BATCH}]\n`, '/p/policy.yaml'));
    assert.match(err.message, /policy file \/p\/policy\.yaml line 2: unknown key "denny"/);
    assert.equal(err.file, '/p/policy.yaml');
  });

  it('names the line and the rule of a rule that does not parse', () => {
    const err = policyError(() => parsePolicy(`allow:\n  - ${PAY}\n  - spiffe://prod.example/ns/pay*/x\n`, '/p/policy.yaml'));
    assert.match(err.message, /line 3: allow rule "spiffe:\/\/prod\.example\/ns\/pay\*\/x"/);
    assert.equal(err.rule, 'spiffe://prod.example/ns/pay*/x');
  });

  it('refuses an empty allow, a non-string rule, a non-boolean dryRun, duplicate keys and broken YAML', () => {
    assert.match(policyError(() => parsePolicy('allow: []\n', 'f')).message, /allows nothing/);
    assert.match(policyError(() => parsePolicy('deny: [x]\n', 'f')).message, /allows nothing/);
    assert.match(policyError(() => parsePolicy('allow:\n  - 42\n', 'f')).message, /line 2: every allow rule is a string/);
    assert.match(policyError(() => parsePolicy(`allow: ['*']\ndryRun: "yes"\n`, 'f')).message, /line 2: dryRun must be true or false/);
    assert.match(policyError(() => parsePolicy(`allow: ['*']\nallow: ['*']\n`, 'f')).message, /not valid YAML or JSON/);
    assert.match(policyError(() => parsePolicy('allow: [\n', 'f')).message, /not valid YAML or JSON/);
    assert.match(policyError(() => parsePolicy('- just a list\n', 'f')).message, /a policy is a map/);
  });
});

describe('dryRunAuthorizer', () => {
  it('lets a would-be denial through as a DryRunDecision, logged once as "would deny", counted and published', () => {
    const logger = recordingLogger();
    const authorize = dryRunAuthorizer(allowList([WEB], { deny: [BATCH] }), { scope: 'test', logger });
    const published: unknown[] = [];
    const onEvent = (m: unknown) => published.push(m);
    diagnostics_channel.subscribe(channels.policyWouldDeny.name, onEvent);
    try {
      assert.equal(authorize(peer(WEB)).allowed, true);
      assert.equal(isDryRunDecision(authorize(peer(WEB))), false);
      const batch = peer(BATCH);
      const d = authorize(batch);
      assert.equal(d.allowed, true);
      assert.ok(isDryRunDecision(d));
      assert.equal(d.rule, BATCH);
      assert.equal(d.wouldDeny.allowed, false);
      assert.equal(authorize(batch), d, 'the same peer decides once');
      authorize(peer(BATCH)); // another connection of the same identity: reported, not logged again
      const lines = logger.entries.filter((l) => /would deny/.test(l.msg ?? ''));
      assert.equal(lines.length, 1);
      assert.equal(lines[0]!.obj.peer, BATCH);
      assert.equal(lines[0]!.obj.dryRun, true);
      assert.equal(lines[0]!.obj.rule, BATCH);
      assert.equal(published.length, 2);
    } finally {
      diagnostics_channel.unsubscribe(channels.policyWouldDeny.name, onEvent);
    }
  });
});

describe('policyFile', function () {
  let dir: string;
  let volume: KubernetesVolume;
  let policy: PolicyFile | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'meshless-policy-'));
    volume = kubernetesVolume(dir);
  });
  afterEach(async () => {
    await policy?.close();
    policy = undefined;
    await volume.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('applies a ConfigMap-style ..data swap live and tells its subscribers', async () => {
    await volume.write({ 'policy.yaml': `allow:\n  - ${WEB}\n  - ${BATCH}\n` });
    policy = await policyFile(path.join(dir, 'policy.yaml'), { logger: recordingLogger() });
    assert.equal(policy(peer(BATCH)).allowed, true);
    assert.deepEqual(policy.rules, [WEB, BATCH]);
    assert.equal(allowList(policy), policy, 'usable as allow anywhere: allowList keeps it as is');
    const changes: PolicyChange[] = [];
    const stop = onPolicyChange([policy, undefined], (c) => changes.push(c));
    const started = Date.now();
    await volume.write({ 'policy.yaml': `allow:\n  - spiffe://prod.example/ns/web/**\ndeny:\n  - ${BATCH}\n` });
    await waitFor(() => changes.length === 1, 2_000, 'the policy change');
    const took = Date.now() - started;
    assert.ok(took < 1_000, `applied ${took} ms after the swap`);
    assert.equal(changes[0]!.generation, 2);
    assert.equal(policy(peer(BATCH)).allowed, false);
    assert.equal(policy(peer(WEB)).allowed, true);
    assert.equal(policy.state().generation, 2);
    stop();
    await volume.write({ 'policy.yaml': `allow: [${PAY}]\n` });
    await waitFor(() => policy!.state().generation === 3, 2_000, 'the third policy');
    assert.equal(changes.length, 1, 'unsubscribed');
  });

  it('keeps the last good policy when the file breaks, with a coded error naming file, line and rule', async () => {
    const logger = recordingLogger();
    await volume.write({ 'policy.yaml': `allow: [${WEB}]\n` });
    policy = await policyFile(path.join(dir, 'policy.yaml'), { logger });
    const errors: MeshlessError[] = [];
    policy.on('error', (e) => errors.push(e));
    await volume.write({ 'policy.yaml': `allow:\n  - ${WEB}\n  - spiffe://prod.example/ns/**/x\n` });
    await waitFor(() => errors.length === 1, 3_000, 'the refused change');
    assert.equal(errors[0]!.code, codes.POLICY_INVALID);
    assert.equal(errors[0]!.file, path.join(dir, 'policy.yaml'));
    assert.equal(errors[0]!.rule, 'spiffe://prod.example/ns/**/x');
    assert.match(errors[0]!.message, /line 3/);
    assert.equal(policy.state().generation, 1);
    assert.equal(policy.state().lastError?.code, codes.POLICY_INVALID);
    assert.equal(policy(peer(WEB)).allowed, true, 'last good policy still in force');
    assert.ok(logger.entries.some((l) => l.level === 'warn' && /refused/.test(l.msg ?? '')));
    // Fixed again: applied, error cleared.
    await volume.write({ 'policy.yaml': `allow: [${PAY}]\n` });
    await waitFor(() => policy!.state().generation === 2, 2_000, 'the fixed policy');
    assert.equal(policy.state().lastError, undefined);
    assert.equal(policy(peer(WEB)).allowed, false);
  });

  it('follows in-place edits of a plain file too, and a dryRun file lets would-be denials through', async () => {
    const file = path.join(dir, 'plain.json');
    await writeFile(file, JSON.stringify({ allow: [WEB] }));
    const logger = recordingLogger();
    policy = await policyFile(file, { logger });
    assert.equal(policy(peer(PAY)).allowed, false);
    await writeFile(file, JSON.stringify({ allow: [WEB], dryRun: true }));
    await waitFor(() => policy!.state().generation === 2, 2_000, 'the edit');
    assert.equal(policy.state().dryRun, true);
    const d = policy(peer(PAY));
    assert.equal(d.allowed, true);
    assert.ok(isDryRunDecision(d));
    assert.ok(logger.entries.some((l) => /would deny/.test(l.msg ?? '') && l.obj.peer === PAY));
  });

  it('refuses to start on a bad file, and on a missing one', async () => {
    await volume.write({ 'policy.yaml': 'allow: []\n' });
    await assert.rejects(policyFile(path.join(dir, 'policy.yaml')), (err: unknown) => isMeshlessError(err, codes.POLICY_INVALID) && /allows nothing/.test(err.message));
    await assert.rejects(policyFile(path.join(dir, 'absent.yaml')), (err: unknown) => isMeshlessError(err, codes.POLICY_INVALID) && /cannot be read/.test(err.message));
  });
});
