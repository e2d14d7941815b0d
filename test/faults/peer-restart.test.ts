import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileSource, silentLogger } from '@meshless/core';
import { createAgent } from '@meshless/http';
import { createTestCA, kubernetesVolume, waitFor } from '@meshless/testing';
import { request } from 'undici';
import { JsonChild } from '../helpers/child.js';

// The server process is killed and restarted under client load: the client's pool recovers by
// itself; requests fail only during the gap, each with a clear error.

const TD = 'restart.example';
const SERVER_ID = `spiffe://${TD}/ns/pay/sa/api`;
const CLIENT_ID = `spiffe://${TD}/ns/orders/sa/web`;
const fixture = join(import.meta.dirname, '..', 'network', 'fixtures', 'server.ts');

async function freePort(): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => s.once('listening', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe('faults: peer restarts under load', function () {
  this.timeout(90_000);
  let work: string;
  const children: JsonChild[] = [];
  after(async () => {
    await Promise.all(children.map((c) => c.stop('SIGKILL')));
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('the client pool recovers without manual action; failures only in the gap, with clear errors', async () => {
    work = mkdtempSync(join(tmpdir(), 'meshless-restart-'));
    const ca = await createTestCA({ trustDomain: TD });
    const s = await ca.issue({ spiffeId: SERVER_ID, dnsNames: ['localhost'] });
    const c = await ca.issue(CLIENT_ID);
    await kubernetesVolume(join(work, 'server')).write({ 'tls.crt': s.cert, 'tls.key': s.key, 'ca.crt': s.ca });
    await kubernetesVolume(join(work, 'client')).write({ 'tls.crt': c.cert, 'tls.key': c.key, 'ca.crt': c.ca });
    const port = await freePort();
    const startServer = async () => {
      const child = new JsonChild(process.execPath, ['--conditions=source', '--import', 'tsx', fixture, '--dir', join(work, 'server'), '--host', '127.0.0.1', '--port', String(port), '--allow', CLIENT_ID]);
      children.push(child);
      await child.waitFor((e) => e.event === 'ready', 30_000, 'server ready');
      return child;
    };

    const source = await fileSource({ dir: join(work, 'client') }, { logger: silentLogger });
    const agent = createAgent({ source, allow: SERVER_ID, logger: silentLogger });
    const outcomes: { at: number; ok: boolean; code?: string }[] = [];
    let stop = false;
    const deadline = Date.now() + 60_000;
    const loop = async () => {
      while (!stop && Date.now() < deadline) {
        try {
          const res = await request(`https://localhost:${port}/pay`, { method: 'POST', body: '{}', dispatcher: agent });
          await res.body.text();
          outcomes.push({ at: Date.now(), ok: res.statusCode === 200 });
        } catch (err) {
          const e = err as { code?: string; cause?: { code?: string } };
          outcomes.push({ at: Date.now(), ok: false, code: e.code ?? e.cause?.code ?? 'UNKNOWN' });
          await new Promise((r) => setTimeout(r, 5)); // pace retries while the server is down
        }
      }
    };

    try {
      let server = await startServer();
      const loops = Array.from({ length: 4 }, loop);
      await waitFor(() => outcomes.filter((o) => o.ok).length >= 50, 20_000, 'load before the kill');
      const killedAt = Date.now();
      await server.stop('SIGKILL');
      await waitFor(() => outcomes.some((o) => !o.ok && o.at > killedAt), 10_000, 'requests failing while the server is down');
      server = await startServer();
      const readyAt = Date.now();
      const okBefore = outcomes.filter((o) => o.ok).length;
      await waitFor(() => outcomes.filter((o) => o.ok && o.at > readyAt).length >= 50, 20_000, 'the pool recovering after the restart');
      stop = true;
      await Promise.all(loops);

      const failures = outcomes.filter((o) => !o.ok);
      assert.ok(failures.length > 0, 'the gap was observed');
      for (const f of failures) {
        assert.ok(f.at >= killedAt, 'no failure before the kill');
        assert.ok(f.code && /ECONNREFUSED|ECONNRESET|UND_ERR_SOCKET|UND_ERR_CLOSED|EPIPE/.test(f.code), `a clear error code, got ${f.code}`);
      }
      // After the first success past the restart, nothing fails again.
      const recovered = outcomes.find((o) => o.ok && o.at > readyAt)!.at;
      assert.equal(outcomes.filter((o) => !o.ok && o.at > recovered + 50).length, 0, 'no failure after recovery');
      console.log(`    restart: ${failures.length} failed requests in the gap (${[...new Set(failures.map((f) => f.code))].join(', ')}), ${outcomes.filter((o) => o.ok).length - okBefore} succeeded after the restart`);
    } finally {
      stop = true;
      await agent.close();
      await source.close();
    }
  });
});
