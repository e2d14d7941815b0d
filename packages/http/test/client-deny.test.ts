import assert from 'node:assert/strict';
import { codes, isMeshlessError, silentLogger } from '@meshless/core';
import { recordingLogger } from '@meshless/testing';
import { request } from 'undici';
import { createAgent, type MeshlessAgent, type CreateAgentOptions, type ServerRefused } from '../src/index.js';
import { OTHER_SERVER_ID, SERVER_ID, TD, createClientPki, credentialFor, rejectionOf, startServer, type ClientPki, type TestServer } from '@meshless/fixtures/http-client';

// createAgent's `deny`: the same rules as createServer's, for every origin whatever shape `allow`
// has (rules, a map per origin, a resolver function). A denied server is refused on the
// connection, before any request byte is written.
describe('createAgent: deny', function () {
  let pki: ClientPki;
  let pay: TestServer; // presents SERVER_ID
  let ledger: TestServer; // presents OTHER_SERVER_ID: denied below
  const agents: MeshlessAgent[] = [];
  const agentWith = (options: Partial<CreateAgentOptions>): MeshlessAgent => {
    const agent = createAgent({ source: pki.client, allow: `spiffe://${TD}/**`, logger: silentLogger, ...options });
    agents.push(agent);
    return agent;
  };
  const ok = async (agent: MeshlessAgent, server: TestServer): Promise<void> => {
    const res = await request(`${server.origin}/`, { dispatcher: agent });
    await res.body.dump();
    assert.equal(res.statusCode, 200);
  };
  const denied = async (agent: MeshlessAgent, server: TestServer): Promise<Error & { code?: string }> => {
    const before = server.requests.length;
    const err = await rejectionOf(request(`${server.origin}/charge`, { dispatcher: agent, method: 'POST', body: 'secret body' }));
    assert.ok(isMeshlessError(err, codes.PEER_DENIED), `expected PEER_DENIED, got ${String(err)}`);
    assert.ok(err.message.includes(OTHER_SERVER_ID), err.message);
    assert.equal(server.requests.length, before, 'the denied server must not have received the request');
    return err;
  };

  before(async function () {
    pki = await createClientPki();
    pay = await startServer(pki.server);
    ledger = await startServer(await credentialFor(pki.ca, OTHER_SERVER_ID, { dnsNames: ['localhost'] }));
  });
  after(async function () {
    await Promise.all(agents.map((a) => a.close()));
    await pay.close();
    await ledger.close();
  });

  it('refuses a server whose identity is denied although allow matches it, before a request is sent; others are served', async function () {
    const logger = recordingLogger();
    const agent = agentWith({ deny: OTHER_SERVER_ID, logger });
    const refused: ServerRefused[] = [];
    agent.on('peerRefused', (e) => refused.push(e));
    const err = await denied(agent, ledger);
    assert.ok(err.message.includes(`denied by rule ${JSON.stringify(OTHER_SERVER_ID)}`), err.message);
    assert.equal(refused.length, 1);
    assert.equal(refused[0]!.failure, 'denied');
    assert.equal(refused[0]!.peer?.spiffeId, OTHER_SERVER_ID);
    assert.equal(logger.at('warn')[0]?.obj.code, codes.PEER_DENIED);
    await ok(agent, pay);
  });

  it('applies to every origin of a per-origin map and of a resolver function', async function () {
    const rules = `spiffe://${TD}/ns/*/sa/api`;
    const byMap = agentWith({ allow: { [pay.origin]: rules, [ledger.origin]: rules }, deny: [`spiffe://${TD}/ns/ledger/**`] });
    await denied(byMap, ledger);
    await ok(byMap, pay);
    const asked: string[] = [];
    const byFunction = agentWith({ allow: (origin: string) => (asked.push(origin), rules), deny: (peer) => peer.spiffeId === OTHER_SERVER_ID });
    await denied(byFunction, ledger);
    await ok(byFunction, pay);
    assert.deepEqual(asked.sort(), [ledger.origin, pay.origin].sort());
  });

  it('in a dry run, a denied server is served and the would-be denial logged', async function () {
    const logger = recordingLogger();
    const agent = agentWith({ deny: OTHER_SERVER_ID, dryRun: true, logger });
    await ok(agent, ledger);
    const line = logger.entries.find((e) => /would deny/.test(e.msg));
    assert.ok(line, JSON.stringify(logger.entries));
    assert.equal(line.obj.rule, OTHER_SERVER_ID);
  });

  it('setAllow replaces allow and deny together, as server.setAllow does', async function () {
    const agent = agentWith({ allow: SERVER_ID });
    await ok(agent, pay);
    agent.setAllow(`spiffe://${TD}/**`, { deny: SERVER_ID });
    const err = await rejectionOf(request(`${pay.origin}/`, { dispatcher: agent }));
    assert.ok(isMeshlessError(err, codes.PEER_DENIED), String(err));
    await ok(agent, ledger);
    agent.setAllow(`spiffe://${TD}/**`);
    await ok(agent, pay);
  });

  it('a deny rule that does not compile is refused at construction and by setAllow, naming createAgent and deny', function () {
    assert.throws(() => agentWith({ deny: 'spiffe://Bad/x' }), (e: unknown) => isMeshlessError(e, codes.INVALID_RULE) && e.field === 'deny' && e.message.startsWith('createAgent: deny'));
    const agent = agentWith({});
    assert.throws(() => agent.setAllow(SERVER_ID, { deny: 'nonsense' }), (e: unknown) => isMeshlessError(e, codes.INVALID_RULE) && e.field === 'deny' && e.rule === 'nonsense');
  });
});
