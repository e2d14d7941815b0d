import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import tls from 'node:tls';
import type { Credential } from '@meshless/core';
import { createTestCA, manualSource, type ManualSource, recordingLogger, type TestCA, waitFor } from '@meshless/testing';
import { createServer, type MeshlessServer, type PeerRefusal, type PeerRetirement } from '@meshless/http';
import {
  BATCH_ID,
  FRONTEND_ID,
  TD,
  closeServer,
  createPki,
  get,
  keepAliveAgent,
  listen,
  nextEvent,
  rawRequest,
  serverCredential,
  type ClientCert,
  type Pki,
} from '@meshless/fixtures/http-server';

/** Connects with `session` (if any); resolves with a session to resume next time. */
async function connectForSession(port: number, client: ClientCert, session?: Buffer): Promise<{ socket: tls.TLSSocket; session: Buffer; reused: boolean }> {
  const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ...client, checkServerIdentity: () => undefined, ...(session ? { session } : {}) });
  socket.on('error', () => {});
  socket.resume();
  let ticket: Buffer | undefined;
  socket.on('session', (s: Buffer) => (ticket ??= s));
  await nextEvent(socket, 'secureConnect', 3000);
  const reused = socket.isSessionReused();
  // A resumed TLS 1.3 session gets no new ticket from Node's server: keep using the one we have.
  if (reused && session) return { socket, session, reused };
  await waitFor(() => ticket !== undefined, 3000, 'a session ticket');
  return { socket, session: ticket!, reused };
}

