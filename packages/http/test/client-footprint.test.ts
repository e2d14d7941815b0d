// What the client costs when nobody uses it, and what it adds per request when somebody does:
// importing @meshless/http does not load undici (a server-only service never pays for it); the
// first createAgent does, and the agent is then a real undici Dispatcher; a request's handler is
// wrapped (for peerOfResponse) only when the agent was created with `peerContext: true`.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Dispatcher, request } from 'undici';
import { createAgent, peerOfResponse, type MeshlessAgent } from '../src/index.js';
import { SERVER_ID, clientTestEnv } from '@meshless/fixtures/http-client';

const here = dirname(fileURLToPath(import.meta.url));

/** Runs `code` (ESM) in a fresh Node with the workspace sources, and returns its stdout. */
async function inFreshNode(code: string): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--conditions=source', '--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: here,
    timeout: 60_000,
  });
  return stdout.trim();
}

const undiciLoaded = `Object.keys((await import('node:module')).createRequire(import.meta.url).cache).some((k) => /[\\\\/]undici[\\\\/]/.test(k))`;

describe('createAgent: footprint and per-request work', function () {
  const env = clientTestEnv<MeshlessAgent>();

  it('importing @meshless/http (createServer, createAgent, peerOf) does not load undici; creating an agent does', async function () {
    const out = await inFreshNode(
      `const { createServer, createAgent, peerOf } = await import('@meshless/http');
       const before = ${undiciLoaded};
       const { createTestCA } = await import('@meshless/testing');
       const { loadCredential } = await import('@meshless/core');
       const ca = await createTestCA({ trustDomain: 'prod.example' });
       const source = loadCredential(await ca.issue('spiffe://prod.example/c'));
       const server = createServer({ source, allow: '*' }, () => {});
       const serverOnly = ${undiciLoaded};
       const agent = createAgent({ source, allow: '*' });
       const after = ${undiciLoaded};
       const { Dispatcher } = await import('undici');
       console.log(JSON.stringify({ before, serverOnly, after, isDispatcher: agent instanceof Dispatcher, peerOf: typeof peerOf }));
       await agent.close();`,
    );
    assert.deepEqual(JSON.parse(out.split('\n').pop()!), { before: false, serverOnly: false, after: true, isDispatcher: true, peerOf: 'function' });
  });

  it('the agent is an undici Dispatcher with its request helpers', async function () {
    env.agent = createAgent({ source: env.pki.client, allow: SERVER_ID });
    assert.ok(env.agent instanceof Dispatcher);
    const res = await env.agent.request({ origin: env.server.origin, path: '/hello', method: 'GET' });
    assert.equal(res.statusCode, 200);
    await res.body.text();
  });

  it('without peerContext a response carries no Peer (nothing is added per request); agent.peerOf(origin) still answers', async function () {
    env.agent = createAgent({ source: env.pki.client, allow: SERVER_ID });
    const res = await request(`${env.server.origin}/hello`, { dispatcher: env.agent });
    await res.body.text();
    assert.equal(peerOfResponse(res), undefined);
    assert.equal(env.agent.peerOf(env.server.origin)?.spiffeId, SERVER_ID);
  });

  it('with peerContext: true, peerOfResponse names the server of each response', async function () {
    env.agent = createAgent({ source: env.pki.client, allow: SERVER_ID, peerContext: true });
    const res = await request(`${env.server.origin}/hello`, { dispatcher: env.agent });
    await res.body.text();
    assert.equal(peerOfResponse(res)?.spiffeId, SERVER_ID);
  });

  it('refuses a peerContext that is not a boolean', function () {
    assert.throws(() => createAgent({ source: env.pki.client, allow: SERVER_ID, peerContext: 'yes' as unknown as boolean }), { code: 'MESHLESS_ERR_INVALID_OPTION' });
  });
});
