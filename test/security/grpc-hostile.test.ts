import assert from 'node:assert/strict';
import net from 'node:net';
import grpc from '@grpc/grpc-js';
import { loadCredential } from '@meshless/core';
import { serverCredentials } from '@meshless/grpc';
import { createTestCA, type TestCA } from '@meshless/testing';

// The hostile-peer list, for gRPC: every call is refused before the handler runs.

const TD = 'prod.example';
const SERVER_ID = `spiffe://${TD}/ns/pay/sa/api`;
const ALLOWED_ID = `spiffe://${TD}/ns/orders/sa/web`;
const json = { s: (v: unknown) => Buffer.from(JSON.stringify(v)), d: (b: Buffer) => JSON.parse(b.toString()) };
const service = {
  who: { path: '/sec.Echo/Who', requestStream: false, responseStream: false, requestSerialize: json.s, requestDeserialize: json.d, responseSerialize: json.s, responseDeserialize: json.d },
} as const;
const Client = grpc.makeGenericClientConstructor(service, 'Echo');

describe('security: hostile peers against gRPC serverCredentials', function () {
  this.timeout(60_000);
  let ca: TestCA;
  let other: TestCA;
  let server: grpc.Server;
  let port: number;
  let handled = 0;

  before(async () => {
    ca = await createTestCA({ trustDomain: TD });
    other = await createTestCA({ trustDomain: TD });
    const own = loadCredential(await ca.issue({ spiffeId: SERVER_ID, dnsNames: ['localhost'] }));
    server = new grpc.Server();
    server.addService(service, {
      who: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => {
        handled++;
        cb(null, { secret: true });
      },
    });
    port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('localhost:0', serverCredentials({ source: own, allow: `spiffe://${TD}/ns/orders/**`, logger: { error() {}, warn() {}, info() {}, debug() {} } }), (err, p) => (err ? reject(err) : resolve(p))),
    );
  });
  after(() => server?.forceShutdown());

  /** One call as a plain grpc-js client presenting `m` (no server identity check: the attacker does not care). */
  function call(m: { cert?: string; key?: string }, options: grpc.ChannelOptions = {}): Promise<grpc.status> {
    const creds = grpc.credentials.createSsl(Buffer.from(ca.bundle), m.key ? Buffer.from(m.key) : null, m.cert ? Buffer.from(m.cert) : null, { checkServerIdentity: () => undefined });
    const client = new Client(`localhost:${port}`, creds, { 'grpc.use_local_subchannel_pool': 1, ...options }) as unknown as { who(r: unknown, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null) => void): void; close(): void };
    return new Promise((resolve) =>
      client.who({}, { deadline: Date.now() + 5000 }, (err) => {
        client.close();
        resolve(err ? err.code : grpc.status.OK);
      }),
    );
  }

  async function refused(m: { cert?: string; key?: string }, codes: grpc.status[]): Promise<void> {
    const before = handled;
    const code = await call(m);
    assert.ok(codes.includes(code), `expected one of ${codes.map((c) => grpc.status[c]).join('/')}, got ${grpc.status[code]}`);
    assert.equal(handled, before, 'the handler never ran');
  }

  const REFUSED_AT_HANDSHAKE = [grpc.status.UNAVAILABLE, grpc.status.UNAUTHENTICATED];
  const REFUSED_BY_POLICY = [grpc.status.PERMISSION_DENIED, grpc.status.UNAUTHENTICATED];

  it('serves an allowed client (the control)', async () => {
    assert.equal(await call(await ca.issue(ALLOWED_ID)), grpc.status.OK);
    assert.equal(handled, 1);
  });
  it('no client certificate', async () => refused({}, REFUSED_AT_HANDSHAKE));
  it('self-signed', async () => refused(await ca.selfSigned(ALLOWED_ID), REFUSED_AT_HANDSHAKE));
  it('another CA', async () => refused(await other.issue(ALLOWED_ID), REFUSED_AT_HANDSHAKE));
  it('right CA, identity not allowed', async () => refused(await ca.issue(`spiffe://${TD}/ns/tools/sa/x`), [grpc.status.PERMISSION_DENIED]));
  it('expired', async () => refused(await ca.issue({ spiffeId: ALLOWED_ID, notBefore: new Date(Date.now() - 7200_000), notAfter: new Date(Date.now() - 3600_000) }), REFUSED_AT_HANDSHAKE));
  it('not yet valid', async () => refused(await ca.issue({ spiffeId: ALLOWED_ID, notBefore: new Date(Date.now() + 3600_000), notAfter: new Date(Date.now() + 7200_000) }), REFUSED_AT_HANDSHAKE));
  it('a CA certificate used as a leaf', async () => refused(await ca.issue({ spiffeId: ALLOWED_ID, isCA: true }), [...REFUSED_AT_HANDSHAKE, ...REFUSED_BY_POLICY]));
  it('two URI SANs', async () => refused(await ca.issue({ uris: [ALLOWED_ID, `spiffe://${TD}/ns/orders/sa/b`] }), REFUSED_BY_POLICY));
  it('the SAN-injection certificate', async () => refused(await ca.issue({ uris: [`spiffe://evil.example/x, URI:${ALLOWED_ID}`] }), REFUSED_BY_POLICY));
  it('a DNS-only certificate where a SPIFFE rule is required', async () => refused(await ca.issue({ dnsNames: ['orders.prod.example'] }), REFUSED_BY_POLICY));

  it('plaintext HTTP/2 sent to the TLS port gets no answer from a handler', async () => {
    const before = handled;
    const insecure = new Client(`localhost:${port}`, grpc.credentials.createInsecure()) as unknown as { who(r: unknown, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null) => void): void; close(): void };
    const code = await new Promise<grpc.status>((resolve) => insecure.who({}, { deadline: Date.now() + 3000 }, (err) => resolve(err ? err.code : grpc.status.OK)));
    insecure.close();
    assert.notEqual(code, grpc.status.OK);
    assert.equal(handled, before);
  });

  it('a TCP connection that never starts its handshake does not reach a handler', async () => {
    const before = handled;
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => {});
    await new Promise((r) => socket.once('connect', r));
    socket.write('not tls at all\r\n\r\n');
    await new Promise((r) => socket.once('close', r));
    assert.equal(handled, before);
  });
});
