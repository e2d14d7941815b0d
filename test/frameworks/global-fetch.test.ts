// Node's built-in fetch (its own bundled undici) with `setGlobalDispatcher(createAgent(...))` from
// the npm undici package: mTLS, the server identity check, rotation. Runs on whatever Node runs
// the tests (20 here; 22 and 24 where CI provides them).
import assert from 'node:assert/strict';
import https from 'node:https';
import { getGlobalDispatcher, setGlobalDispatcher, type Dispatcher } from 'undici';
import { codes, isMeshlessError, silentLogger } from '@meshless/core';
import { createAgent, createServer, peerOf, type MeshlessServer } from '@meshless/http';
import { createTestCA, manualSource, type ManualSource, type TestCA } from '@meshless/testing';
import { CLIENT_ID, SERVER_ID, TD, credentialFor, rejectionOf } from '@meshless/fixtures/http-client';
import { closeServer, listen } from '@meshless/fixtures/http-server';

describe(`Node ${process.versions.node} built-in fetch (bundled undici ${process.versions.undici}) through setGlobalDispatcher(createAgent(...))`, function () {
  this.timeout(30_000);
  let ca: TestCA;
  let server: MeshlessServer;
  let origin: string;
  let clientSource: ManualSource;
  let previous: Dispatcher;

  before(async () => {
    ca = await createTestCA({ trustDomain: TD });
    server = createServer({ source: await credentialFor(ca, SERVER_ID, { dnsNames: ['localhost'] }), allow: CLIENT_ID, logger: silentLogger }, (req, res) => {
      const peer = peerOf(req)!;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ peer: peer.spiffeId, serial: peer.serialNumber }));
    });
    origin = `https://localhost:${await listen(server)}`;
    clientSource = manualSource(await credentialFor(ca, CLIENT_ID));
    previous = getGlobalDispatcher();
  });
  afterEach(() => setGlobalDispatcher(previous));
  after(() => closeServer(server));

  it('globalThis.fetch presents our certificate and checks the server identity', async () => {
    const agent = createAgent({ source: clientSource, allow: SERVER_ID, logger: silentLogger });
    setGlobalDispatcher(agent);
    try {
      const response = await globalThis.fetch(`${origin}/who`);
      assert.equal(response.status, 200);
      assert.deepEqual(await response.json(), { peer: CLIENT_ID, serial: clientSource.current().identity.serialNumber });
      assert.equal(agent.peerOf(origin)?.spiffeId, SERVER_ID, 'the agent verified who answered');
    } finally {
      await agent.close();
    }
  });

  it('after a rotation of our credential, the next fetch presents the new certificate', async () => {
    const agent = createAgent({ source: clientSource, allow: SERVER_ID, logger: silentLogger });
    setGlobalDispatcher(agent);
    try {
      const before = (await (await globalThis.fetch(`${origin}/before`)).json()) as { serial: string };
      const next = await credentialFor(ca, CLIENT_ID, { generation: clientSource.current().generation + 1 });
      clientSource.set(next);
      const after = (await (await globalThis.fetch(`${origin}/after`)).json()) as { serial: string };
      assert.notEqual(after.serial, before.serial);
      assert.equal(after.serial, next.identity.serialNumber);
    } finally {
      await agent.close();
    }
  });

  it('a server the rules do not allow fails the fetch with TypeError, the coded error as its cause', async () => {
    const agent = createAgent({ source: clientSource, allow: `spiffe://${TD}/ns/other/sa/api`, logger: silentLogger });
    setGlobalDispatcher(agent);
    try {
      const err = await rejectionOf(globalThis.fetch(`${origin}/denied`));
      assert.ok(err instanceof TypeError, String(err));
      assert.ok(isMeshlessError(err.cause, codes.PEER_DENIED), String(err.cause));
    } finally {
      await agent.close();
    }
  });

  it("does not reach node:https (https.request has its own agent): that client presents no certificate and is refused", async () => {
    const agent = createAgent({ source: clientSource, allow: SERVER_ID, logger: silentLogger });
    setGlobalDispatcher(agent);
    try {
      const outcome = await new Promise<string>((resolve) => {
        https.get(`${origin}/node-https`, { ca: clientSource.current().trustPem }, (res) => resolve(`status ${res.statusCode}`)).on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      });
      assert.ok(!outcome.startsWith('status'), outcome);
    } finally {
      await agent.close();
    }
  });
});
