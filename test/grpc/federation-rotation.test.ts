import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import grpc from '@grpc/grpc-js';
import { fileSource, formatBundleMap, silentLogger, type FileSource } from '@meshless/core';
import { channelCredentials, serverCredentials } from '@meshless/grpc';
import { createTestCA, type IssuedCertificate, kubernetesVolume, type KubernetesVolume, type TestCA, waitFor } from '@meshless/testing';
import { handlerRuns } from '@meshless/fixtures/grpc-echo';
import { echoClient, failure, startServer, unary, type Echo, type Running } from '@meshless/fixtures/grpc-harness';

// gRPC between two trust domains, both sides on file sources: the server's federated bundles come
// from a bundle map on a ConfigMap-style mount, the partner client's from a per-trust-domain file.
// Map swaps: a new partner CA is accepted within the rotation bound; a removed trust domain's
// connections are refused without reaching a handler.

const ROTATION_BOUND_MS = 2000;
const SERVER_ID = 'spiffe://prod.example/ns/pay/sa/api';
const PARTNER_ID = 'spiffe://partner.example/ns/billing/sa/api';

describe('federation over gRPC: bundle map rotation', function () {
  this.timeout(60_000);
  let prod: TestCA;
  let partner: TestCA;
  let partnerNext: TestCA;
  let tmp: string;
  const volumes: KubernetesVolume[] = [];
  const sources: FileSource[] = [];
  const clients: Echo[] = [];
  let trust: KubernetesVolume;
  let running: Running;

  const map = (entries: Record<string, TestCA[]>, sequence: number): string =>
    formatBundleMap(Object.fromEntries(Object.entries(entries).map(([td, cas]) => [td, cas.map((c) => new X509Certificate(c.certPem))])), { sequence });

  async function volume(name: string, files: Record<string, string>): Promise<KubernetesVolume> {
    const v = kubernetesVolume(path.join(tmp, name));
    volumes.push(v);
    await v.write(files);
    return v;
  }

  /** A partner workload: its SVID on a mount, prod.example's bundle in a federation file. */
  async function partnerSource(issued: IssuedCertificate, name: string): Promise<FileSource> {
    await volume(name, { 'tls.crt': issued.cert, 'tls.key': issued.key, 'ca.crt': issued.ca, 'prod.example.pem': prod.certPem });
    const dir = path.join(tmp, name);
    const source = await fileSource({ dir, federation: { 'prod.example': path.join(dir, 'prod.example.pem') } }, { logger: silentLogger, recheckIntervalMs: 0 });
    sources.push(source);
    return source;
  }

  /** A new channel (its own connection) for a partner workload's source. */
  function clientOf(source: FileSource): Echo {
    const client = echoClient(running.target, channelCredentials({ source, allow: SERVER_ID, logger: silentLogger }));
    clients.push(client);
    return client;
  }

  async function partnerClient(issued: IssuedCertificate, name: string): Promise<Echo> {
    return clientOf(await partnerSource(issued, name));
  }

  before(async () => {
    [prod, partner, partnerNext] = await Promise.all([
      createTestCA({ trustDomain: 'prod.example' }),
      createTestCA({ trustDomain: 'partner.example' }),
      createTestCA({ trustDomain: 'partner.example' }),
    ]);
    tmp = await mkdtemp(path.join(tmpdir(), 'meshless-federation-grpc-'));
    const own = await prod.issue({ spiffeId: SERVER_ID, dnsNames: ['localhost'] });
    await volume('tls', { 'tls.crt': own.cert, 'tls.key': own.key, 'ca.crt': own.ca });
    trust = await volume('federation', { 'bundles.json': map({ 'partner.example': [partner] }, 1) });
    const source = await fileSource({ dir: path.join(tmp, 'tls'), bundleMap: path.join(tmp, 'federation', 'bundles.json') }, { logger: silentLogger, recheckIntervalMs: 0 });
    sources.push(source);
    running = await startServer(serverCredentials({ source, allow: 'spiffe://partner.example/ns/billing/**', logger: silentLogger }));
  });
  after(async () => {
    for (const c of clients) c.close();
    await running?.close();
    for (const s of sources) await s.close();
    for (const v of volumes) await v.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('a partner workload is served; one of a CA not in the map is not', async () => {
    const ok = await partnerClient(await partner.issue(PARTNER_ID), 'partner-1');
    assert.equal((await unary(ok, 'unary', {})).peer, PARTNER_ID);
    const before = handlerRuns.count;
    const notYet = await partnerClient(await partnerNext.issue(PARTNER_ID), 'partner-next-1');
    const refused = await failure(unary(notYet, 'unary', {}));
    assert.ok([grpc.status.UNAUTHENTICATED, grpc.status.UNAVAILABLE].includes(refused.code), refused.message);
    assert.equal(handlerRuns.count, before, 'no handler ran');
  });

  it('a new partner CA in the map is served within the rotation bound', async () => {
    const source = await partnerSource(await partnerNext.issue(PARTNER_ID), 'partner-next-2');
    const started = Date.now();
    await trust.write({ 'bundles.json': map({ 'partner.example': [partner, partnerNext] }, 2) });
    let n = 0;
    await waitFor(async () => {
      n++;
      return unary(clientOf(source), 'unary', {}, 1000).then((r) => r.peer === PARTNER_ID, () => false);
    }, ROTATION_BOUND_MS, 'a call of the new partner CA to be served');
    console.log(`      (map write → first gRPC call of the new partner CA served in ${Date.now() - started} ms, ${n} connection(s); bound ${ROTATION_BOUND_MS} ms)`);
  });

  it('a trust domain removed from the map: the partner\'s calls are refused and reach no handler', async () => {
    const client = await partnerClient(await partner.issue(PARTNER_ID), 'partner-2');
    assert.equal((await unary(client, 'unary', {})).peer, PARTNER_ID);
    await trust.write({ 'bundles.json': map({}, 3) });
    await waitFor(() => !sources[0]!.current().bundles.has('partner.example'), ROTATION_BOUND_MS, 'partner.example to leave the server\'s bundles');
    const before = handlerRuns.count;
    const refused = await failure(unary(client, 'unary', {}));
    assert.ok([grpc.status.UNAUTHENTICATED, grpc.status.UNAVAILABLE].includes(refused.code), refused.message);
    assert.equal(handlerRuns.count, before, 'the refused call reached no handler');
  });
});
