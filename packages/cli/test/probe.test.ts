import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadCredential, silentLogger, type Credential } from '@meshless/core';
import { serverCredentials } from '@meshless/grpc';
import { createServer, type MeshlessServer } from '@meshless/http';
import { createTestCA, kubernetesVolume, type TestCA } from '@meshless/testing';
import { loadEcho } from '../src/serve/echo-service.js';
import { ensureBuilt, runCli, tempDir } from './helpers/cli.js';

const SERVER = 'spiffe://prod.example/ns/pay/sa/api';
const CLIENT = 'spiffe://prod.example/ns/web/sa/front';

interface ProbeJson {
  ok: boolean;
  error?: { code: string; message: string };
  connection?: { tlsVersion: string; cipher: string; alpn: string | null };
  server?: { spiffeId?: string; timeLeftMs: number };
  chain: Array<{ spiffeId?: string; isCA: boolean }>;
  verified?: boolean;
  allow?: { checked: boolean; allowed?: boolean; rule?: string };
  client?: { id: string; accepted: boolean; answer: string };
  resumption?: { resumed: boolean };
}

describe('meshless probe', function () {
  this.timeout(60_000);
  let ca: TestCA;
  let dir: string;
  let cleanup: () => Promise<void>;
  let clientDir: string;
  const closers: Array<() => Promise<void>> = [];

  async function credential(spiffeId: string, from: TestCA = ca): Promise<Credential> {
    return loadCredential(await from.issue({ spiffeId, dnsNames: ['localhost'] }));
  }

  async function httpsServer(allow: string, own?: Credential): Promise<number> {
    const server: MeshlessServer = createServer({ source: own ?? (await credential(SERVER)), allow, logger: silentLogger }, (_req, res) => res.end('hello'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
    return (server.address() as AddressInfo).port;
  }

  async function grpcServer(allow: string): Promise<number> {
    const server = new grpc.Server();
    const { service } = loadEcho();
    server.addService(service, { Who: (_call: unknown, cb: grpc.sendUnaryData<object>) => cb(null, { peer_spiffe_id: 'x', served_spiffe_id: SERVER, served_serial: '01', generation: 1 }) });
    const credentials = serverCredentials({ source: loadCredential(await ca.issue(SERVER)), allow, logger: silentLogger });
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', credentials, (e, p) => (e ? reject(e) : resolve(p))));
    closers.push(async () => server.forceShutdown());
    return port;
  }

  async function probe(args: string[]): Promise<{ code: number | null; report: ProbeJson; stderr: string }> {
    const r = await runCli(['probe', ...args, '--dir', clientDir, '--json']);
    return { code: r.code, report: JSON.parse(r.stdout) as ProbeJson, stderr: r.stderr };
  }

  before(async () => {
    ensureBuilt();
    ({ dir, cleanup } = await tempDir());
    ca = await createTestCA({ trustDomain: 'prod.example' });
    clientDir = join(dir, 'client');
    const issued = await ca.issue(CLIENT);
    const volume = kubernetesVolume(clientDir);
    await volume.write({ 'tls.crt': issued.cert, 'tls.key': issued.key, 'ca.crt': issued.ca });
    await volume.close();
  });

  after(async () => {
    for (const close of closers) await close();
    await cleanup();
  });

  it('https: shows identity, TLS details, chain, allow verdict, our acceptance and resumption (exit 0)', async () => {
    const port = await httpsServer('spiffe://prod.example/ns/web/**');
    const { code, report } = await probe([`https://127.0.0.1:${port}/`, '--allow', 'spiffe://prod.example/ns/pay/**']);
    assert.equal(code, 0, JSON.stringify(report.error));
    assert.equal(report.ok, true);
    assert.equal(report.connection?.tlsVersion, 'TLSv1.3');
    assert.match(report.connection!.cipher, /^TLS_/);
    assert.equal(report.connection?.alpn, 'http/1.1');
    assert.equal(report.server?.spiffeId, SERVER);
    assert.ok(report.server!.timeLeftMs > 0);
    assert.equal(report.chain[0]?.spiffeId, SERVER);
    assert.equal(report.verified, true);
    assert.deepEqual(report.allow, { checked: true, allowed: true, rule: 'spiffe://prod.example/ns/pay/**', reason: `${SERVER} is allowed by rule "spiffe://prod.example/ns/pay/**"` });
    assert.deepEqual(report.client, { id: CLIENT, accepted: true, answer: 'HTTP 200' });
    assert.equal(report.resumption?.resumed, true);

    const text = await runCli(['probe', `https://127.0.0.1:${port}/`, '--dir', clientDir, '--allow', SERVER]);
    assert.equal(text.code, 0);
    assert.match(text.stdout, /tls +TLSv1\.3, TLS_/);
    assert.match(text.stdout, new RegExp(`server +${SERVER}`));
    assert.match(text.stdout, /^OK$/m);
  });

  it('exits 1 with MESHLESS_ERR_PEER_DENIED when --allow does not accept the server', async () => {
    const port = await httpsServer('*');
    const { code, report, stderr } = await probe([`https://127.0.0.1:${port}/`, '--allow', 'spiffe://prod.example/ns/ledger/**']);
    assert.equal(code, 1);
    assert.equal(report.error?.code, 'MESHLESS_ERR_PEER_DENIED');
    assert.match(report.error!.message, /presented spiffe:\/\/prod\.example\/ns\/pay\/sa\/api, which --allow does not accept/);
    assert.equal(report.allow?.allowed, false);
    assert.match(report.client!.answer, /^not asked/, 'no request is sent to a server --allow refuses');
    assert.equal(stderr, '');
  });

  it('exits 1 with MESHLESS_ERR_PEER_UNVERIFIED when the server chains to another CA', async () => {
    const other = await createTestCA({ trustDomain: 'prod.example' });
    const port = await httpsServer('*', await credential(SERVER, other));
    const { code, report } = await probe([`https://127.0.0.1:${port}/`]);
    assert.equal(code, 1);
    assert.equal(report.error?.code, 'MESHLESS_ERR_PEER_UNVERIFIED');
    assert.equal(report.verified, false);
    assert.equal(report.server?.spiffeId, SERVER, 'the identity is shown even though it does not verify');
    assert.match(report.client!.answer, /^not asked/, 'no request is sent to an untrusted server');
  });

  it('exits 1 when the server refuses our certificate, saying so', async () => {
    const port = await httpsServer('spiffe://prod.example/ns/ledger/**');
    const { code, report } = await probe([`https://127.0.0.1:${port}/`, '--allow', SERVER]);
    assert.equal(code, 1);
    assert.equal(report.error?.code, 'MESHLESS_ERR_PEER_DENIED');
    assert.equal(report.client?.accepted, false);
    assert.match(report.error!.message, /the server refused our certificate \(spiffe:\/\/prod\.example\/ns\/web\/sa\/front\)/);
  });

  it('grpc: calls a method over HTTP/2 and reports its status; PERMISSION_DENIED means we are refused', async () => {
    const allowed = await grpcServer('spiffe://prod.example/ns/web/**');
    const ok = await probe([`grpc://localhost:${allowed}`, '--allow', SERVER, '--method', '/meshless.echo.v1.Echo/Who']);
    assert.equal(ok.code, 0, JSON.stringify(ok.report.error));
    assert.equal(ok.report.connection?.alpn, 'h2');
    assert.equal(ok.report.client?.answer, 'grpc-status 0 (OK)');

    const denied = await grpcServer('spiffe://prod.example/ns/ledger/**');
    const refused = await probe([`grpc://localhost:${denied}`, '--method', '/meshless.echo.v1.Echo/Who']);
    assert.equal(refused.code, 1);
    assert.equal(refused.report.error?.code, 'MESHLESS_ERR_PEER_DENIED');
    assert.match(refused.report.client!.answer, /^grpc-status 7 \(PERMISSION_DENIED\)/);
  });

  it('exits 1 with the network error when nothing listens', async () => {
    const port = await httpsServer('*');
    await closers.pop()!();
    const { code, report } = await probe([`https://127.0.0.1:${port}/`]);
    assert.equal(code, 1);
    assert.equal(report.error?.code, 'ECONNREFUSED');
  });

  it('exits 2 on a bad URL, a missing --dir or a bad rule', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['http://127.0.0.1:1/', '--dir', dir], /http:\/\/ is not supported: use https:\/\/ or grpc:\/\//],
      [['not a url', '--dir', dir], /is not a URL/],
      [['https://127.0.0.1:1/'], /--dir is required/],
      [['https://127.0.0.1:1/', '--dir', dir, '--allow', 'spiffe://'], /spiffe:\/\//],
      [['grpc://127.0.0.1:1', '--dir', dir, '--method', 'Who'], /--method "Who" is not a gRPC method path/],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(['probe', ...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
  });

  it('exits 1 with the coded reason when our own credential is bad', async () => {
    const r = await runCli(['probe', 'https://127.0.0.1:1/', '--dir', dir]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /MESHLESS_ERR_LAYOUT_NOT_FOUND/);
  });
});
