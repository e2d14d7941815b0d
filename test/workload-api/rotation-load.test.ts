import assert from 'node:assert/strict';
import type { Peer } from '@meshless/core';
import { channelCredentials, serverCredentials } from '@meshless/grpc';
import { createAgent, createServer, peerOf, peerOfResponse } from '@meshless/http';
import { workloadApiSource, type WorkloadApiSource } from '@meshless/workload-api';
import { request } from 'undici';
import { echoClient, startServer, unary, type Echo } from '@meshless/fixtures/grpc-harness';
import { CLIENT_ID, SERVER_ID, createPki, type Pki } from '@meshless/fixtures/grpc-pki';
import { nextEvent, silent } from '@meshless/fixtures/events';
import { startWorkloadApi, svidOf, type WorkloadApiServer } from '@meshless/fixtures/workload-api-server';
import { unaryLoad } from '../grpc/load.js';

// Rotation under load through the SPIFFE Workload API: a server workload and a client workload,
// each fed by its own Workload API server (real gRPC on a Unix socket), rotated by pushed
// messages — with a refused (mismatched) message in the middle — while bounded HTTP and gRPC
// load runs. Zero failed requests; new connections present the last pushed certificates.

const ROTATIONS = 12;

describe('workloadApiSource under load: HTTP (createServer/createAgent) and gRPC (serverCredentials/channelCredentials)', function () {
  this.timeout(60_000);
  let pki: Pki;
  const cleanups: Array<() => unknown> = [];

  before(async () => {
    pki = await createPki();
  });
  after(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it(`rotates both workloads ${ROTATIONS} times (one refused message) with zero failed requests; new connections present the new certificates`, async () => {
    const serverApi: WorkloadApiServer = await startWorkloadApi();
    const clientApi: WorkloadApiServer = await startWorkloadApi();
    cleanups.push(() => serverApi.close(), () => clientApi.close());
    serverApi.push({ svids: [svidOf(pki.server)] });
    clientApi.push({ svids: [svidOf(pki.client)] });
    const serverSource: WorkloadApiSource = await workloadApiSource({ address: serverApi.address, logger: silent });
    const clientSource: WorkloadApiSource = await workloadApiSource({ address: clientApi.address, logger: silent });
    cleanups.push(() => serverSource.close(), () => clientSource.close());

    // HTTP
    const http = createServer({ source: serverSource, allow: CLIENT_ID, logger: silent }, (req, res) => res.end(peerOf(req)!.serialNumber));
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    cleanups.push(() => {
      http.close();
      http.closeAllConnections();
    });
    const port = (http.address() as { port: number }).port;
    const agent = createAgent({ source: clientSource, allow: SERVER_ID, logger: silent, maxConnectionAgeMs: 300 });
    cleanups.push(() => agent.close());

    // gRPC (the client records every server certificate it accepts)
    const grpcServer = await startServer(serverCredentials({ source: serverSource, allow: CLIENT_ID, logger: silent }), { 'grpc.max_connection_age_ms': 300, 'grpc.max_connection_age_grace_ms': 5000 });
    cleanups.push(() => grpcServer.close());
    const serverSerials: string[] = [];
    const channel = () =>
      channelCredentials({
        source: clientSource,
        allow: (peer: Peer) => {
          serverSerials.push(peer.serialNumber);
          return peer.spiffeId === SERVER_ID;
        },
        logger: silent,
      });
    const grpcClient: Echo = echoClient(grpcServer.target, channel(), { 'grpc.max_connection_age_ms': 300 });
    cleanups.push(() => grpcClient.close());

    let stop = false;
    const httpFailures: string[] = [];
    let httpOk = 0;
    const httpLoop = async () => {
      for (let i = 0; i < 20_000 && !stop; i++) {
        try {
          const res = await request(`https://localhost:${port}/`, { dispatcher: agent });
          await res.body.text();
          if (res.statusCode === 200) httpOk++;
          else httpFailures.push(`status ${res.statusCode}`);
        } catch (err) {
          httpFailures.push((err as Error).message);
        }
      }
    };
    const httpLoad = Promise.all(Array.from({ length: 4 }, httpLoop));
    let grpcReplies = 0;
    const grpcOk = () => grpcReplies;
    const grpcLoad = unaryLoad(grpcClient, { concurrency: 4, stop: () => stop, maxMs: 45_000, onReply: () => grpcReplies++ });

    let lastServer = pki.server;
    let lastClient = pki.client;
    let refused = 0;
    for (let i = 0; i < ROTATIONS; i++) {
      const side = i % 2 === 0 ? 'server' : 'client';
      const api = side === 'server' ? serverApi : clientApi;
      const source = side === 'server' ? serverSource : clientSource;
      const fresh = side === 'server' ? await pki.issueServer() : await pki.issueClient();
      if (i === 5) {
        const failed = nextEvent(source, 'error');
        api.push({ svids: [{ ...svidOf(fresh), x509_svid_key: svidOf(side === 'server' ? lastServer : lastClient).x509_svid_key }] });
        await failed;
        refused++;
        continue;
      }
      const updated = nextEvent(source, 'update');
      api.push({ svids: [svidOf(fresh)] });
      await updated;
      if (side === 'server') lastServer = fresh;
      else lastClient = fresh;
      // Let load run on the new generation: 10 more requests of each protocol (bounded: 3 s).
      const httpTarget = httpOk + 10;
      const grpcTarget = grpcOk() + 10;
      const until = Date.now() + 3000;
      while ((httpOk < httpTarget || grpcOk() < grpcTarget) && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    }
    stop = true;
    await httpLoad;
    const grpcResult = await grpcLoad;
    console.log(`    workload-api load: ${ROTATIONS - refused} rotations + ${refused} refused message, ${httpOk} HTTP + ${grpcResult.ok} gRPC requests, ${httpFailures.length + grpcResult.failed} failed`);
    assert.deepEqual(httpFailures.slice(0, 5), [], `${httpFailures.length} HTTP requests failed`);
    assert.equal(grpcResult.failed, 0, grpcResult.errors.join('\n'));
    assert.ok(httpOk > 60 && grpcResult.ok > 60, 'both protocols carried load through the rotations');

    assert.equal(serverSource.current().leaf.serialNumber, lastServer.serialNumber);
    assert.equal(clientSource.current().leaf.serialNumber, lastClient.serialNumber);
    // New connections present the last pushed certificates, both ways.
    const fresh = createAgent({ source: clientSource, allow: SERVER_ID, logger: silent, peerContext: true });
    cleanups.push(() => fresh.close());
    const res = await request(`https://localhost:${port}/`, { dispatcher: fresh });
    assert.equal(await res.body.text(), lastClient.serialNumber, 'the server sees the new client certificate');
    assert.equal(peerOfResponse(res)?.serialNumber, lastServer.serialNumber, 'the client sees the new server certificate');
    const freshGrpc = echoClient(grpcServer.target, channel());
    cleanups.push(() => freshGrpc.close());
    serverSerials.length = 0;
    const reply = await unary(freshGrpc, 'unary', {});
    assert.equal(reply.serial, lastClient.serialNumber);
    assert.deepEqual(serverSerials, [lastServer.serialNumber]);
  });
});
