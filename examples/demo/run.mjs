#!/usr/bin/env node
// `npm run demo`: a small system of real services on loopback, narrated. A dev CA issues SPIFFE
// identities into Kubernetes-style mounts; orders (Express over createServer) calls payments
// (gRPC) with mutual TLS; a client calls orders through createAgent; certificates rotate live,
// the CA too, while traffic flows; strangers are refused; a partner trust domain is federated
// (and its CA's forgery refused); the wire carries only TLS records.
// Options: --keep leaves the services running until Ctrl-C.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fileSource } from '@meshless/core';
import { createAgent } from '@meshless/http';
import { Identities } from './lib/identities.mjs';
import { bold, cyan, elapsedSeconds, fail, pass, say, step, table } from './lib/narrate.mjs';
import { parseTlsRecords, startRelay } from './lib/relay.mjs';
import { federationScene } from './lib/federation.mjs';
import { migrationScene } from './lib/migration.mjs';
import { refusalChecks } from './lib/refusals.mjs';
import { startService, waitFor } from './lib/services.mjs';
import { startTraffic } from './lib/traffic.mjs';

const keep = process.argv.includes('--keep');
const TD = 'prod.example';
const ID = {
  payments: `spiffe://${TD}/ns/shop/sa/payments`,
  orders: `spiffe://${TD}/ns/shop/sa/orders`,
  web: `spiffe://${TD}/ns/web/sa/frontend`,
};
const MARKER = `card-4242-${randomBytes(6).toString('hex')}`;
const examples = fileURLToPath(new URL('..', import.meta.url));
const repo = join(examples, '..');
const cleanups = [];
const running = [];
const summary = { rotations: 0, rotationLines: [], refusals: [], wire: '' };

