import assert from 'node:assert/strict';
import grpc from '@grpc/grpc-js';
import { loadCredential, type Credential } from '@meshless/core';
import { channelCredentials, serverCredentials } from '@meshless/grpc';
import { createAgent, createServer, peerOf, type PeerRefusal, type PeerRetirement } from '@meshless/http';
import { createTestCA, type TestCA, waitFor } from '@meshless/testing';
import { workloadApiSource, type WorkloadApiSource } from '@meshless/workload-api';
import { request } from 'undici';
import { echoClient, startServer, unary } from '@meshless/fixtures/grpc-harness';
import { nextEvent, silent } from '@meshless/fixtures/events';
import { pemToDer, startWorkloadApi, svidOf, type WorkloadApiServer } from '@meshless/fixtures/workload-api-server';

// Federation through the Workload API: the stream's federated_bundles decide which foreign trust
// domains we trust. A partner workload (trust domain partner.example, its own CA) is accepted
// while the agent sends partner.example's bundle, and refused — its live connections retired —
// once a message comes without it. Our own trust domain is never affected.

const OURS = 'prod.example';
const PARTNER = 'partner.example';
const SERVER_ID = `spiffe://${OURS}/ns/pay/sa/api`;
const OWN_CLIENT_ID = `spiffe://${OURS}/ns/web/sa/front`;
const PARTNER_CLIENT_ID = `spiffe://${PARTNER}/ns/shop/sa/checkout`;
const PARTNER_SERVER_ID = `spiffe://${PARTNER}/ns/shop/sa/catalog`;

