// Issue 12, finding 3: no object the public API returns prints the private key, whether it is
// given to util.inspect, JSON.stringify or a pino logger — also after it has been used (a
// rotation, a request, a gRPC call), when Node and grpc-js have copied the TLS options around.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import util from 'node:util';
import { createPrivateKey } from 'node:crypto';
import grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { request } from 'undici';
import { fileSource, loadCredential, staticSource, type Credential } from '@meshless/core';
import { channelCredentials, serverCredentials } from '@meshless/grpc';
import { createAgent, createServer, type MeshlessServer } from '@meshless/http';
import { createTestCA, kubernetesVolume, type TestCA } from '@meshless/testing';
import { workloadApiSource } from '@meshless/workload-api';
import { startWorkloadApi, svidOf } from '@meshless/fixtures/workload-api-server';
import type { AddressInfo } from 'node:net';

const TD = 'prod.example';
const SERVER_ID = `spiffe://${TD}/ns/pay/sa/api`;
const CLIENT_ID = `spiffe://${TD}/ns/web/sa/frontend`;
const quiet = { error() {}, warn() {}, info() {}, debug() {} };

const json = { s: (v: unknown) => Buffer.from(JSON.stringify(v)), d: (b: Buffer) => JSON.parse(b.toString()) };
const service = {
  who: { path: '/sec.Echo/Who', requestStream: false, responseStream: false, requestSerialize: json.s, requestDeserialize: json.d, responseSerialize: json.s, responseDeserialize: json.d },
} as const;
const EchoClient = grpc.makeGenericClientConstructor(service, 'Echo');

/** JSON.stringify that survives cycles (pino's own serializer does the same). */
function stringifyCycles(value: unknown): string {
  const seen = new WeakSet<object>();
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'object' && v !== null) {
      if (seen.has(v)) return '[Circular]';
      seen.add(v);
    }
    return typeof v === 'bigint' ? String(v) : v;
  });
}

/**
 * Every way a key could show: its PEM armour, pieces of its base64 body (those that are not also
 * in the certificate: an EC key carries its public point, which the certificate repeats), and
 * its bytes as a Buffer prints them.
 */
function keyTraces(keyPem: string): string[] {
  const bytes = (s: string) => [...Buffer.from(s)];
  const body = keyPem.split('\n').filter((l) => l.length > 0 && !l.startsWith('-----'));
  const pieces = body.flatMap((l) => [l.slice(0, 24), l.slice(20, 44), l.slice(40, 64)]).filter((p) => p.length >= 16 && !publicText.some((t) => t.includes(p)));
  assert.ok(pieces.length >= 2, 'enough of the key body to search for');
  return [
    'PRIVATE KEY',
    ...pieces,
    // <Buffer 2d 2d …> (inspect) and {"type":"Buffer","data":[45,45,…]} (JSON) of the PEM.
    bytes(' PRIVATE KEY').map((b) => b.toString(16).padStart(2, '0')).join(' '),
    bytes(' PRIVATE KEY').join(','),
  ];
}
/** Certificates and bundles of the test: public text that may legitimately be printed. */
const publicText: string[] = [];

/** The key's private bytes as a Buffer of its PKCS#8 DER prints them (the Workload API sends DER). */
function derTraces(keyPem: string): string[] {
  const der = createPrivateKey(keyPem).export({ type: 'pkcs8', format: 'der' });
  // Past the algorithm header, which every key of the type shares; within the 50 bytes inspect shows.
  const secret = [...der.subarray(36, 48)];
  return [secret.map((b) => b.toString(16).padStart(2, '0')).join(' '), secret.join(',')];
}

function assertNoKey(name: string, value: unknown, keyPem: string): void {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  const logger = pino({ level: 'info' }, sink);
  logger.info({ [name]: value }, 'logging the object');
  logger.info(value as object, 'logging the object as the merge object');
  const outputs: Record<string, string> = {
    'util.inspect': util.inspect(value),
    'util.inspect depth ∞': util.inspect(value, { depth: Infinity }),
    'JSON.stringify': stringifyCycles(value) ?? '',
    pino: lines.join(''),
  };
  for (const [how, text] of Object.entries(outputs)) {
    for (const trace of [...keyTraces(keyPem), ...derTraces(keyPem)]) {
      assert.ok(!text.includes(trace), `${how}(${name}) contains the private key (${JSON.stringify(trace)})`);
    }
  }
}