async function main() {
  const work = await mkdtemp(join(tmpdir(), 'meshless-demo-'));
  cleanups.push(() => rm(work, { recursive: true, force: true }));
  console.log(bold('meshless demo') + ` — mutual TLS between Node.js services, no mesh (work dir ${work})`);

  step('A development CA issues SPIFFE identities into Kubernetes-style mounts');
  const ids = new Identities(work, TD);
  cleanups.push(() => ids.close());
  const firstCA = await ids.init();
  const dirs = Object.fromEntries(Object.entries(ID).map(([name, id]) => [name, ids.mount(name, id)]));
  for (const name of Object.keys(ID)) {
    const serial = await ids.issue(name);
    say(`${name.padEnd(8)} ${cyan(ID[name])}  →  ${dirs[name]}/{tls.crt,tls.key,ca.crt}  serial ${serial.slice(0, 8)}…`);
  }
  say('each write is the kubelet\'s atomic swap: files are symlinks into ..data, renamed in one step');

  step('payments (gRPC) and orders (Express over createServer) start, each from its own mount');
  const payments = await startService('payments', join(examples, 'grpc-service', 'server.mjs'), { CERTS_DIR: dirs.payments, PORT: '0', TRUST_DOMAIN: TD });
  cleanups.push(() => payments.stop());
  running.push(payments);
  const relay = await startRelay(payments.port);
  cleanups.push(() => relay.close());
  const orders = await startService('orders', join(examples, 'express-service', 'server.mjs'), { CERTS_DIR: dirs.orders, PORT: '0', TRUST_DOMAIN: TD, PAYMENTS_ADDR: `localhost:${relay.port}` });
  cleanups.push(() => orders.stop());
  running.push(orders);
  const ordersUrl = `https://127.0.0.1:${orders.port}`;
  say(`payments  gRPC   127.0.0.1:${payments.port}  allows ${TD}/ns/shop/** (Charge: orders only, Refund: support only)`);
  say(`orders    HTTPS  ${ordersUrl}  allows ${TD}/ns/web/**; calls payments through a byte-recording relay on :${relay.port}`);

  step('A client calls orders through createAgent; traffic flows from now on');
  const webSource = await fileSource({ dir: dirs.web });
  cleanups.push(() => webSource.close());
  const agent = createAgent({ source: webSource, allow: ID.orders });
  cleanups.push(() => agent.close());
  const traffic = startTraffic({ url: ordersUrl, dispatcher: agent, note: `deliver to ${MARKER}`, expect: { client: ID.web, orders: ID.orders } });
  cleanups.push(() => traffic.stop());
  const progress = async (n, what) => {
    const target = traffic.stats.ok + n;
    await waitFor(() => traffic.stats.ok >= target || traffic.stats.failed > 0, 20_000, what);
    if (traffic.stats.failed > 0) throw new Error(`a request failed ${what}: ${traffic.stats.failures[0]}`);
  };
  await progress(20, 'for the first orders');
  pass(`${traffic.stats.ok} orders placed: web → orders → payments, every hop verified in both directions`);

  const rotateAll = async (label) => {
    const latencies = [];
    for (const name of ['payments', 'orders', 'web']) {
      const serial = await ids.issue(name);
      const swapped = Date.now();
      if (name === 'web') await waitFor(() => webSource.current().leaf.serialNumber === serial, 10_000, 'the client to load its new certificate');
      else await (name === 'payments' ? payments : orders).waitForEvent((e) => e.event === 'rotated' && e.serial === serial, 10_000, `rotation to ${serial}`);
      latencies.push(`${name} ${Date.now() - swapped} ms`);
      summary.rotations += 1;
    }
    await progress(20, `after ${label}`);
    summary.rotationLines.push(`${label}: swap → served in ${latencies.join(', ')}`);
    pass(`${label}: payments, orders and the client each serve the new certificate; ${traffic.stats.ok} ok, ${traffic.stats.failed} failed so far`);
  };

  step('Leaf certificates rotate while traffic flows');
  await rotateAll('leaf rotation');

  step('The CA rotates, with an overlap bundle, while traffic flows');
  const nextCA = await ids.newCA();
  ids.trusted = [firstCA, nextCA];
  await rotateAll('CA rotation 1/3, every bundle trusts old and new root');
  ids.issuer = nextCA;
  await rotateAll('CA rotation 2/3, leaves issued by the new root');
  ids.trusted = [nextCA];
  await rotateAll('CA rotation 3/3, old root removed from every bundle');

  step('Callers that must be refused');
  summary.refusals = await refusalChecks({ ordersUrl, orders, payments, nextCA, ID, TD, pass, fail });

  step('Federation: a workload of another trust domain, through a bundle map');
  summary.federation = await federationScene({ work, ordersDir: dirs.orders, ourCA: nextCA, ID, pass, fail, say, waitFor });

  step('Migration: a plaintext caller seen in permissive mode, then strict');
  summary.migration = await migrationScene({ ordersDir: dirs.orders, agent, ID, pass, fail, say });

  step('Wire check: what orders and payments exchange on the loopback');
  await progress(10, 'before the wire check');
  await traffic.stop();
  summary.wire = wireCheck(relay);

  const ok = traffic.stats.failed === 0 && summary.refusals.every((r) => r.refused) && summary.federation.ok && summary.migration.ok && summary.wireOk;
  table('Summary', [
    ['requests', `${traffic.stats.ok} ok, ${traffic.stats.failed} failed${traffic.stats.failed ? `: ${traffic.stats.failures[0]}` : ''}`],
    ['rotations', `${summary.rotations} certificate swaps\n${summary.rotationLines.join('\n')}`],
    ['served', `orders served ${traffic.stats.ordersSerials.size} certificates, payments ${traffic.stats.paymentsSerials.size}, to the requests above`],
    ['refusals', summary.refusals.map((r) => `${r.refused ? '✓' : '✗'} ${r.who} → ${r.where}: ${r.outcome}${r.reason ? ` — ${r.reason}` : ''}`).join('\n')],
    ['federation', summary.federation.line],
    ['migration', summary.migration.line],
    ['wire', summary.wire],
    ['time', `${elapsedSeconds().toFixed(1)} s`],
    ['result', ok ? 'PASS' : 'FAIL'],
  ]);
  if (keep && ok) await keepRunning({ work, dirs, ordersUrl, payments, nextCA });
  return ok ? 0 : 1;
}

