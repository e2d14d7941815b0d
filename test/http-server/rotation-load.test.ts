import assert from 'node:assert/strict';
import type { TLSSocket } from 'node:tls';
import { Pool, buildConnector } from 'undici';
import type { Credential } from '@meshless/core';
import { createServer, type MeshlessServer, type PeerRetirement } from '@meshless/http';
import { FRONTEND_ID, ManualSource, closeServer, createPki, listen, recordingLogger, serverCredential, type Pki } from '../../packages/http/test/server-fixtures.js';

const DURATION_MS = 8_000;
const CLIENTS = 24;
const ROTATE_EVERY_MS = 500;
// Connections age out during the run (so new ones open under every generation). The server drains
// a planned retirement over min(keepAliveTimeout, half the span) ≈ 1.5 s; the pool closes idle
// connections after 1 s (keepAliveMaxTimeout), so it never reuses one the server is closing.
const MAX_CONNECTION_AGE_MS = 3_000;

interface NewConnection {
  /** Generation served when the client started connecting. */
  generationAtStart: number;
  /** Serial of the server certificate; a resumed TLS 1.3 session shows none. */
  serial: string | undefined;
  resumed: boolean;
}

describe('createServer: rotation under load (undici Pool, keep-alive)', function () {
  this.timeout(DURATION_MS + 20_000);
  let pki: Pki;
  let source: ManualSource;
  let server: MeshlessServer;
  let port: number;
  let pool: Pool | undefined;
  before(async () => {
    pki = await createPki();
    source = new ManualSource(pki.server);
    server = createServer({ source, allow: FRONTEND_ID, maxConnectionAgeMs: MAX_CONNECTION_AGE_MS, logger: recordingLogger() }, (_req, res) => {
      res.setHeader('Content-Type', 'text/plain');
      res.end('ok');
    });
    port = await listen(server);
  });
  after(async () => {
    await pool?.destroy();
    await closeServer(server);
  });

  it(`drops no request while the credential rotates every ${ROTATE_EVERY_MS} ms and connections age out; new connections present the new serial`, async () => {
    // Mint every generation first, so the load loop is not competing with key generation.
    const generations: Credential[] = [];
    for (let g = 2; g <= 1 + DURATION_MS / ROTATE_EVERY_MS; g++) generations.push(await serverCredential(pki.ca, pki.ca.bundle, g));
    const serialOf = new Map<string, number>([[pki.server.identity.serialNumber, 1], ...generations.map((c) => [c.identity.serialNumber, c.generation] as [string, number])]);

    const connections: NewConnection[] = [];
    // No session cache: a resumed TLS 1.3 session shows the client no certificate, and every new
    // connection here must show which serial the server presents.
    const connector = buildConnector({ cert: pki.frontend.cert, key: pki.frontend.key, ca: pki.ca.bundle, servername: 'localhost', maxCachedSessions: 0 });
    pool = new Pool(`https://localhost:${port}`, {
      connections: CLIENTS,
      pipelining: 1,
      keepAliveMaxTimeout: 1_000,
      connect: (options, callback) => {
        const record: NewConnection = { generationAtStart: source.current().generation, serial: undefined, resumed: false };
        connections.push(record);
        connector({ ...options, hostname: '127.0.0.1', servername: 'localhost' }, (err, socket) => {
          if (socket) {
            record.resumed = (socket as TLSSocket).isSessionReused();
            record.serial = (socket as TLSSocket).getPeerX509Certificate()?.serialNumber;
          }
          callback(err as Error & null, socket as TLSSocket & null);
        });
      },
    });

    const retirements: PeerRetirement[] = [];
    server.on('peerRetired', (r) => retirements.push(r));
    let ok = 0;
    const failures: string[] = [];
    const deadline = Date.now() + DURATION_MS;
    const rotator = setInterval(() => {
      const next = generations.shift();
      if (next) source.set(next);
    }, ROTATE_EVERY_MS);
    try {
      await Promise.all(
        Array.from({ length: CLIENTS }, async () => {
          while (Date.now() < deadline) {
            try {
              const { statusCode, body } = await pool!.request({ path: '/', method: 'GET' });
              const text = await body.text();
              if (statusCode === 200 && text === 'ok') ok++;
              else failures.push(`status ${statusCode}`);
            } catch (err) {
              failures.push(`${(err as Error & { code?: string }).code ?? ''} ${(err as Error).message}`);
            }
          }
        }),
      );
    } finally {
      clearInterval(rotator);
    }
    const rotations = source.current().generation - 1;
    const late = connections.filter((c) => c.generationAtStart > 1 && !c.resumed);
    const stale = late.filter((c) => (serialOf.get(c.serial ?? '') ?? 0) < c.generationAtStart);
    console.log(
      `      ${ok} requests in ${DURATION_MS} ms (${Math.round((ok * 1000) / DURATION_MS)}/s), ${failures.length} failed, ${rotations} rotations, ` +
        `${connections.length} connections opened, ${retirements.length} retired by age`,
    );
    assert.deepEqual(failures.slice(0, 5), [], `${failures.length} requests failed`);
    assert.ok(ok >= CLIENTS * 10, `only ${ok} requests completed`);
    assert.ok(rotations >= DURATION_MS / ROTATE_EVERY_MS / 2, `only ${rotations} rotations happened`);
    assert.ok(retirements.length >= CLIENTS, `connections aged out and were retired (${retirements.length})`);
    assert.ok(late.length >= CLIENTS, `new connections were opened during the rotations (${late.length})`);
    assert.deepEqual(stale, [], 'every new connection presents the serial current when it connected, or newer');
  });
});