describe('security: no object of the public API prints the private key (issue 12.3)', function () {
  this.timeout(30_000);
  let ca: TestCA;
  let serverIssued: Awaited<ReturnType<TestCA['issue']>>;
  let clientIssued: Awaited<ReturnType<TestCA['issue']>>;
  let serverCred: Credential;
  let clientCred: Credential;
  let dir: string;
  before(async () => {
    ca = await createTestCA({ trustDomain: TD });
    serverIssued = await ca.issue({ spiffeId: SERVER_ID, dnsNames: ['localhost'] });
    clientIssued = await ca.issue(CLIENT_ID);
    serverCred = loadCredential(serverIssued);
    clientCred = loadCredential(clientIssued);
    publicText.push(serverIssued.cert, serverIssued.ca, clientIssued.cert, clientIssued.ca);
    dir = await mkdtemp(join(tmpdir(), 'meshless-secrets-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('credentials and sources (static and file)', async () => {
    assertNoKey('credential', serverCred, serverIssued.key);
    assertNoKey('source', staticSource(serverCred), serverIssued.key);
    await kubernetesVolume(dir).write({ 'tls.crt': serverIssued.cert, 'tls.key': serverIssued.key, 'ca.crt': serverIssued.ca });
    const source = await fileSource({ dir }, { logger: quiet });
    try {
      assertNoKey('fileSource', source, serverIssued.key);
      assertNoKey('fileSource.current()', source.current(), serverIssued.key);
    } finally {
      await source.close();
    }
  });

  it('workloadApiSource (SVIDs arrive as DER from the Workload API)', async () => {
    const api = await startWorkloadApi();
    try {
      api.push({ svids: [svidOf(serverIssued)] });
      const source = await workloadApiSource({ address: api.address, logger: quiet, firstUpdateTimeoutMs: 5000 });
      try {
        assertNoKey('workloadApiSource', source, serverIssued.key);
        assertNoKey('workloadApiSource.current()', source.current(), serverIssued.key);
      } finally {
        await source.close();
      }
    } finally {
      await api.close();
    }
  });

  it("createServer's server and createAgent's agent, after a request and a rotation", async () => {
    const source = staticSource(serverCred);
    const server: MeshlessServer = createServer({ source, allow: CLIENT_ID, logger: quiet }, (_req, res) => res.end('ok'));
    assertNoKey('server (new)', server, serverIssued.key);
    server.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const port = (server.address() as AddressInfo).port;
    const agent = createAgent({ source: clientCred, allow: SERVER_ID, logger: quiet });
    try {
      assertNoKey('agent (new)', agent, clientIssued.key);
      const res = await request(`https://localhost:${port}/`, { dispatcher: agent });
      assert.equal(res.statusCode, 200);
      await res.body.text();
      // A rotation goes through setSecureContext, which copies the options onto the server again.
      const next = await ca.issue({ spiffeId: SERVER_ID, dnsNames: ['localhost'] });
      publicText.push(next.cert);
      const rotated = loadCredential(next, { generation: 2 });
      (source as unknown as { emit(e: string, c: Credential, p: Credential): void }).emit('update', rotated, serverCred);
      for (const key of [serverIssued.key, next.key]) assertNoKey('server (used, rotated)', server, key);
      assertNoKey('agent (used)', agent, clientIssued.key);
      // Node still works with what it was given.
      const again = await request(`https://localhost:${port}/`, { dispatcher: agent });
      assert.equal(again.statusCode, 200);
      await again.body.text();
      assert.equal(typeof server.getTicketKeys(), 'object');
    } finally {
      await agent.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it('serverCredentials and channelCredentials, after a call', async () => {
    const serverCreds = serverCredentials({ source: serverCred, allow: CLIENT_ID, logger: quiet });
    const channelCreds = channelCredentials({ source: clientCred, allow: SERVER_ID, logger: quiet });
    assertNoKey('serverCredentials (new)', serverCreds, serverIssued.key);
    assertNoKey('channelCredentials (new)', channelCreds, clientIssued.key);
    const server = new grpc.Server();
    server.addService(service, { who: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { ok: true }) });
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('localhost:0', serverCreds, (err, p) => (err ? reject(err) : resolve(p))));
    const client = new EchoClient(`localhost:${port}`, channelCreds, { 'grpc.use_local_subchannel_pool': 1 }) as unknown as grpc.Client & { who(req: unknown, cb: (err: Error | null, reply: unknown) => void): void };
    try {
      const reply = await new Promise<unknown>((resolve, reject) => client.who({}, (err, r) => (err ? reject(err) : resolve(r))));
      assert.deepEqual(reply, { ok: true });
      assertNoKey('serverCredentials (used)', serverCreds, serverIssued.key);
      assertNoKey('channelCredentials (used)', channelCreds, clientIssued.key);
    } finally {
      client.close();
      server.forceShutdown();
    }
  });
});
