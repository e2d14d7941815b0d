// The contract every framework integration keeps, run against a real app on 127.0.0.1:
// allowed client → 200 with its identity echoed; route rule denies → 403 JSON; server-wide rule
// denies → refused at the handshake, the framework never sees a request; plaintext → fails.
import assert from 'node:assert/strict';
import http from 'node:http';
import { createTestCA } from '@meshless/testing';
import { BATCH_ID, FRONTEND_ID, TD, createPki, get, rawRequest, type ClientCert, type Pki } from '@meshless/fixtures/http-server';

export { BATCH_ID, FRONTEND_ID, TD };
/** Valid certificate from the same CA, but not in the server-wide allow-list. */
export const STRANGER_ID = `spiffe://${TD}/ns/evil/sa/scraper`;
/** The server-wide allow-list every framework app under test uses. */
export const SERVER_ALLOW = [FRONTEND_ID, BATCH_ID];
/** The rule of the guarded route `/admin`: only the frontend. */
export const ADMIN_ALLOW = FRONTEND_ID;

export interface Pkis extends Pki {
  stranger: ClientCert;
}

export async function createFrameworkPki(): Promise<Pkis> {
  const pki = await createPki();
  return { ...pki, stranger: await pki.ca.issue(STRANGER_ID) };
}

/** An app under test: GET /whoami (no route rule) and GET /admin (ADMIN_ALLOW), both echo `{ peer }`. */
export interface RunningApp {
  port: number;
  /** How many requests reached a handler of the framework. */
  handled(): number;
  /** Refusals the meshless server reported (`peerRefused`), if the app exposes its server. */
  refusals?(): { failure: string; peer?: unknown }[];
  close(): Promise<void>;
}

/** Defines the four contract tests for one framework. */
export function conformance(name: string, start: (pki: Pkis) => Promise<RunningApp>): void {
  describe(`${name}: the framework contract`, function () {
    this.timeout(30_000);
    let pki: Pkis;
    let app: RunningApp;
    before(async () => {
      pki = await createFrameworkPki();
      app = await start(pki);
    });
    after(() => app?.close());

    it('an allowed client gets 200 and sees its identity echoed, on an open and a guarded route', async () => {
      for (const path of ['/whoami', '/admin']) {
        const reply = await get(app.port, path, pki.frontend);
        assert.equal(reply.status, 200, `${path}: ${reply.body}`);
        assert.equal((JSON.parse(reply.body) as { peer: string }).peer, FRONTEND_ID, path);
      }
      const batch = await get(app.port, '/whoami', pki.batch);
      assert.equal(batch.status, 200, batch.body);
      assert.equal((JSON.parse(batch.body) as { peer: string }).peer, BATCH_ID);
    });

    it('a client the route rule denies gets 403 {"error":"forbidden","code":"MESHLESS_ERR_PEER_DENIED"}; the handler does not run', async () => {
      const before = app.handled();
      const reply = await get(app.port, '/admin', pki.batch);
      assert.equal(reply.status, 403, reply.body);
      assert.match(String(reply.headers['content-type']), /^application\/json/);
      assert.deepEqual(JSON.parse(reply.body), { error: 'forbidden', code: 'MESHLESS_ERR_PEER_DENIED' });
      assert.equal(app.handled(), before);
    });

    it('a client the server-wide rule denies is refused at the handshake: no request reaches the framework', async () => {
      const before = app.handled();
      const result = await rawRequest(app.port, { cert: pki.stranger.cert, key: pki.stranger.key, ca: pki.stranger.ca }, 'GET /whoami HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
      assert.equal(result.data, '', 'no HTTP response at all');
      await assert.rejects(get(app.port, '/whoami', pki.stranger));
      assert.equal(app.handled(), before);
      if (app.refusals) assert.ok(app.refusals().some((r) => r.failure === 'denied' && String(r.peer) === STRANGER_ID), JSON.stringify(app.refusals()));
    });

    it('a plaintext client fails, and so does a TLS client without a certificate', async () => {
      const before = app.handled();
      const plain = await new Promise<string>((resolve) => {
        const req = http.get({ host: '127.0.0.1', port: app.port, path: '/whoami' }, (res) => {
          res.resume();
          resolve(`status ${res.statusCode}`);
        });
        req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
      });
      assert.ok(!plain.startsWith('status 2'), `plaintext got ${plain}`);
      const anonymous = await rawRequest(app.port, { ca: pki.frontend.ca }, 'GET /whoami HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
      assert.equal(anonymous.data, '');
      assert.equal(app.handled(), before);
    });
  });
}

/** A CA the server does not trust, for tests that need one. */
export const otherCa = () => createTestCA({ trustDomain: TD });
