import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TLSSocket } from 'node:tls';
import { Pool, buildConnector } from 'undici';
import { fileSource, type FileSource } from '@meshless/core';
import { type IssuedCertificate, kubernetesVolume, recordingLogger, waitFor } from '@meshless/testing';
import { createServer, type MeshlessServer, type PeerRetirement } from '@meshless/http';
import { FRONTEND_ID, SERVER_ID, closeServer, createPki, listen, type Pki } from '@meshless/fixtures/http-server';

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

describe('createServer: rotation under load (fileSource on a kubelet-style volume, undici Pool, keep-alive)', function () {
  this.timeout(DURATION_MS + 20_000);
  let pki: Pki;
  let dir: string;
  let volumeDir: string;
  let source: FileSource | undefined;
  let server: MeshlessServer;
  let port: number;
  let pool: Pool | undefined;
  const issue = (): Promise<IssuedCertificate> => pki.ca.issue({ spiffeId: SERVER_ID, dnsNames: ['localhost'] });
  const files = (c: IssuedCertificate) => ({ 'tls.crt': c.cert, 'tls.key': c.key, 'ca.crt': c.ca });
  before(async () => {
    pki = await createPki();
    dir = await mkdtemp(join(tmpdir(), 'meshless-http-load-'));
    volumeDir = join(dir, 'volume');
    const volume = kubernetesVolume(volumeDir);
    await volume.write(files(await issue()));
    await volume.close();
    source = await fileSource({ dir: volumeDir }, { logger: recordingLogger() });
    server = createServer({ source, allow: FRONTEND_ID, maxConnectionAgeMs: MAX_CONNECTION_AGE_MS, logger: recordingLogger() }, (_req, res) => {
      res.setHeader('Content-Type', 'text/plain');
      res.end('ok');
    });
    port = await listen(server);
  });
  after(async () => {
    await pool?.destroy();
    if (server) await closeServer(server);
    await source?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it(`drops no request while the mount rotates every ${ROTATE_EVERY_MS} ms and connections age out; new connections present the new serial`, async () => {
    // Mint every generation first, so the load loop is not competing with key generation.
    const generations: IssuedCertificate[] = [];
    for (let g = 1; g < DURATION_MS / ROTATE_EVERY_MS; g++) generations.push(await issue());
    const source_ = source!;
    const serialOf = new Map<string, number>([[source_.current().identity.serialNumber, source_.current().generation]]);
    source_.on('update', (credential) => serialOf.set(credential.identity.serialNumber, credential.generation));
    const firstGeneration = source_.current().generation;

    const connections: NewConnection[] = [];
    // No session cache: a resumed TLS 1.3 session shows the client no certificate, and every new
    // connection here must show which serial the server presents.
    const connector = buildConnector({ cert: pki.frontend.cert, key: pki.frontend.key, ca: pki.ca.bundle, servername: 'localhost', maxCachedSessions: 0 });
    pool = new Pool(`https://localhost:${port}`, {
      connections: CLIENTS,
      pipelining: 1,
      keepAliveMaxTimeout: 1_000,
      connect: (options, callback) => {
        const record: NewConnection = { generationAtStart: source_.current().generation, serial: undefined, resumed: false };
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
    // Stage every generation, then let a separate process swap them in, as the kubelet would.
    const staging = join(dir, 'staging');
    for (const [n, c] of generations.entries()) {
      await mkdir(join(staging, String(n)), { recursive: true });
      for (const [name, text] of Object.entries(files(c))) await writeFile(join(staging, String(n), name), text);
    }
    const lastSerial = generations[generations.length - 1]!.serialNumber.toUpperCase();
    const writer = spawn(
      process.execPath,
      ['--conditions=source', '--import=tsx', join(dirname(fileURLToPath(import.meta.url)), 'kubelet-writer.ts'), volumeDir, staging, String(ROTATE_EVERY_MS)],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let written = 0;
    writer.stdout.setEncoding('utf8').on('data', (d: string) => (written += d.split('\n').filter((l) => l.startsWith('swapped')).length));
    const writerExit = once(writer, 'exit');
    const deadline = Date.now() + DURATION_MS;
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
      const [code] = (await writerExit) as [number | null];
      assert.equal(code, 0, 'the kubelet writer exited cleanly');
    }
    await waitFor(() => source_.current().identity.serialNumber === lastSerial, 5000, 'the source to serve the last mounted certificate');
    const rotations = source_.current().generation - firstGeneration;
    const late = connections.filter((c) => c.generationAtStart > firstGeneration && !c.resumed);
    const stale = late.filter((c) => (serialOf.get(c.serial ?? '') ?? 0) < c.generationAtStart);
    console.log(
      `      ${ok} requests in ${DURATION_MS} ms (${Math.round((ok * 1000) / DURATION_MS)}/s), ${failures.length} failed, ${written} mount swaps, ${rotations} rotations served, ` +
        `${connections.length} connections opened, ${retirements.length} retired by age`,
    );
    assert.deepEqual(failures.slice(0, 5), [], `${failures.length} requests failed`);
    assert.ok(ok >= CLIENTS * 4, `only ${ok} requests completed`);
    assert.ok(written >= DURATION_MS / ROTATE_EVERY_MS / 2, `only ${written} mount swaps happened`);
    assert.ok(rotations >= written / 2, `${written} mount swaps, but only ${rotations} generations served`);
    assert.ok(retirements.length >= CLIENTS, `connections aged out and were retired (${retirements.length})`);
    assert.ok(late.length >= 1, 'new connections were opened after the first rotation');
    assert.deepEqual(stale, [], 'every new connection presents the serial current when it connected, or newer');
    // And a connection opened now presents the last mounted certificate.
    const fresh = await new Promise<string | undefined>((resolve, reject) => {
      connector({ hostname: '127.0.0.1', host: '127.0.0.1', protocol: 'https:', port: String(port), servername: 'localhost' }, (err, socket) => {
        if (err || !socket) return reject(err ?? new Error('no socket'));
        resolve((socket as TLSSocket).getPeerX509Certificate()?.serialNumber);
        socket.destroy();
      });
    });
    assert.equal(fresh, lastSerial);
  });
});
