import assert from 'node:assert/strict';
import http from 'node:http';
import grpc from '@grpc/grpc-js';
import { loadCredential } from '@meshless/core';
import { createAgent, createServer, healthHandler } from '@meshless/http';
import { createTestCA, type TestCA } from '@meshless/testing';
import { workloadApiSource, type WorkloadApiSource, type WithdrawnBehaviour } from '@meshless/workload-api';
import { request } from 'undici';
import { nextEvent, silent } from '@meshless/fixtures/events';
import { startWorkloadApi, svidOf, type WorkloadApiServer } from '@meshless/fixtures/workload-api-server';

// Identity withdrawn (SPIRE ends the stream with PermissionDenied after an SVID was served), as a
// service sees it: with 'keep' the service goes on serving and stays ready (health stale); with
// 'expire' the readiness handler answers 503 until an SVID comes back.

const TD = 'prod.example';
const SERVER_ID = `spiffe://${TD}/ns/pay/sa/api`;
const CLIENT_ID = `spiffe://${TD}/ns/web/sa/front`;

describe('identity withdrawn, through createServer and healthHandler', function () {
  this.timeout(20_000);
  let ca: TestCA;
  let api: WorkloadApiServer;
  let source: WorkloadApiSource;
  const cleanups: Array<() => unknown> = [];

  before(async () => {
    ca = await createTestCA({ trustDomain: TD });
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
    await source?.close();
    await api?.close();
  });

  async function setUp(onWithdrawn: WithdrawnBehaviour) {
    api = await startWorkloadApi();
    api.push({ svids: [svidOf(await ca.issue({ spiffeId: SERVER_ID, dnsNames: ['localhost'] }))] });
    source = await workloadApiSource({ address: api.address, logger: silent, onWithdrawn, backoff: { initialMs: 20, maxMs: 200 } });
    const server = createServer({ source, allow: CLIENT_ID, logger: silent }, (_req, res) => res.end('ok'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const probe = http.createServer(healthHandler(source));
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    cleanups.push(
      () => {
        server.close();
        server.closeAllConnections();
      },
      () => probe.close(),
    );
    const issued = await ca.issue(CLIENT_ID);
    const agent = createAgent({ source: loadCredential({ cert: issued.cert, key: issued.key, ca: ca.bundle }), allow: SERVER_ID, logger: silent });
    cleanups.push(() => agent.close());
    const url = `https://localhost:${(server.address() as { port: number }).port}/`;
    const ready = async () => {
      const res = await request(`http://127.0.0.1:${(probe.address() as { port: number }).port}/`);
      return { status: res.statusCode, body: (await res.body.json()) as { state: string; lastError?: string } };
    };
    return { agent, url, ready };
  }

  it("'keep': still serving and ready (stale, IDENTITY_WITHDRAWN) until the SVID expires", async () => {
    const { agent, url, ready } = await setUp('keep');
    assert.equal((await ready()).status, 200);
    const failed = nextEvent(source, 'error');
    api.deny(grpc.status.PERMISSION_DENIED, 'no identity issued', true);
    await failed;
    const r = await ready();
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.state, 'stale');
    assert.equal(r.body.lastError, 'MESHLESS_ERR_IDENTITY_WITHDRAWN');
    assert.equal(await (await request(url, { dispatcher: agent })).body.text(), 'ok');
  });

  it("'expire': readiness answers 503 until an SVID comes back, then 200", async () => {
    const { ready } = await setUp('expire');
    const expired = nextEvent(source, 'health');
    api.deny(grpc.status.PERMISSION_DENIED, 'no identity issued', true);
    assert.equal((await expired)[0].state, 'expired');
    const r = await ready();
    assert.equal(r.status, 503);
    assert.equal(r.body.lastError, 'MESHLESS_ERR_IDENTITY_WITHDRAWN');
    const fresh = nextEvent(source, 'health');
    api.deny(undefined);
    assert.equal((await fresh)[0].state, 'fresh');
    assert.equal((await ready()).status, 200);
  });
});