function wireCheck(relay) {
  const marker = Buffer.from(MARKER);
  let up = 0;
  let down = 0;
  const counts = {};
  const problems = [];
  for (const [i, c] of relay.connections.entries()) {
    for (const [direction, chunks] of [['orders→payments', c.up], ['payments→orders', c.down]]) {
      const bytes = Buffer.concat(chunks);
      if (bytes.includes(marker)) problems.push(`connection ${i + 1} ${direction}: the payload marker is readable`);
      if (direction === 'orders→payments' && !(bytes[0] === 0x16 && bytes[1] === 0x03)) problems.push(`connection ${i + 1} does not open with a TLS handshake record`);
      const parsed = parseTlsRecords(bytes);
      if (!parsed.ok) problems.push(`connection ${i + 1} ${direction}: ${parsed.reason}`);
      for (const [type, n] of Object.entries(parsed.counts)) counts[type] = (counts[type] ?? 0) + n;
    }
    up += c.upBytes;
    down += c.downBytes;
  }
  if (relay.connections.length === 0) problems.push('no connection went through the relay');
  if (!counts.application_data) problems.push('no application data records seen');
  summary.wireOk = problems.length === 0;
  const first = relay.connections[0] ? Buffer.concat(relay.connections[0].up).subarray(0, 5).toString('hex').replace(/(..)/g, '$1 ').trim() : '';
  const text = `${relay.connections.length} connection(s), ${up} bytes orders→payments, ${down} back; first bytes ${first}\n` +
    `${Object.entries(counts).map(([t, n]) => `${n} ${t}`).join(', ')} records; payload marker "${MARKER}" ${problems.some((p) => p.includes('marker')) ? 'FOUND' : 'absent'}`;
  if (problems.length) problems.forEach((p) => fail(p));
  else pass(`every byte between orders and payments is a TLS record (starts ${first}, then application data); the marker sent in every Charge is not readable`);
  return problems.length ? `${text}\n${problems.join('\n')}` : text;
}

async function keepRunning({ work, dirs, ordersUrl, payments, nextCA }) {
  const caDir = join(work, 'ca');
  await writeFile(join(work, 'ca.crt'), nextCA.certPem);
  await import('node:fs/promises').then((fs) => fs.mkdir(caDir, { recursive: true }));
  await writeFile(join(caDir, 'ca.crt'), nextCA.certPem);
  await writeFile(join(caDir, 'ca.key'), nextCA.keyPem, { mode: 0o600 });
  const cli = `node ${join(repo, 'packages', 'cli', 'dist', 'bin.js')}`;
  console.log(`\n${bold('Still running')} (Ctrl-C to stop). Try:`);
  console.log(`  CERTS_DIR=${dirs.web} ORDERS_URL=${ordersUrl} node ${join(examples, 'client', 'client.mjs')}`);
  console.log(`  ${cli} probe ${ordersUrl}/ --dir ${dirs.web} --allow ${ID.orders}`);
  console.log(`  ${cli} probe grpc://localhost:${payments.port} --dir ${dirs.orders} --allow ${ID.payments} --method /shop.payments.v1.Payments/Charge`);
  console.log(`  ${cli} inspect ${dirs.orders}`);
  console.log(`  ${cli} ca issue ${ID.orders} --ca ${caDir} --out ${dirs.orders}   # rotates orders live`);
  await new Promise((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  console.log('stopping');
}

async function runCleanups() {
  for (const cleanup of cleanups.reverse()) {
    try {
      await cleanup();
    } catch {
      // best effort: keep cleaning
    }
  }
}

let code = 1;
try {
  code = await main();
} catch (err) {
  fail(`the demo stopped: ${err.message}`);
  for (const service of running) if (service.stderr) console.error(`--- ${service.name} stderr ---\n${service.stderr}`);
} finally {
  await runCleanups();
}
process.exitCode = code;
