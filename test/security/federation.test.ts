import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { codes, isMeshlessError, loadCredential, type Credential, type FederatedBundles, silentLogger } from '@meshless/core';
import { createAgent, createServer, type MeshlessServer } from '@meshless/http';
import { createTestCA, type IssuedCertificate, manualSource, type ManualSource, type TestCA, twoTrustDomains, type TwoTrustDomains, waitFor } from '@meshless/testing';
import { request } from 'undici';
import { hasTool, run } from '../http-server/tools.js';
import { rawCall, startRecordingServer, type RawCall, type RecordingServer } from './recording-server.js';

// Two trust domains, each with its own CA. A peer's chain is checked only against the bundle of
// the trust domain its own SPIFFE ID names: the partner CA can vouch for partner identities, never
// for ours, even though OpenSSL holds both roots (so the handshake itself completes).

const PROD = 'prod.example';
const PARTNER = 'partner.example';
const SERVER_ID = `spiffe://${PROD}/ns/pay/sa/api`;
const PARTNER_CLIENT = `spiffe://${PARTNER}/ns/shop/sa/checkout`;
const FORGED_CLIENT = `spiffe://${PROD}/ns/web/sa/frontend`; // claims our trust domain, signed by the partner CA

describe('security: federation — every peer checked against its own trust domain bundle (HTTP)', function () {
  this.timeout(30_000);
  let prod: TestCA;
  let partner: TestCA;
  let federationOf: TwoTrustDomains['federationOf'];
  let serverCert: IssuedCertificate;
  let source: ManualSource;
  let rec: RecordingServer;
  let partnerClient: IssuedCertificate;
  let forgedClient: IssuedCertificate;

  const serverCredential = (federation: FederatedBundles | undefined, ca = prod.bundle, generation = 1): Credential =>
    loadCredential({ ...serverCert, ca, ...(federation ? { federation } : {}) }, { generation });

  before(async () => {
    ({ home: prod, partner, federationOf } = await twoTrustDomains({ home: PROD, partner: PARTNER }));
    [serverCert, partnerClient, forgedClient] = await Promise.all([
      prod.issue({ spiffeId: SERVER_ID, dnsNames: ['localhost'] }),
      partner.issue(PARTNER_CLIENT),
      partner.issue(FORGED_CLIENT),
    ]);
  });

  beforeEach(async () => {
    source = manualSource(serverCredential(federationOf(prod)));
    rec = await startRecordingServer({ source, allow: [`spiffe://${PROD}/**`, `spiffe://${PARTNER}/**`], logger: silentLogger });
  });

  afterEach(() => rec.close());

  /** One request over a raw TLS connection; returns the status line, the session and whether it resumed. */
  const call = (client: IssuedCertificate, url: string, session?: Buffer, keepOpen = false): Promise<RawCall> =>
    rawCall(rec.port, { cert: client.cert, key: client.key, ca: prod.bundle }, url, { session, keepOpen });

  it('accepts a partner workload signed by the partner CA when a rule allows it', async () => {
    const r = await call(partnerClient, '/partner');
    assert.equal(r.status, 'HTTP/1.1 200');
    assert.deepEqual(rec.handled, ['/partner']);
  });

  it('refuses a certificate that claims our trust domain but is signed by the partner CA, before any request is parsed', async () => {
    const r = await call(forgedClient, '/forged');
    assert.equal(r.status, '', 'no HTTP response');
    assert.deepEqual(rec.handled, []);
    const refusal = await waitFor(() => rec.refusals[0], 5000, 'a refusal');
    assert.equal(refusal.failure, 'unverified');
    assert.equal(refusal.peer?.spiffeId, FORGED_CLIENT);
    assert.match(refusal.reason, /does not verify to the trust bundle of prod\.example/);
  });

  it('refuses a partner workload with MESHLESS_ERR_NO_BUNDLE when no partner bundle is configured, though its CA is in OpenSSL\'s pool (a flattened bundle file)', async () => {
    // spiffe-helper's include_federated_domains flattens every trust domain's roots into one file.
    source.set(serverCredential(undefined, prod.bundle + partner.bundle, 2));
    const r = await call(partnerClient, '/no-bundle');
    assert.equal(r.status, '');
    assert.deepEqual(rec.handled, []);
    const refusal = await waitFor(() => rec.refusals[0], 5000, 'a refusal');
    assert.equal(refusal.error.code, codes.NO_BUNDLE);
    assert.match(refusal.error.message, /partner\.example.*no trust bundle is configured.*federation/);
    // Every CA in our own bundle file still counts for our own trust domain.
    const own = await prod.issue(`spiffe://${PROD}/ns/web/sa/frontend`);
    assert.equal((await call(own, '/own')).status, 'HTTP/1.1 200');
  });

  it('refuses a resumed partner session once the partner bundle is removed, and retires its live connection', async () => {
    const first = await call(partnerClient, '/first');
    assert.ok(first.session);
    const live = await call(partnerClient, '/live', undefined, true);
    assert.equal(live.status, 'HTTP/1.1 200');
    source.set(serverCredential(undefined, prod.bundle, 2));
    const retirement = await waitFor(() => rec.retired.find((r) => r.peer.spiffeId === PARTNER_CLIENT), 5000, 'the partner connection retired');
    assert.equal(retirement!.reason, "trust-changed");
    await waitFor(() => live.socket.destroyed || live.socket.readableEnded, 5000, 'the live connection closed');
    const again = await call(partnerClient, '/resumed', first.session);
    assert.equal(again.status, '', 'no response on a resumed session after the partner bundle went away');
    assert.ok(!rec.handled.includes('/resumed'));
  });

  it('keeps resumed and live connections whose trust domain bundle did not change when another trust domain is added', async () => {
    const ownClient = await prod.issue(`spiffe://${PROD}/ns/web/sa/frontend`);
    const first = await call(ownClient, '/first');
    const resumedLive = await call(ownClient, '/live', first.session, true);
    assert.equal(resumedLive.resumed, true);
    const third = await createTestCA({ trustDomain: 'third.example' });
    source.set(serverCredential({ [PARTNER]: partner.bundle, 'third.example': third.bundle }, prod.bundle, 2));
    // Not retired: its chain still verifies to prod.example's bundle (kept from accept time).
    resumedLive.socket.write('GET /after HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n');
    await once(resumedLive.socket, 'close');
    assert.ok(rec.handled.includes('/after'));
    assert.equal(rec.retired.length, 0);
  });

  it('curl and openssl s_client with the forged certificate are refused; with the partner certificate curl is answered', async function () {
    if (!(await hasTool('curl'))) this.skip();
    const dir = await mkdtemp(path.join(os.tmpdir(), 'meshless-federation-'));
    try {
      const files = async (name: string, issued: IssuedCertificate): Promise<string[]> => {
        await writeFile(path.join(dir, `${name}.crt`), issued.cert);
        await writeFile(path.join(dir, `${name}.key`), issued.key);
        return ['--cert', path.join(dir, `${name}.crt`), '--key', path.join(dir, `${name}.key`)];
      };
      await writeFile(path.join(dir, 'ca.crt'), prod.bundle);
      const base = ['-sS', '--max-time', '10', '--cacert', path.join(dir, 'ca.crt'), '--resolve', `localhost:${rec.port}:127.0.0.1`];
      const ok = await run('curl', [...base, ...(await files('partner', partnerClient)), `https://localhost:${rec.port}/curl-partner`]);
      assert.equal(ok.stdout, 'ok', ok.stderr);
      const forged = await run('curl', [...base, ...(await files('forged', forgedClient)), `https://localhost:${rec.port}/curl-forged`]);
      assert.notEqual(forged.code, 0, 'curl with the forged certificate fails');
      assert.ok(!rec.handled.includes('/curl-forged'));
      if (await hasTool('openssl', 'version')) {
        const s = await run('openssl', ['s_client', '-connect', `127.0.0.1:${rec.port}`, '-servername', 'localhost', '-cert', path.join(dir, 'forged.crt'), '-key', path.join(dir, 'forged.key'), '-CAfile', path.join(dir, 'ca.crt'), '-quiet'], {
          input: 'GET /openssl-forged HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n',
          timeoutMs: 10_000,
        });
        assert.ok(!s.stdout.includes('HTTP/1.1 200'), s.stdout);
        assert.ok(!rec.handled.includes('/openssl-forged'));
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('security: federation — the client checks the server against its own trust domain bundle (createAgent)', function () {
  this.timeout(30_000);

  it('accepts a partner server, refuses a server claiming our trust domain with the partner CA, on full and resumed connections', async () => {
    const { home: prod, partner, federationOf } = await twoTrustDomains({ home: PROD, partner: PARTNER });
    const partnerServer = await partner.issue({ spiffeId: `spiffe://${PARTNER}/ns/pay/sa/api`, dnsNames: ['localhost'] });
    const forgedServer = await partner.issue({ spiffeId: SERVER_ID, dnsNames: ['localhost'] });
    const client = loadCredential({ ...(await prod.issue(`spiffe://${PROD}/ns/web/sa/frontend`)), federation: federationOf(prod) });
    const servers: MeshlessServer[] = [];
    const start = async (issued: IssuedCertificate): Promise<string> => {
      const s = createServer({ source: loadCredential({ ...issued, federation: federationOf(partner) }), allow: `spiffe://${PROD}/**`, logger: silentLogger }, (_req, res) => res.end('ok'));
      servers.push(s);
      s.listen(0, '127.0.0.1');
      await once(s, 'listening');
      return `https://localhost:${(s.address() as AddressInfo).port}`;
    };
    const agent = createAgent({ source: client, allow: [`spiffe://${PARTNER}/**`, SERVER_ID], logger: silentLogger });
    const seen: { resumed: boolean; id?: string }[] = [];
    agent.on('peerAllowed', (e: { resumed: boolean; peer: { spiffeId?: string } }) => seen.push({ resumed: e.resumed, ...(e.peer.spiffeId ? { id: e.peer.spiffeId } : {}) }));
    try {
      const good = await start(partnerServer);
      for (let i = 0; i < 2; i++) {
        const res = await request(`${good}/`, { dispatcher: agent, reset: true });
        assert.equal(await res.body.text(), 'ok');
      }
      assert.deepEqual(seen.map((s) => s.resumed), [false, true], 'the second connection resumed and was checked');
      const forged = await start(forgedServer);
      const err = await request(`${forged}/`, { dispatcher: agent }).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(isMeshlessError(err, codes.PEER_UNVERIFIED), String(err));
      assert.match((err as Error).message, /trust bundle of prod\.example/);
    } finally {
      await agent.close();
      for (const s of servers) {
        s.close();
        s.closeAllConnections();
      }
    }
  });
});
