import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { policyFile, type PolicyFile } from '@meshless/core';
import type { MeshlessServer, PeerRetirement } from '@meshless/http';
import { createServer, peerOf } from '@meshless/http';
import { kubernetesVolume, type KubernetesVolume, recordingLogger, waitFor } from '@meshless/testing';
import { BATCH_ID, FRONTEND_ID, closeServer, createPki, get, keepAliveAgent, listen, type Pki } from '@meshless/fixtures/http-server';

describe('createServer({ allow: policyFile(…) }): policy from a ConfigMap-style mount', function () {
  let pki: Pki;
  let dir: string;
  let volume: KubernetesVolume;
  let policy: PolicyFile;
  let server: MeshlessServer;
  let port: number;

  before(async () => {
    pki = await createPki();
  });
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'meshless-policy-server-'));
    volume = kubernetesVolume(dir);
    await volume.write({ 'policy.yaml': `allow:\n  - ${FRONTEND_ID}\n  - ${BATCH_ID}\n` });
    policy = await policyFile(path.join(dir, 'policy.yaml'), { logger: recordingLogger() });
    server = createServer({ source: pki.server, allow: policy, logger: recordingLogger(), keepAliveTimeout: 30_000 }, (req, res) => res.end(String(peerOf(req))));
    port = await listen(server);
  });
  afterEach(async () => {
    await closeServer(server);
    await policy.close();
    await volume.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('a swap changes who is allowed at once and retires the live connections of a newly denied peer', async () => {
    const agent = keepAliveAgent(pki.batch);
    try {
      const first = await get(port, '/', { ...pki.batch }, agent);
      assert.equal(first.body, BATCH_ID);
      const retired: PeerRetirement[] = [];
      server.on('peerRetired', (r) => retired.push(r));
      const started = Date.now();
      await volume.write({ 'policy.yaml': `allow: [${FRONTEND_ID}]\n` });
      await waitFor(() => retired.length === 1, 3_000, 'the retirement of the batch connection');
      const took = Date.now() - started;
      assert.ok(took < 1_000, `retired ${took} ms after the swap`);
      assert.equal(retired[0]!.reason, 'policy-changed');
      assert.equal(String(retired[0]!.peer), BATCH_ID);
      await waitFor(() => first.socket.destroyed, 3_000, 'the retired connection to close');
      await assert.rejects(get(port, '/', { ...pki.batch }), 'a new connection of the denied peer is refused');
      assert.equal((await get(port, '/', { ...pki.frontend })).body, FRONTEND_ID);
    } finally {
      agent.destroy();
    }
  });

  it('a broken file keeps the last good policy', async () => {
    const errors: unknown[] = [];
    policy.on('error', (e) => errors.push(e));
    await volume.write({ 'policy.yaml': `allow: [${FRONTEND_ID}]\nunknown: true\n` });
    await waitFor(() => errors.length === 1, 3_000, 'the refused change');
    assert.equal((await get(port, '/', { ...pki.batch })).body, BATCH_ID, 'the last good policy still allows batch');
  });
});
