import assert from 'node:assert/strict';
import http from 'node:http';
import { MeshlessError, codes, loadCredential, staticSource } from '@meshless/core';
import { healthHandler, type HealthBody } from '@meshless/http';
import { FRONTEND_ID, SERVER_ID, createPki, listen, type Pki } from '@meshless/fixtures/http-server';
import { manualSource, type ManualSource } from '@meshless/testing';

async function probe(port: number, method = 'GET'): Promise<{ status: number; body: string; type: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: '/healthz' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, type: res.headers['content-type'] }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('healthHandler', function () {
  let pki: Pki;
  let source: ManualSource;
  let server: http.Server;
  let port: number;
  before(async () => {
    pki = await createPki();
    source = manualSource(pki.server);
    server = http.createServer(healthHandler(source));
    port = await listen(server);
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  afterEach(() => source.setHealth(undefined));

  it('answers 200 with the state, identity and generation while fresh', async () => {
    const reply = await probe(port);
    assert.equal(reply.status, 200);
    assert.match(reply.type ?? '', /^application\/json/);
    const body = JSON.parse(reply.body) as HealthBody;
    assert.equal(body.status, 'ok');
    assert.equal(body.state, 'fresh');
    assert.equal(body.identity, SERVER_ID);
    assert.equal(body.generation, 1);
    assert.equal(body.notAfter, pki.server.notAfter.toISOString());
    assert.equal(body.lastError, undefined);
  });

  it('stays 200 while expiring, and while stale with a certificate still valid (naming the error code)', async () => {
    source.setHealth({ state: 'expiring' });
    assert.equal((await probe(port)).status, 200);
    source.setHealth({ state: 'stale', lastError: new MeshlessError(codes.KEY_MISMATCH, 'torn write in /etc/tls/tls.key') });
    const reply = await probe(port);
    assert.equal(reply.status, 200);
    const body = JSON.parse(reply.body) as HealthBody;
    assert.equal(body.state, 'stale');
    assert.equal(body.lastError, codes.KEY_MISMATCH);
    assert.ok(!reply.body.includes('/etc/tls'), 'the body carries the code, not the message');
  });

  it('answers 503 when stale with an expired certificate, or expired', async () => {
    source.setHealth({ state: 'stale', notAfter: new Date(Date.now() - 1000) });
    const stale = await probe(port);
    assert.equal(stale.status, 503);
    assert.equal((JSON.parse(stale.body) as HealthBody).status, 'unavailable');
    source.setHealth({ state: 'expired', notAfter: new Date(Date.now() - 1000) });
    assert.equal((await probe(port)).status, 503);
  });

  it('answers 503 for a real credential past its notAfter, and accepts a bare Credential', async () => {
    const shortLived = await pki.ca.issue({ spiffeId: FRONTEND_ID, notBefore: new Date(Date.now() - 120_000), notAfter: new Date(Date.now() - 60_000) });
    const expired = loadCredential(shortLived, { now: Date.now() - 90_000 });
    const plain = http.createServer(healthHandler(expired));
    const plainPort = await listen(plain);
    try {
      const reply = await probe(plainPort);
      assert.equal(reply.status, 503);
      assert.equal((JSON.parse(reply.body) as HealthBody).state, 'expired');
      assert.equal((await probe(plainPort, 'HEAD')).body, '');
    } finally {
      await new Promise<void>((resolve) => plain.close(() => resolve()));
    }
    assert.equal(staticSource(expired).health().state, 'expired');
  });
});