describe('createServer: rotation', function () {
  let pki: Pki;
  let newCa: TestCA;
  let newFrontend: ClientCert;
  before(async () => {
    pki = await createPki();
    newCa = await createTestCA({ trustDomain: TD });
    newFrontend = await newCa.issue(FRONTEND_ID);
  });

  let source: ManualSource;
  let server: MeshlessServer;
  let port: number;
  let handled: number;
  let retirements: PeerRetirement[];
  let refusals: PeerRefusal[];
  let hold: Promise<void> | undefined;
  let entered: number;
  beforeEach(async () => {
    handled = 0;
    entered = 0;
    retirements = [];
    refusals = [];
    hold = undefined;
    source = manualSource(pki.server);
    server = createServer({ source, allow: [FRONTEND_ID, BATCH_ID], logger: recordingLogger() }, async (req: IncomingMessage, res: ServerResponse) => {
      entered++;
      if (req.url === '/slow' && hold) await hold;
      handled++;
      res.end('ok');
    });
    server.on('peerRetired', (r) => retirements.push(r));
    server.on('peerRefused', (r) => refusals.push(r));
    port = await listen(server);
  });
  afterEach(() => closeServer(server));

  /** A new server credential; with `bundle`, a new trust bundle too. */
  async function rotate(ca = pki.ca, bundle = ca.bundle): Promise<Credential> {
    const next = await serverCredential(ca, bundle, source.current().generation + 1);
    source.set(next);
    return next;
  }

  it('serves the new certificate to the next connection, and keeps live connections on a leaf rotation', async () => {
    const agent = keepAliveAgent(pki.frontend);
    try {
      const first = await get(port, '/', pki.frontend, agent);
      const firstSerial = first.socket.getPeerX509Certificate()?.serialNumber;
      assert.equal(firstSerial, pki.server.identity.serialNumber);
      for (let i = 0; i < 3; i++) {
        const next = await rotate();
        const seen = await new Promise<string | undefined>((resolve, reject) => {
          const s = tls.connect({ host: '127.0.0.1', port, ...pki.frontend, servername: 'localhost', checkServerIdentity: () => undefined }, () => {
            resolve(s.getPeerX509Certificate()?.serialNumber);
            s.destroy();
          });
          s.on('error', reject);
        });
        assert.equal(seen, next.identity.serialNumber, `rotation ${i + 1}: new connections present the new serial`);
      }
      const again = await get(port, '/', pki.frontend, agent);
      assert.equal(again.status, 200);
      assert.equal(again.socket, first.socket, 'the keep-alive connection survived the leaf rotations');
      assert.equal(retirements.length, 0);
    } finally {
      agent.destroy();
    }
  });

  it('re-applies the complete TLS policy: a TLS 1.2 client is still refused after 10 rotations', async () => {
    for (let i = 0; i < 10; i++) await rotate();
    const result = await rawRequest(port, { ...pki.frontend, maxVersion: 'TLSv1.2' });
    assert.equal(result.data, '');
    await waitFor(() => refusals.length === 1, 2000, 'the refusal');
    assert.equal(refusals[0]!.failure, 'handshake');
    assert.equal(handled, 0);
    assert.match((await rawRequest(port, { ...pki.frontend })).data, /^HTTP\/1.1 200/);
  });

  it('keeps pass-through TLS options (maxVersion) across rotations', async () => {
    const tls12 = createServer({ source, allow: FRONTEND_ID, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', logger: recordingLogger() }, (_req, res) => res.end('ok'));
    const tls12Port = await listen(tls12);
    try {
      for (let i = 0; i < 3; i++) await rotate();
      const socket = tls.connect({ host: '127.0.0.1', port: tls12Port, ...pki.frontend, checkServerIdentity: () => undefined });
      await nextEvent(socket, 'secureConnect', 3000);
      assert.equal(socket.getProtocol(), 'TLSv1.2');
      socket.destroy();
    } finally {
      await closeServer(tls12);
    }
  });

  it('retires a live connection whose client no longer verifies after a trust change, and refuses it afterwards', async () => {
    const agent = keepAliveAgent(pki.frontend);
    try {
      const first = await get(port, '/', pki.frontend, agent);
      assert.equal(first.status, 200);
      const closed = nextEvent(first.socket, 'close', 3000);
      await rotate(newCa);
      await closed;
      assert.equal(retirements.length, 1);
      assert.equal(retirements[0]!.reason, 'trust-changed');
      assert.equal(retirements[0]!.peer.spiffeId, FRONTEND_ID);
      assert.match(retirements[0]!.detail, /no longer verifies/);
      await assert.rejects(get(port, '/', { ...pki.frontend, ca: newCa.bundle }));
      await waitFor(() => refusals.length === 1, 2000, 'the refusal of the old client');
      assert.equal(refusals[0]!.failure, 'unverified');
      assert.equal((await get(port, '/', { ...newFrontend, ca: newCa.bundle })).status, 200);
      assert.equal(handled, 2);
    } finally {
      agent.destroy();
    }
  });

  it('keeps connections that still verify while both roots are trusted, then retires them when the old root goes', async () => {
    const agent = keepAliveAgent(pki.frontend);
    try {
      const first = await get(port, '/', pki.frontend, agent);
      await rotate(newCa, pki.ca.bundle + newCa.bundle);
      const second = await get(port, '/', { ...pki.frontend, ca: pki.ca.bundle + newCa.bundle }, agent);
      assert.equal(second.socket, first.socket, 'still trusted: not retired');
      assert.equal(retirements.length, 0);
      const closed = nextEvent(first.socket, 'close', 3000);
      await rotate(newCa);
      await closed;
      assert.equal(retirements.length, 1);
      assert.equal(retirements[0]!.reason, 'trust-changed');
    } finally {
      agent.destroy();
    }
  });

  it('re-verifies a client issued by an intermediate CA with the intermediates it sent, and resumes its session', async () => {
    const withIntermediate = await createTestCA({ trustDomain: TD, intermediate: true });
    const client = { ...(await withIntermediate.issue(FRONTEND_ID)), ca: pki.ca.bundle };
    await rotate(pki.ca, pki.ca.bundle + withIntermediate.bundle);
    const agent = keepAliveAgent(client);
    try {
      const first = await get(port, '/', client, agent);
      assert.equal(first.status, 200);
      const a = await connectForSession(port, client);
      a.socket.destroy();
      const b = await connectForSession(port, client, a.session);
      assert.equal(b.reused, true);
      b.socket.destroy();
      // A new bundle that still holds the intermediate's root: the connection stays.
      await rotate(newCa, newCa.bundle + withIntermediate.bundle + pki.ca.bundle);
      const second = await get(port, '/', client, agent);
      assert.equal(second.socket, first.socket, 'still verifies through the intermediate it sent');
      assert.equal(retirements.length, 0);
      // Without that root, it is retired.
      const closed = nextEvent(first.socket, 'close', 3000);
      await rotate(newCa, newCa.bundle + pki.ca.bundle);
      await closed;
      assert.ok(retirements.some((r) => r.reason === 'trust-changed' && r.peer.spiffeId === FRONTEND_ID));
    } finally {
      agent.destroy();
    }
  });

  it('lets an in-flight request finish with Connection: close when its connection is retired', async () => {
    let release!: () => void;
    hold = new Promise<void>((resolve) => (release = resolve));
    const agent = keepAliveAgent(pki.frontend);
    try {
      const pending = get(port, '/slow', pki.frontend, agent);
      await waitFor(() => entered === 1, 3000, 'the handler to start');
      await rotate(newCa);
      await waitFor(() => retirements.length === 1, 2000, 'the retirement');
      assert.equal(retirements[0]!.inFlight, 1);
      release();
      const reply = await pending;
      assert.equal(reply.status, 200);
      assert.equal(reply.body, 'ok');
      assert.equal(reply.headers.connection, 'close');
      await waitFor(() => reply.socket.destroyed, 3000, 'the retired socket to close');
    } finally {
      release?.();
      agent.destroy();
    }
  });

  it('renews session ticket keys on a leaf rotation: a client with the old session gets a full handshake and the new certificate (issue 12.8)', async () => {
    const sockets: tls.TLSSocket[] = [];
    const connect = async (session?: Buffer) => {
      const c = await connectForSession(port, pki.frontend, session);
      sockets.push(c.socket);
      return c;
    };
    try {
      const a = await connect();
      assert.equal(a.socket.getPeerCertificate().serialNumber, pki.server.identity.serialNumber);
      a.socket.destroy();
      const b = await connect(a.session);
      assert.equal(b.reused, true, 'resumes while our identity is unchanged');
      b.socket.destroy();
      const next = await rotate();
      const c = await connect(b.session);
      assert.equal(c.reused, false, 'a session of the previous leaf does not resume');
      assert.equal(c.socket.getPeerCertificate().serialNumber, next.identity.serialNumber, 'the client sees the new certificate');
      c.socket.destroy();
      // Generations with the same leaf (a re-read of the same files) keep the keys.
      source.set(next);
      const d = await connect(c.session);
      assert.equal(d.reused, true, 'the same leaf keeps the ticket keys');
    } finally {
      for (const s of sockets) s.destroy();
    }
  });

  it('renews session ticket keys on a trust change: tickets sealed under the old trust do not resume', async () => {
    const a = await connectForSession(port, pki.frontend);
    a.socket.destroy();
    // Trust both roots: the old client still verifies, but its ticket was sealed under the old trust.
    const current = source.current();
    const { loadCredential } = await import('@meshless/core');
    const { privateKeyPem } = await import('@meshless/core');
    source.set(loadCredential({ cert: current.certPem, key: privateKeyPem(current), ca: pki.ca.bundle + newCa.bundle }, { generation: current.generation + 1 }));
    const client = { ...pki.frontend, ca: pki.ca.bundle + newCa.bundle };
    const b = await connectForSession(port, client, a.session);
    assert.equal(b.reused, false, 'tickets from before the trust change no longer resume');
    b.socket.destroy();
  });

  it('setAllow retires live connections of peers it now refuses, and refuses their resumed sessions', async () => {
    const frontendAgent = keepAliveAgent(pki.frontend);
    const batchAgent = keepAliveAgent(pki.batch);
    try {
      const frontend = await get(port, '/', pki.frontend, frontendAgent);
      const batch = await get(port, '/', pki.batch, batchAgent);
      const ticket = await connectForSession(port, pki.batch);
      ticket.socket.destroy();
      const closed = nextEvent(batch.socket, 'close', 3000);
      server.setAllow(FRONTEND_ID);
      await closed;
      // The batch connections (the keep-alive one, and the ticket one if the server has not seen it close yet).
      assert.ok(retirements.length >= 1);
      for (const r of retirements) assert.deepEqual([r.reason, r.peer.spiffeId], ['policy-changed', BATCH_ID]);
      const batchRetirements = retirements.length;
      assert.equal((await get(port, '/', pki.frontend, frontendAgent)).socket, frontend.socket, 'the allowed peer keeps its connection');
      const resumed = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ...pki.batch, session: ticket.session, checkServerIdentity: () => undefined });
      resumed.on('error', () => {});
      await nextEvent(resumed, 'close', 3000);
      await waitFor(() => refusals.length === 1, 2000, 'the refusal of the resumed session');
      assert.equal(refusals[0]!.failure, 'denied');
      assert.equal(refusals[0]!.resumed, true);
      server.setAllow([FRONTEND_ID, BATCH_ID], { deny: FRONTEND_ID });
      await waitFor(() => retirements.length === batchRetirements + 1, 3000, 'the deny rule to retire the frontend connection');
      assert.equal(retirements[batchRetirements]!.peer.spiffeId, FRONTEND_ID);
    } finally {
      frontendAgent.destroy();
      batchAgent.destroy();
    }
  });

  it('setAllow without deny keeps the deny rules in force; deny: [] drops them', async () => {
    const denied = createServer({ source: pki.server, allow: [FRONTEND_ID, BATCH_ID], deny: FRONTEND_ID, logger: recordingLogger() }, (_req, res) => res.end('ok'));
    const deniedPort = await listen(denied);
    try {
      await assert.rejects(get(deniedPort, '/', pki.frontend), 'denied at construction');
      assert.equal((await get(deniedPort, '/', pki.batch)).status, 200);
      denied.setAllow([FRONTEND_ID, BATCH_ID]);
      await assert.rejects(get(deniedPort, '/', pki.frontend), 'replacing the allow-list must not lift the deny rule');
      denied.setAllow([FRONTEND_ID, BATCH_ID], { deny: [] });
      assert.equal((await get(deniedPort, '/', pki.frontend)).status, 200);
    } finally {
      await closeServer(denied);
    }
  });

  it('keeps serving when the source reports a failed reload', async () => {
    const { MeshlessError, codes } = await import('@meshless/core');
    source.emit('error', new MeshlessError(codes.KEY_MISMATCH, 'test: a torn write'));
    assert.equal((await get(port, '/', pki.frontend)).status, 200);
  });

  it('stops following the source once closed', async () => {
    assert.equal(source.listenerCount('update'), 1);
    await closeServer(server);
    assert.equal(source.listenerCount('update'), 0);
    assert.equal(source.listenerCount('error'), 0);
  });
});

