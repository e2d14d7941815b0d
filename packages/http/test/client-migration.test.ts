import assert from 'node:assert/strict';
import diagnostics_channel from 'node:diagnostics_channel';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { channels, codes, isMeshlessError, policyFile } from '@meshless/core';
import { createTestCA, kubernetesVolume, recordingLogger, waitFor } from '@meshless/testing';
import { request } from 'undici';
import { createAgent } from '../src/index.js';
import { OTHER_SERVER_ID, SERVER_ID, clientTestEnv, credentialFor, rejectionOf, startServer } from '@meshless/fixtures/http-client';

describe('createAgent during a migration', function () {
  const env = clientTestEnv();
  let plain: http.Server;
  let plainOrigin: string;

  before(async function () {
    plain = http.createServer((req, res) => res.end(`plain ${req.url}`));
    plain.listen(0, '127.0.0.1');
    await once(plain, 'listening');
    plainOrigin = `http://127.0.0.1:${(plain.address() as AddressInfo).port}`;
  });
  after(async function () {
    plain.closeAllConnections();
    await new Promise((r) => plain.close(r));
  });

  it('calls the http:// origins listed in plaintextOrigins through the same dispatcher, counted; refuses the others', async function () {
    const logger = recordingLogger();
    const agent = createAgent({ source: env.pki.client, allow: SERVER_ID, plaintextOrigins: [plainOrigin], logger });
    const published: unknown[] = [];
    const onPlain = (m: unknown) => published.push(m);
    diagnostics_channel.subscribe(channels.plaintextRequest.name, onPlain);
    try {
      for (let i = 0; i < 3; i++) {
        const res = await request(`${plainOrigin}/legacy${i}`, { dispatcher: agent });
        assert.equal(await res.body.text(), `plain /legacy${i}`);
      }
      const tls = await request(`${env.server.origin}/`, { dispatcher: agent });
      assert.equal(tls.statusCode, 200);
      await tls.body.dump();
      assert.equal(published.length, 3);
      assert.deepEqual(published[0], { side: 'client', origin: plainOrigin, method: 'GET' });
      assert.equal(logger.entries.filter((l) => l.obj.plaintext === true).length, 1, 'logged once per origin per minute');
      // Another plaintext origin (the same host, another port) is refused, naming the option.
      const err = await rejectionOf(request(`http://127.0.0.1:${env.server.port}/`, { dispatcher: agent }));
      assert.ok(isMeshlessError(err, codes.PLAINTEXT_REFUSED), String(err));
      assert.match(err.message, /plaintextOrigins/);
    } finally {
      diagnostics_channel.unsubscribe(channels.plaintextRequest.name, onPlain);
      await agent.close();
    }
  });

  it('refuses a malformed plaintextOrigins entry', () => {
    assert.throws(() => createAgent({ source: env.pki.client, allow: SERVER_ID, plaintextOrigins: ['https://x:1'] }), (e: unknown) => isMeshlessError(e, codes.INVALID_OPTION));
    assert.throws(() => createAgent({ source: env.pki.client, allow: SERVER_ID, plaintextOrigins: ['http://x:1/path'] }), (e: unknown) => isMeshlessError(e, codes.INVALID_OPTION));
  });

  it('dryRun: accepts a server the rules would refuse and logs "would deny"; a server from another CA is still refused', async function () {
    const logger = recordingLogger();
    const agent = createAgent({ source: env.pki.client, allow: OTHER_SERVER_ID, dryRun: true, logger });
    const other = await createTestCA({ trustDomain: 'prod.example' });
    const stranger = await startServer(await credentialFor(other, OTHER_SERVER_ID, { dnsNames: ['localhost'], bundle: other.bundle + env.pki.ca.bundle }));
    try {
      const res = await request(`${env.server.origin}/`, { dispatcher: agent });
      assert.equal(res.statusCode, 200);
      await res.body.dump();
      const line = logger.entries.find((l) => /would deny/.test(l.msg ?? ''));
      assert.ok(line, 'a "would deny" line');
      assert.equal(line.obj.peer, SERVER_ID);
      assert.equal(line.obj.scope, 'client');
      const err = await rejectionOf(request(`${stranger.origin}/`, { dispatcher: agent }));
      assert.ok(isMeshlessError(err, codes.PEER_UNVERIFIED) || /certificate|verify/i.test(String(err)), String(err));
    } finally {
      await agent.close();
      await stranger.close();
    }
  });

  it('allow: policyFile(…) — a swap takes effect for new requests (new generation), like setAllow', async function () {
    const dir = await mkdtemp(path.join(tmpdir(), 'meshless-agent-policy-'));
    const volume = kubernetesVolume(dir);
    await volume.write({ 'policy.yaml': `allow: [${SERVER_ID}]\n` });
    const policy = await policyFile(path.join(dir, 'policy.yaml'), { logger: recordingLogger() });
    const agent = createAgent({ source: env.pki.client, allow: policy, logger: recordingLogger() });
    try {
      const ok = await request(`${env.server.origin}/`, { dispatcher: agent });
      await ok.body.dump();
      const generation = agent.generation;
      await volume.write({ 'policy.yaml': `allow: [${OTHER_SERVER_ID}]\n` });
      await waitFor(() => agent.generation > generation, 3_000, 'a new agent generation');
      const err = await rejectionOf(request(`${env.server.origin}/`, { dispatcher: agent }));
      assert.ok(isMeshlessError(err, codes.PEER_DENIED), String(err));
    } finally {
      await agent.close();
      await policy.close();
      await volume.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('deny: policyFile(…) — a swap takes effect for new requests too (the servers it now allows are denied)', async function () {
    const dir = await mkdtemp(path.join(tmpdir(), 'meshless-agent-deny-'));
    const volume = kubernetesVolume(dir);
    await volume.write({ 'deny.yaml': `allow: [${OTHER_SERVER_ID}]\n` });
    const deny = await policyFile(path.join(dir, 'deny.yaml'), { logger: recordingLogger() });
    const agent = createAgent({ source: env.pki.client, allow: SERVER_ID, deny, logger: recordingLogger() });
    try {
      const ok = await request(`${env.server.origin}/`, { dispatcher: agent });
      await ok.body.dump();
      const generation = agent.generation;
      await volume.write({ 'deny.yaml': `allow: [${SERVER_ID}]\n` });
      await waitFor(() => agent.generation > generation, 3_000, 'a new agent generation');
      const err = await rejectionOf(request(`${env.server.origin}/`, { dispatcher: agent }));
      assert.ok(isMeshlessError(err, codes.PEER_DENIED), String(err));
    } finally {
      await agent.close();
      await deny.close();
      await volume.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
