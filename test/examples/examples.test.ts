import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestCA, kubernetesVolume, type TestCA, waitFor } from '@meshless/testing';
import { ensureBuilt, exitWithin, root, startNode, stop, type Child } from './helpers/processes.js';

const TD = 'prod.example';
const ID = { payments: `spiffe://${TD}/ns/shop/sa/payments`, orders: `spiffe://${TD}/ns/shop/sa/orders`, web: `spiffe://${TD}/ns/web/sa/frontend` };
const script = (path: string) => join(root, 'examples', path);

describe('examples: payments (gRPC), orders (Express), client', function () {
  this.timeout(60_000);
  let ca: TestCA;
  let dir: string;
  let payments: Child | undefined;
  let orders: Child | undefined;

  async function mount(name: string, spiffeId: string): Promise<string> {
    const target = join(dir, name);
    const volume = kubernetesVolume(target);
    const issued = await ca.issue(spiffeId);
    await volume.write({ 'tls.crt': issued.cert, 'tls.key': issued.key, 'ca.crt': issued.ca });
    await volume.close();
    return target;
  }

  const ready = (child: Child, name: string) => waitFor(() => child.events().find((e) => e.event === 'ready'), 30_000, `${name} ready (stderr: ${child.stderr()})`) as Promise<{ port: number }>;

  before(async () => {
    ensureBuilt();
    dir = await mkdtemp(join(tmpdir(), 'meshless-examples-'));
    ca = await createTestCA({ trustDomain: TD });
    payments = startNode(script('grpc-service/server.mjs'), [], { CERTS_DIR: await mount('payments', ID.payments), PORT: '0' });
    const paymentsPort = (await ready(payments, 'payments')).port;
    orders = startNode(script('express-service/server.mjs'), [], { CERTS_DIR: await mount('orders', ID.orders), PORT: '0', PAYMENTS_ADDR: `localhost:${paymentsPort}` });
    await ready(orders, 'orders');
  });

  after(async () => {
    await stop(orders);
    await stop(payments);
    await rm(dir, { recursive: true, force: true });
  });

  it('each example is under 60 lines', async () => {
    for (const file of ['grpc-service/server.mjs', 'express-service/server.mjs', 'client/client.mjs']) {
      const lines = (await readFile(script(file), 'utf8')).trimEnd().split('\n').length;
      assert.ok(lines < 60, `${file} has ${lines} lines`);
    }
  });

  it('the client places an order: web → orders → payments, each hop verified', async () => {
    const port = (orders!.events().find((e) => e.event === 'ready') as { port: number }).port;
    const client = startNode(script('client/client.mjs'), [], { CERTS_DIR: await mount('web', ID.web), ORDERS_URL: `https://127.0.0.1:${port}` });
    assert.equal(await exitWithin(client, 30_000), 0, client.stderr());
    const out = JSON.parse(client.stdout()) as { status: number; body: { caller: string; charge: { caller: string; charge_id: string } } };
    assert.equal(out.status, 201);
    assert.equal(out.body.caller, ID.web, 'orders saw the web frontend');
    assert.equal(out.body.charge.caller, ID.orders, 'payments saw orders');
    assert.match(out.body.charge.charge_id, /^ch_\d+$/);
  });

  it('a client whose identity orders does not allow is refused, and orders logs why', async () => {
    const port = (orders!.events().find((e) => e.event === 'ready') as { port: number }).port;
    const stranger = `spiffe://${TD}/ns/batch/sa/reporter`;
    const client = startNode(script('client/client.mjs'), [], { CERTS_DIR: await mount('stranger', stranger), ORDERS_URL: `https://127.0.0.1:${port}` });
    assert.equal(await exitWithin(client, 30_000), 1);
    assert.match(client.stderr(), /request failed/);
    const refused = await waitFor(() => orders!.events().find((e) => e.event === 'refused' && e.peer === stranger), 10_000, 'the refusal');
    assert.equal(refused.failure, 'denied');
  });

  it('the services stop on SIGTERM', async () => {
    for (const child of [orders!, payments!]) {
      child.process.kill('SIGTERM');
      assert.equal(await exitWithin(child, 15_000), 0, child.stderr());
    }
  });
});

describe('npm run demo (examples/demo/run.mjs)', function () {
  this.timeout(120_000);
  let demo: Child | undefined;
  before(() => ensureBuilt());
  afterEach(() => stop(demo));

  it('narrates the scenario and ends with a passing summary, exit 0, in under 60 s', async () => {
    const started = Date.now();
    demo = startNode(script('demo/run.mjs'));
    const code = await exitWithin(demo, 90_000);
    const seconds = (Date.now() - started) / 1000;
    const out = demo.stdout();
    assert.equal(code, 0, `${out}\n${demo.stderr()}`);
    assert.ok(seconds < 60, `took ${seconds} s`);
    for (const step of ['Kubernetes-style mounts', 'createAgent', 'Leaf certificates rotate', 'CA rotates, with an overlap bundle', 'must be refused', 'Wire check']) {
      assert.ok(out.includes(step), `narrates "${step}"`);
    }
    assert.match(out, /^requests +\d+ ok, 0 failed$/m);
    assert.match(out, /^rotations +12 certificate swaps$/m);
    assert.match(out, /intruder claiming .* → orders: .*orders logged "unverified/);
    assert.match(out, /reporter \(valid, not allowed\) → payments: PERMISSION_DENIED/);
    assert.match(out, /payload marker "card-4242-[0-9a-f]+" absent/);
    assert.match(out, /^federation +partner\.example workload answered; partner CA forging spiffe:\/\/prod\.example\/\S+ refused; partner\.example removed from the map → refused$/m);
    assert.match(out, /^result +PASS$/m);
  });

  it('--keep leaves the services running until Ctrl-C, and they answer the example client', async () => {
    demo = startNode(script('demo/run.mjs'), ['--keep']);
    // The line that names client.mjs comes after "Still running", maybe in a later stdout chunk: wait for it.
    await waitFor(() => /client\.mjs/.test(demo!.stdout()) || demo!.process.exitCode !== null, 90_000, 'the demo to finish its scenario');
    assert.match(demo.stdout(), /^result +PASS$/m, demo.stdout());
    const clientLine = demo.stdout().split('\n').find((l) => l.includes('client.mjs'))!;
    const env = Object.fromEntries([...clientLine.matchAll(/(CERTS_DIR|ORDERS_URL)=(\S+)/g)].map((m) => [m[1], m[2]]));
    const client = startNode(script('client/client.mjs'), [], env as Record<string, string>);
    assert.equal(await exitWithin(client, 30_000), 0, client.stderr());
    assert.equal((JSON.parse(client.stdout()) as { status: number }).status, 201);
    demo.process.kill('SIGINT');
    assert.equal(await exitWithin(demo, 20_000), 0, demo.stderr());
    const { port } = new URL(env.ORDERS_URL!);
    const refused = await new Promise<string>((resolve) => {
      const socket = net.connect(Number(port), '127.0.0.1', () => {
        socket.destroy();
        resolve('connected');
      });
      socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    });
    assert.equal(refused, 'ECONNREFUSED', 'orders stopped with the demo');
  });
});