describe('createServer: connection lifetime', function () {
  let pki: Pki;
  before(async () => {
    pki = await createPki();
  });

  it('retires connections after maxConnectionAgeMs (jittered), gracefully', async () => {
    const retirements: PeerRetirement[] = [];
    const server = createServer({ source: pki.server, allow: FRONTEND_ID, maxConnectionAgeMs: 300, logger: recordingLogger() }, (_req, res) => res.end('ok'));
    server.on('peerRetired', (r) => retirements.push(r));
    const port = await listen(server);
    const agent = keepAliveAgent(pki.frontend);
    try {
      const started = Date.now();
      const first = await get(port, '/', pki.frontend, agent);
      await nextEvent(first.socket, 'close', 3000);
      const age = Date.now() - started;
      assert.ok(age >= 260, `retired after ${age} ms, not before 90 % of the age`);
      assert.equal(retirements[0]?.reason, 'max-age');
      const second = await get(port, '/', pki.frontend, agent);
      assert.equal(second.status, 200);
      assert.notEqual(second.socket, first.socket);
    } finally {
      agent.destroy();
      await closeServer(server);
    }
  });

  it("retires a connection when the client certificate reaches notAfter", async () => {
    const shortLived = await pki.ca.issue({ spiffeId: FRONTEND_ID, notAfter: new Date(Date.now() + 4000) }); // whole seconds: 3–4 s of life
    const retirements: PeerRetirement[] = [];
    const server = createServer({ source: pki.server, allow: FRONTEND_ID, logger: recordingLogger() }, (_req, res) => res.end('ok'));
    server.on('peerRetired', (r) => retirements.push(r));
    const port = await listen(server);
    const agent = keepAliveAgent(shortLived);
    try {
      const first = await get(port, '/', shortLived, agent);
      await nextEvent(first.socket, 'close', 8000);
      assert.equal(retirements[0]?.reason, 'certificate-expired');
      assert.ok(Date.now() >= retirements[0]!.peer.notAfter.getTime() - 50, 'not retired early');
    } finally {
      agent.destroy();
      await closeServer(server);
    }
  });
});
