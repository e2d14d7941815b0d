import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { codes, fileSource, formatBundleMap, type FileSource, type MeshlessError, silentLogger } from '@meshless/core';
import { createServer, type MeshlessServer, type PeerRefusal } from '@meshless/http';
import { createTestCA, type IssuedCertificate, kubernetesVolume, type KubernetesVolume, type TestCA, waitFor } from '@meshless/testing';

// A server whose federated bundles come from a bundle map on a mount of its own (a ConfigMap),
// swapped the way the kubelet does: a new partner CA is accepted within the rotation bound, a
// removed trust domain's live connections are retired and its new ones refused (NO_BUNDLE), and
// a broken map keeps the last good bundles.

const ROTATION_BOUND_MS = 2000;
const SERVER_ID = 'spiffe://prod.example/ns/pay/sa/api';
const PARTNER_ID = 'spiffe://partner.example/ns/billing/sa/api';
const OWN_CLIENT_ID = 'spiffe://prod.example/ns/web/sa/front';

/** A kept-alive TLS client: one request at a time over one connection. */
class Client {
  readonly socket: tls.TLSSocket;
  closed = false;
  #buffer = '';

  private constructor(socket: tls.TLSSocket) {
    this.socket = socket;
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (this.#buffer += d));
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => undefined);
  }

  static async connect(port: number, m: IssuedCertificate): Promise<Client> {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', cert: m.cert, key: m.key, rejectUnauthorized: false });
    const client = new Client(socket);
    await Promise.race([once(socket, 'secureConnect'), once(socket, 'close').then(() => undefined)]);
    return client;
  }