describe('federated bundles from the Workload API: partner peers accepted, then refused and retired', function () {
  this.timeout(30_000);
  let ours: TestCA;
  let partner: TestCA;
  let api: WorkloadApiServer;
  let source: WorkloadApiSource;
  let serverSvid: Awaited<ReturnType<TestCA['issue']>>;
  const cleanups: Array<() => unknown> = [];

  /** A partner workload's credential: its own CA, and ours federated (it trusts us). */
  async function partnerCredential(id: string, dnsNames: string[] = []): Promise<Credential> {
    const issued = await partner.issue({ spiffeId: id, dnsNames });
    return loadCredential({ cert: issued.cert, key: issued.key, ca: partner.bundle, federation: { [OURS]: ours.bundle } });
  }

  before(async () => {
    ours = await createTestCA({ trustDomain: OURS });
    partner = await createTestCA({ trustDomain: PARTNER });
  });
  beforeEach(async () => {
    api = await startWorkloadApi();
    serverSvid = await ours.issue({ spiffeId: SERVER_ID, dnsNames: ['localhost'] });
    api.push({ svids: [svidOf(serverSvid)], federated_bundles: { [`spiffe://${PARTNER}`]: pemToDer(partner.bundle) } });
    source = await workloadApiSource({ address: api.address, logger: silent });
    assert.deepEqual([...source.current().bundles.keys()], [PARTNER, OURS]);
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
    await source.close();
    await api.close();
  });

  /** Pushes the same SVID without partner.example's bundle; resolves with the new generation. */
  async function dropPartner(): Promise<Credential> {
    const updated = nextEvent(source, 'update');
    api.push({ svids: [svidOf(serverSvid)] });
    const [c] = await updated;
    assert.deepEqual([...c.bundles.keys()], [OURS]);
    return c;
  }

  it('HTTP server: a partner client is served, then its keep-alive connection is retired and it is refused; our own client is not', async () => {
    let handled = 0;
    const server = createServer({ source, allow: [`spiffe://${PARTNER}/**`, OWN_CLIENT_ID], logger: silent }, (req, res) => {
      if (String(peerOf(req)) === PARTNER_CLIENT_ID) handled++;
      res.end(String(peerOf(req)));
    });
    const retired: PeerRetirement[] = [];
    server.on('peerRetired', (r) => retired.push(r));
    const refusals: PeerRefusal[] = [];
    server.on('peerRefused', (r) => refusals.push(r));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => {
      server.close();
      server.closeAllConnections();
    });
    const url = `https://localhost:${(server.address() as { port: number }).port}/`;
    const partnerAgent = createAgent({ source: await partnerCredential(PARTNER_CLIENT_ID), allow: SERVER_ID, logger: silent });
    const ownIssued = await ours.issue(OWN_CLIENT_ID);
    const ownAgent = createAgent({ source: loadCredential({ cert: ownIssued.cert, key: ownIssued.key, ca: ours.bundle }), allow: SERVER_ID, logger: silent });
    cleanups.push(() => partnerAgent.close(), () => ownAgent.close());

    assert.equal(await (await request(url, { dispatcher: partnerAgent })).body.text(), PARTNER_CLIENT_ID, 'partner accepted');
    assert.equal(await (await request(url, { dispatcher: ownAgent })).body.text(), OWN_CLIENT_ID);

    await dropPartner();
    await waitFor(() => retired.some((r) => String(r.peer) === PARTNER_CLIENT_ID && r.reason === 'trust-changed'), 5000, 'the partner connection to be retired');
    assert.ok(!retired.some((r) => String(r.peer) === OWN_CLIENT_ID), 'our own client keeps its connection');
    const handledBefore = handled;
    await request(url, { dispatcher: partnerAgent }).then((r) => r.body.text()).catch(() => undefined);
    const freshPartner = createAgent({ source: await partnerCredential(PARTNER_CLIENT_ID), allow: SERVER_ID, logger: silent });
    cleanups.push(() => freshPartner.close());
    await assert.rejects(request(url, { dispatcher: freshPartner }).then((r) => r.body.text()), 'the partner is refused on a new connection');
    await waitFor(() => refusals.some((r) => r.failure === 'unverified' || r.failure === 'handshake'), 5000, 'the server to report the refusal');
    assert.equal(handled, handledBefore, 'no partner request reached the handler after the trust change');
    assert.equal(await (await request(url, { dispatcher: ownAgent })).body.text(), OWN_CLIENT_ID, 'our own client still served');

    // The agent sends partner.example's bundle again: the partner is accepted again.
    const back = nextEvent(source, 'update');
    api.push({ svids: [svidOf(serverSvid)], federated_bundles: { [`spiffe://${PARTNER}`]: pemToDer(partner.bundle) } });
    await back;
    assert.equal(await (await request(url, { dispatcher: freshPartner })).body.text(), PARTNER_CLIENT_ID);
  });

  it('HTTP client (createAgent on the Workload API source): a partner server is trusted, then refused', async () => {
    const partnerServerCred = await partnerCredential(PARTNER_SERVER_ID, ['localhost']);
    const server = createServer({ source: partnerServerCred, allow: `spiffe://${OURS}/**`, logger: silent }, (req, res) => res.end(String(peerOf(req))));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => {
      server.close();
      server.closeAllConnections();
    });
    const url = `https://localhost:${(server.address() as { port: number }).port}/`;
    const agent = createAgent({ source, allow: PARTNER_SERVER_ID, logger: silent });
    cleanups.push(() => agent.close());
    assert.equal(await (await request(url, { dispatcher: agent })).body.text(), SERVER_ID, 'the partner server accepted us, and we it');
    await dropPartner();
    await assert.rejects(async () => {
      const res = await request(url, { dispatcher: agent });
      await res.body.text();
    }, (err: Error & { code?: string }) => err.code === 'MESHLESS_ERR_PEER_UNVERIFIED' && err.message.includes(PARTNER_SERVER_ID), 'the partner server no longer verifies');
  });

  it('gRPC server: partner calls succeed, then fail once its bundle is gone', async () => {
    const running = await startServer(serverCredentials({ source, allow: [`spiffe://${PARTNER}/**`], logger: silent }));
    cleanups.push(() => running.close());
    const client = echoClient(running.target, channelCredentials({ source: await partnerCredential(PARTNER_CLIENT_ID), allow: SERVER_ID, logger: silent }));
    cleanups.push(() => client.close());
    assert.equal((await unary(client, 'unary', {})).peer, PARTNER_CLIENT_ID);
    await dropPartner();
    const fresh = echoClient(running.target, channelCredentials({ source: await partnerCredential(PARTNER_CLIENT_ID), allow: SERVER_ID, logger: silent }));
    cleanups.push(() => fresh.close());
    await assert.rejects(unary(fresh, 'unary', {}, 3000), (err: grpc.ServiceError) => err.code !== grpc.status.OK);
    // The established connection is not served either.
    await waitFor(async () => {
      try {
        await unary(client, 'unary', {}, 2000);
        return false;
      } catch {
        return true;
      }
    }, 10_000, 'the old partner connection to stop being served');
  });
});
