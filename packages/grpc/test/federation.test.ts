import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import grpc from '@grpc/grpc-js';
import { loadCredential, type FederatedBundles } from '@meshless/core';
import { channelCredentials, serverCredentials } from '@meshless/grpc';
import { createTestCA, type IssuedCertificate, recordingLogger, type TestCA, twoTrustDomains, type TwoTrustDomains } from '@meshless/testing';
import { closeAfterEach, echoClient, failure, serverStream, startServer, unary, type Echo } from '@meshless/fixtures/grpc-harness';

// Two trust domains over gRPC, both directions: a peer's chain is checked only against the bundle
// of the trust domain its own SPIFFE ID names.

const PROD = 'prod.example';
const PARTNER = 'partner.example';
const PROD_SERVER = `spiffe://${PROD}/ns/pay/sa/ledger`;
const PARTNER_SERVER = `spiffe://${PARTNER}/ns/pay/sa/ledger`;
const PROD_CLIENT = `spiffe://${PROD}/ns/web/sa/frontend`;
const PARTNER_CLIENT = `spiffe://${PARTNER}/ns/shop/sa/checkout`;

describe('@meshless/grpc federation: each peer against its own trust domain bundle', function () {
  this.timeout(30_000);
  let prod: TestCA;
  let partner: TestCA;
  let federationOf: TwoTrustDomains['federationOf'];
  const { clients, servers: running } = closeAfterEach();

  before(async () => {
    ({ home: prod, partner, federationOf } = await twoTrustDomains({ home: PROD, partner: PARTNER }));
  });

  const cred = (issued: IssuedCertificate, federation?: FederatedBundles) => loadCredential({ ...issued, ...(federation ? { federation } : {}) });

  async function server(issued: IssuedCertificate, allow: string[], federation?: FederatedBundles): Promise<{ target: string; logger: ReturnType<typeof recordingLogger> }> {
    const logger = recordingLogger();
    const r = await startServer(serverCredentials({ source: cred(issued, federation), allow, logger }));
    running.push(r);
    return { target: r.target, logger };
  }

  function client(target: string, issued: IssuedCertificate, allow: string[], federation?: FederatedBundles): Echo {
    const c = echoClient(target, channelCredentials({ source: cred(issued, federation), allow, logger: recordingLogger() }));
    clients.push(c);
    return c;
  }

  it('a prod server accepts a partner client signed by the partner CA, and refuses a partner-signed client claiming prod (UNAUTHENTICATED)', async () => {
    const s = await server(await prod.issue({ spiffeId: PROD_SERVER, dnsNames: ['localhost'] }), [`spiffe://${PROD}/**`, `spiffe://${PARTNER}/**`], federationOf(prod));
    const legit = client(s.target, await partner.issue(PARTNER_CLIENT), [PROD_SERVER], federationOf(partner));
    assert.equal((await unary(legit, 'unary', {})).peer, PARTNER_CLIENT);
    // The attacker trusts both roots so that it accepts our server; its certificate claims prod.
    const forgedIssued = await partner.issue(PROD_CLIENT);
    const forged = client(s.target, { ...forgedIssued, ca: partner.bundle + prod.bundle }, [PROD_SERVER]);
    const err = await failure(unary(forged, 'unary', {}));
    assert.equal(err.code, grpc.status.UNAUTHENTICATED, err.details);
    assert.match(err.details, /trust bundle of prod\.example/);
  });

  it('a prod server without a partner bundle refuses partner clients (NO_BUNDLE), though the partner CA is in its flattened bundle file', async () => {
    const issued = await prod.issue({ spiffeId: PROD_SERVER, dnsNames: ['localhost'] });
    const s = await server({ ...issued, ca: prod.bundle + partner.bundle }, [`spiffe://${PARTNER}/**`]);
    const legit = client(s.target, await partner.issue(PARTNER_CLIENT), [PROD_SERVER], federationOf(partner));
    const err = await failure(unary(legit, 'unary', {}));
    assert.equal(err.code, grpc.status.UNAUTHENTICATED, err.details);
    assert.match(err.details, /no trust bundle is configured/);
  });

  it('a prod client accepts a partner server and refuses a partner-signed server claiming prod (the call fails UNAVAILABLE)', async () => {
    const good = await server(await partner.issue({ spiffeId: PARTNER_SERVER, dnsNames: ['localhost'] }), [`spiffe://${PROD}/**`], federationOf(partner));
    const forged = await server(await partner.issue({ spiffeId: PROD_SERVER, dnsNames: ['localhost'] }), [`spiffe://${PROD}/**`], federationOf(partner));
    const me = await prod.issue(PROD_CLIENT);
    const allow = [PARTNER_SERVER, PROD_SERVER];
    assert.equal((await unary(client(good.target, me, allow, federationOf(prod)), 'unary', {})).peer, PROD_CLIENT);
    const err = await failure(unary(client(forged.target, me, allow, federationOf(prod)), 'unary', {}));
    assert.equal(err.code, grpc.status.UNAVAILABLE);
  });

  it('a CA certificate presented as a client leaf is refused under "*"', async () => {
    const s = await server(await prod.issue({ spiffeId: PROD_SERVER, dnsNames: ['localhost'] }), ['*']);
    // loadCredential refuses a CA as our own identity, so the attacker uses plain grpc-js.
    const issued = await prod.issue({ spiffeId: PROD_CLIENT, isCA: true });
    const raw = echoClient(s.target, grpc.credentials.createSsl(Buffer.from(prod.bundle), Buffer.from(issued.key), Buffer.from(issued.cert)));
    clients.push(raw);
    const err = await failure(unary(raw, 'unary', {}));
    assert.ok(err.code === grpc.status.UNAUTHENTICATED || err.code === grpc.status.UNAVAILABLE, String(err.code));
  });
});

describe('@meshless/grpc: a client certificate that expires during a call', function () {
  this.timeout(30_000);

  it('retires the connection at notAfter: its open stream is cut after retireGraceMs, new calls are refused', async () => {
    const ca = await createTestCA({ trustDomain: PROD });
    const running = await startServer(serverCredentials({ source: loadCredential(await ca.issue({ spiffeId: PROD_SERVER, dnsNames: ['localhost'] })), allow: `spiffe://${PROD}/**`, retireGraceMs: 300, logger: recordingLogger() }));
    const shortLived = await ca.issue({ spiffeId: PROD_CLIENT, ttlMs: 4_000 }); // whole seconds: 3–4 s of life
    const c = echoClient(running.target, channelCredentials({ source: loadCredential(shortLived), allow: PROD_SERVER, logger: recordingLogger() }));
    try {
      const notAfter = new X509Certificate(shortLived.cert).validTo;
      const started = Date.now();
      // A stream that would run 20 s: 200 messages, one every 100 ms.
      const err = await serverStream(c, { n: 200, intervalMs: 100 }, 25_000).then(
        () => undefined,
        (e: grpc.ServiceError) => e,
      );
      assert.ok(err, 'the stream did not run to its end');
      const endedAt = Date.now();
      assert.ok(endedAt >= Date.parse(notAfter) - 1000, `cut at ${endedAt - started} ms, before the certificate expired`);
      assert.ok(endedAt < Date.parse(notAfter) + 5_000, `cut ${endedAt - Date.parse(notAfter)} ms after notAfter`);
      const next = await failure(unary(c, 'unary', {}));
      assert.ok(next.code === grpc.status.UNAUTHENTICATED || next.code === grpc.status.UNAVAILABLE, String(next.code));
    } finally {
      c.close();
      await running.close();
    }
  });
});