  /** Sends GET / and resolves with the status line, or '' when the connection closes first. */
  async get(): Promise<string> {
    if (this.closed) return '';
    this.#buffer = '';
    this.socket.write('GET / HTTP/1.1\r\nhost: localhost\r\n\r\n');
    await waitFor(() => this.closed || /\r\n\r\nok$/.test(this.#buffer), 5000, 'a response or the close');
    return this.#buffer.split('\r\n')[0] ?? '';
  }

  close(): void {
    this.socket.destroy();
  }
}

describe('federation over HTTP: bundle map rotation (kubelet-style swaps of the ConfigMap mount)', function () {
  this.timeout(60_000);
  let prod: TestCA;
  let partner: TestCA;
  let partnerNext: TestCA;
  let tmp: string;
  let tlsVolume: KubernetesVolume;
  let trustVolume: KubernetesVolume;
  let source: FileSource;
  let server: MeshlessServer;
  let port: number;
  const refusals: PeerRefusal[] = [];
  const errors: MeshlessError[] = [];
  const clients: Client[] = [];

  const map = (entries: Record<string, TestCA[]>, sequence: number): string =>
    formatBundleMap(Object.fromEntries(Object.entries(entries).map(([td, cas]) => [td, cas.map((c) => new X509Certificate(c.certPem))])), { sequence });
  const connect = async (m: IssuedCertificate): Promise<Client> => {
    const c = await Client.connect(port, m);
    clients.push(c);
    return c;
  };

  before(async () => {
    [prod, partner, partnerNext] = await Promise.all([
      createTestCA({ trustDomain: 'prod.example' }),
      createTestCA({ trustDomain: 'partner.example' }),
      createTestCA({ trustDomain: 'partner.example' }),
    ]);
    tmp = await mkdtemp(path.join(tmpdir(), 'meshless-federation-http-'));
    tlsVolume = kubernetesVolume(path.join(tmp, 'tls'));
    trustVolume = kubernetesVolume(path.join(tmp, 'federation'));
    const own = await prod.issue({ spiffeId: SERVER_ID, dnsNames: ['localhost'] });
    await tlsVolume.write({ 'tls.crt': own.cert, 'tls.key': own.key, 'ca.crt': own.ca });
    await trustVolume.write({ 'bundles.json': map({ 'partner.example': [partner] }, 1) });
    source = await fileSource({ dir: path.join(tmp, 'tls'), bundleMap: path.join(tmp, 'federation', 'bundles.json') }, { logger: silentLogger, recheckIntervalMs: 0 });
    source.on('error', (e) => errors.push(e));
    server = createServer({ source, allow: ['spiffe://partner.example/ns/billing/**', 'spiffe://prod.example/ns/web/**'], logger: silentLogger }, (_req, res) => res.end('ok'));
    server.on('peerRefused', (r) => refusals.push(r));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    for (const c of clients) c.close();
    server?.close();
    server?.closeAllConnections();
    await source?.close();
    await Promise.all([tlsVolume?.close(), trustVolume?.close()]);
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('accepts a partner workload whose CA is in the map, and refuses one of a CA that is not (yet)', async () => {
    const ok = await connect(await partner.issue(PARTNER_ID));
    assert.match(await ok.get(), /^HTTP\/1\.1 200/);
    const before = refusals.length;
    const next = await connect(await partnerNext.issue(PARTNER_ID));
    assert.equal(await next.get(), '');
    const refusal = await waitFor(() => refusals[before], 5000, 'a peerRefused event');
    assert.equal(refusal.failure, 'unverified');
  });

  it('a new partner CA in the map is accepted within the rotation bound', async () => {
    const client = await partnerNext.issue(PARTNER_ID);
    const started = Date.now();
    await trustVolume.write({ 'bundles.json': map({ 'partner.example': [partner, partnerNext] }, 2) });
    await waitFor(async () => {
      const c = await connect(client);
      const status = await c.get();
      c.close();
      return /^HTTP\/1\.1 200/.test(status);
    }, ROTATION_BOUND_MS, 'a request of the new partner CA to be served');
    console.log(`      (map write → first request of the new partner CA served in ${Date.now() - started} ms; bound ${ROTATION_BOUND_MS} ms)`);
  });

  it('a broken map keeps the last good bundles (coded error naming the file and trust domain)', async () => {
    const live = await connect(await partner.issue(PARTNER_ID));
    assert.match(await live.get(), /^HTTP\/1\.1 200/);
    await trustVolume.write({ 'bundles.json': '{ "trust_domains": { "partner.example": { "keys": [ { "use": "x509-svid", "kty": "EC", "x5c": [] } ] } } }' });
    const err = (await waitFor(() => errors.find((e) => e.code === codes.BUNDLE_INVALID), ROTATION_BOUND_MS, 'a BUNDLE_INVALID error'))!;
    assert.match(err.message, /trust domain partner\.example: keys\[0\]/);
    assert.equal(err.file, path.join(tmp, 'federation', 'bundles.json'));
    assert.match(await live.get(), /^HTTP\/1\.1 200/, 'the live partner connection keeps being served');
    const fresh = await connect(await partnerNext.issue(PARTNER_ID));
    assert.match(await fresh.get(), /^HTTP\/1\.1 200/, 'new partner connections too (the last good map)');
  });

  it('a trust domain removed from the map: its live connections are retired, new ones refused; our own peers stay', async () => {
    const partnerLive = await connect(await partner.issue(PARTNER_ID));
    const ownLive = await connect(await prod.issue(OWN_CLIENT_ID));
    assert.match(await partnerLive.get(), /^HTTP\/1\.1 200/);
    assert.match(await ownLive.get(), /^HTTP\/1\.1 200/);
    await trustVolume.write({ 'bundles.json': map({}, 3) });
    await waitFor(() => partnerLive.closed, ROTATION_BOUND_MS, 'the partner connection to be retired');
    assert.equal(await partnerLive.get(), '');
    assert.match(await ownLive.get(), /^HTTP\/1\.1 200/, 'our own trust domain\'s peer still verifies');
    assert.equal(source.current().bundles.has('partner.example'), false);
    // The partner CA left OpenSSL's pool too: the handshake itself fails.
    const before = refusals.length;
    const again = await connect(await partner.issue(PARTNER_ID));
    assert.equal(await again.get(), '');
    const refusal = await waitFor(() => refusals[before], 5000, 'a refusal');
    assert.equal(refusal.failure, 'unverified');
  });

  it('a partner CA reachable only through another trust domain\'s bundle: refused with NO_BUNDLE', async () => {
    // A misconfigured map files the partner CA under other.example: OpenSSL accepts the chain,
    // meshless does not (no bundle for partner.example).
    await trustVolume.write({ 'bundles.json': map({ 'other.example': [partner] }, 4) });
    await waitFor(() => source.current().bundles.has('other.example'), ROTATION_BOUND_MS, 'the map with other.example');
    const before = refusals.length;
    const c = await connect(await partner.issue(PARTNER_ID));
    assert.equal(await c.get(), '');
    const refusal = await waitFor(() => refusals[before], 5000, 'a refusal');
    assert.equal(refusal.error.code, codes.NO_BUNDLE, refusal.reason);
    assert.match(refusal.reason, /partner\.example, for which no trust bundle is configured/);
  });
});
