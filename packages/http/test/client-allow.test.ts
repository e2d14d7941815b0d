import assert from 'node:assert/strict';
import { allowList, codes, isMeshlessError, loadCredential, silentLogger, type Peer } from '@meshless/core';
import { createTestCA, recordingLogger } from '@meshless/testing';
import { fetch, request } from 'undici';
import { createAgent, type MeshlessAgent, type ServerRefused } from '../src/index.js';
import { OTHER_SERVER_ID, SERVER_ID, TD, createClientPki, credentialFor, rejectionOf, startServer, type ClientPki, type TestServer } from '@meshless/fixtures/http-client';

describe('createAgent: which servers are accepted (allow)', function () {
  let pki: ClientPki;
  let pay: TestServer; // presents SERVER_ID
  let ledger: TestServer; // presents OTHER_SERVER_ID
  const agents: MeshlessAgent[] = [];
  const agentWith = (allow: Parameters<typeof createAgent>[0]['allow'], extra: Partial<Parameters<typeof createAgent>[0]> = {}): MeshlessAgent => {
    const agent = createAgent({ source: pki.client, allow, logger: silentLogger, ...extra });
    agents.push(agent);
    return agent;
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

  it('a denied server: PEER_DENIED naming the identity and the origin, before any request byte is written', async function () {
    const log = recordingLogger();
    const agent = agentWith(SERVER_ID, { logger: log });
    const refused: ServerRefused[] = [];
    agent.on('peerRefused', (e) => refused.push(e));
    const before = ledger.requests.length;
    const err = await rejectionOf(request(`${ledger.origin}/charge`, { dispatcher: agent, method: 'POST', body: 'secret body' }));
    assert.ok(isMeshlessError(err, codes.PEER_DENIED), `expected PEER_DENIED, got ${String(err)}`);
    assert.ok(err.message.includes(OTHER_SERVER_ID), err.message);
    assert.ok(err.message.includes(ledger.origin), err.message);
    assert.equal((err as { peer?: string }).peer, OTHER_SERVER_ID);
    assert.equal(ledger.requests.length, before, 'the server must not have received the request');
    assert.equal(refused.length, 1);
    assert.equal(refused[0]!.failure, 'denied');
    assert.equal(refused[0]!.peer?.spiffeId, OTHER_SERVER_ID);
    const logged = log.entries.find((e) => e.level === 'warn');
    assert.equal(logged?.obj.peer, OTHER_SERVER_ID);
    assert.equal(logged?.obj.code, codes.PEER_DENIED);
    assert.equal(logged?.obj.origin, ledger.origin);
  });

  it('fetch() surfaces the same coded error as the cause of its TypeError', async function () {
    const agent = agentWith(SERVER_ID);
    const err = await rejectionOf(fetch(`${ledger.origin}/`, { dispatcher: agent }));
    assert.ok(err instanceof TypeError);
    assert.ok(isMeshlessError(err.cause, codes.PEER_DENIED), String(err.cause));
  });

  it('DNS rules give the classic host-name check for servers without a SPIFFE ID; trust-domain wildcards match any workload there', async function () {
    const issued = await pki.ca.issue({ dnsNames: ['localhost'] });
    const plain = await startServer(loadCredential(issued));
    try {
      const byDns = agentWith('dns:localhost');
      const res = await request(`${plain.origin}/`, { dispatcher: byDns });
      await res.body.dump();
      assert.equal(res.statusCode, 200);
      const wrongDns = agentWith('dns:payments.internal');
      assert.ok(isMeshlessError(await rejectionOf(request(`${plain.origin}/`, { dispatcher: wrongDns })), codes.PEER_DENIED));
      // A server that carries a SPIFFE ID is judged by it alone: its DNS SAN does not stand in.
      assert.ok(isMeshlessError(await rejectionOf(request(`${pay.origin}/`, { dispatcher: agentWith('dns:localhost') })), codes.PEER_DENIED));
    } finally {
      await plain.close();
    }
    const anyInTd = agentWith(`spiffe://${TD}/**`);
    for (const origin of [pay.origin, ledger.origin]) {
      const r = await request(`${origin}/`, { dispatcher: anyInTd });
      await r.body.dump();
      assert.equal(r.statusCode, 200);
    }
  });

  it('per-origin map: each origin gets its own rules, and an origin not listed is refused before connecting', async function () {
    const agent = agentWith({ [pay.origin]: SERVER_ID, [`${ledger.origin}/`]: [OTHER_SERVER_ID] });
    for (const origin of [pay.origin, ledger.origin]) {
      const r = await request(`${origin}/`, { dispatcher: agent });
      await r.body.dump();
      assert.equal(r.statusCode, 200);
    }
    const swapped = agentWith({ [pay.origin]: OTHER_SERVER_ID, [ledger.origin]: SERVER_ID });
    const denied = await rejectionOf(request(`${pay.origin}/`, { dispatcher: swapped }));
    assert.ok(isMeshlessError(denied, codes.PEER_DENIED));
    assert.ok(denied.message.includes(SERVER_ID) && denied.message.includes(pay.origin), denied.message);

    const onlyPay = agentWith({ [pay.origin]: SERVER_ID });
    const connectionsBefore = ledger.connections.length;
    const unlisted = await rejectionOf(request(`${ledger.origin}/`, { dispatcher: onlyPay }));
    assert.ok(isMeshlessError(unlisted, codes.INVALID_OPTION), String(unlisted));
    assert.match(unlisted.message, new RegExp(`no allow rules for ${ledger.origin.replace(/[.]/g, '\\.')}`));
    assert.equal(ledger.connections.length, connectionsBefore, 'no connection to an origin without rules');
  });

  it('a function (origin) => rules is called once per origin and cached', async function () {
    const calls: string[] = [];
    const agent = agentWith((origin: string) => {
      calls.push(origin);
      return origin === pay.origin ? SERVER_ID : OTHER_SERVER_ID;
    }, { connections: 1 });
    for (let i = 0; i < 2; i++) {
      for (const origin of [pay.origin, ledger.origin]) {
        const r = await request(`${origin}/`, { dispatcher: agent, reset: true });
        await r.body.dump();
      }
    }
    assert.deepEqual(calls, [pay.origin, ledger.origin]);
  });

  it('a bare (peer) => boolean in allow is explained, and works inside a list or allowList()', async function () {
    const custom = (peer: Peer): boolean => peer.spiffeId === SERVER_ID;
    const bare = agentWith(custom as unknown as (origin: string) => string);
    const err = await rejectionOf(request(`${pay.origin}/`, { dispatcher: bare }));
    assert.ok(isMeshlessError(err, codes.INVALID_OPTION), String(err));
    assert.match(err.message, /allow: \[fn\] or allowList\(fn\)/);
    for (const allow of [[custom], allowList(custom)]) {
      const agent = agentWith(allow);
      const r = await request(`${pay.origin}/`, { dispatcher: agent });
      await r.body.dump();
      assert.equal(r.statusCode, 200);
      assert.ok(isMeshlessError(await rejectionOf(request(`${ledger.origin}/`, { dispatcher: agent })), codes.PEER_DENIED));
    }
  });

  it('deny rules win over allow rules', async function () {
    const agent = agentWith(allowList(`spiffe://${TD}/**`, { deny: OTHER_SERVER_ID }));
    const ok = await request(`${pay.origin}/`, { dispatcher: agent });
    await ok.body.dump();
    const err = await rejectionOf(request(`${ledger.origin}/`, { dispatcher: agent }));
    assert.ok(isMeshlessError(err, codes.PEER_DENIED));
    assert.equal((err as { rule?: string }).rule, OTHER_SERVER_ID);
  });

  it('a server from another CA: PEER_UNVERIFIED naming what it presented', async function () {
    const otherCa = await createTestCA({ trustDomain: TD });
    const impostor = await startServer(await credentialFor(otherCa, SERVER_ID, { dnsNames: ['localhost'] }));
    try {
      const agent = agentWith(SERVER_ID);
      const refused: ServerRefused[] = [];
      agent.on('peerRefused', (e) => refused.push(e));
      const err = await rejectionOf(request(`${impostor.origin}/`, { dispatcher: agent, method: 'POST', body: 'secret' }));
      assert.ok(isMeshlessError(err, codes.PEER_UNVERIFIED), String(err));
      assert.ok(err.message.includes(impostor.origin) && err.message.includes(SERVER_ID), err.message);
      assert.ok(err.cause instanceof Error);
      assert.equal(impostor.requests.length, 0);
      assert.equal(refused[0]?.failure, 'unverified');
    } finally {
      await impostor.close();
    }
  });

  // createAgent's `deny` option: the same rules as createServer's, for every origin whatever shape
  // `allow` has (rules, a map per origin, a resolver function). A denied server is refused on the
  // connection, before any request byte is written.
  describe('the deny option', function () {
    const served = async (agent: MeshlessAgent, server: TestServer): Promise<void> => {
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
    const anyInTd = `spiffe://${TD}/**`;

    it('refuses a server whose identity is denied although allow matches it, before a request is sent; others are served', async function () {
      const log = recordingLogger();
      const agent = agentWith(anyInTd, { deny: OTHER_SERVER_ID, logger: log });
      const refused: ServerRefused[] = [];
      agent.on('peerRefused', (e) => refused.push(e));
      const err = await denied(agent, ledger);
      assert.ok(err.message.includes(`denied by rule ${JSON.stringify(OTHER_SERVER_ID)}`), err.message);
      assert.equal(refused.length, 1);
      assert.equal(refused[0]!.failure, 'denied');
      assert.equal(refused[0]!.peer?.spiffeId, OTHER_SERVER_ID);
      assert.equal(log.at('warn')[0]?.obj.code, codes.PEER_DENIED);
      await served(agent, pay);
    });

    it('applies to every origin of a per-origin map and of a resolver function', async function () {
      const rules = `spiffe://${TD}/ns/*/sa/api`;
      const byMap = agentWith({ [pay.origin]: rules, [ledger.origin]: rules }, { deny: [`spiffe://${TD}/ns/ledger/**`] });
      await denied(byMap, ledger);
      await served(byMap, pay);
      const asked: string[] = [];
      const byFunction = agentWith((origin: string) => (asked.push(origin), rules), { deny: (peer) => peer.spiffeId === OTHER_SERVER_ID });
      await denied(byFunction, ledger);
      await served(byFunction, pay);
      assert.deepEqual(asked.sort(), [ledger.origin, pay.origin].sort());
    });

    it('in a dry run, a denied server is served and the would-be denial logged', async function () {
      const log = recordingLogger();
      await served(agentWith(anyInTd, { deny: OTHER_SERVER_ID, dryRun: true, logger: log }), ledger);
      const line = log.entries.find((e) => /would deny/.test(e.msg));
      assert.ok(line, JSON.stringify(log.entries));
      assert.equal(line.obj.rule, OTHER_SERVER_ID);
    });

    it('setAllow replaces allow, and deny when given (without it the deny rules stay; deny: [] drops them), as server.setAllow does', async function () {
      const agent = agentWith(SERVER_ID);
      await served(agent, pay);
      agent.setAllow(anyInTd, { deny: SERVER_ID });
      assert.ok(isMeshlessError(await rejectionOf(request(`${pay.origin}/`, { dispatcher: agent })), codes.PEER_DENIED));
      await served(agent, ledger);
      // Replacing only the allow rules never lifts a deny.
      agent.setAllow(`spiffe://${TD}/ns/**`);
      assert.ok(isMeshlessError(await rejectionOf(request(`${pay.origin}/`, { dispatcher: agent })), codes.PEER_DENIED));
      agent.setAllow(anyInTd, { deny: [] });
      await served(agent, pay);
    });

    it('a deny rule that does not compile is refused at construction and by setAllow, naming createAgent and deny', function () {
      assert.throws(() => agentWith(anyInTd, { deny: 'spiffe://Bad/x' }), (e: unknown) => isMeshlessError(e, codes.INVALID_RULE) && e.field === 'deny' && e.message.startsWith('createAgent: deny'));
      const agent = agentWith(anyInTd);
      assert.throws(() => agent.setAllow(SERVER_ID, { deny: 'nonsense' }), (e: unknown) => isMeshlessError(e, codes.INVALID_RULE) && e.field === 'deny' && e.rule === 'nonsense');
    });
  });
});
