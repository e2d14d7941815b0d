// meshless's OpenTelemetry metrics as an operator sees them: a MeterProvider with the Prometheus
// exporter, a real HTTP scrape of /metrics after a rotation, a failed reload and refusals of every
// class. Names are stable (docs/observability.md lists them) and attributes bounded: no peer
// identity, serial number or address ever becomes a label.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { metrics } from '@opentelemetry/api';
import { parse as parseYaml } from 'yaml';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { fileSource, loadCredential, type FileSource } from '@meshless/core';
import { channelCredentials, serverCredentials } from '@meshless/grpc';
import { createServer, routePolicy, type MeshlessServer, type PeerRefusal } from '@meshless/http';
import { createTestCA, type IssuedCertificate, kubernetesVolume, recordingLogger, type TestCA } from '@meshless/testing';
import { closeServer, get, listen, rawRequest } from '@meshless/fixtures/http-server';
import { root } from '../examples/helpers/processes.js';
import { echoClient, startServer, unary, type Running } from '@meshless/fixtures/grpc-harness';

const TD = 'prod.example';
const SERVER_ID = `spiffe://${TD}/ns/pay/sa/api`;
const FRONTEND_ID = `spiffe://${TD}/ns/web/sa/frontend`;
const BATCH_ID = `spiffe://${TD}/ns/batch/sa/job`;
const STRANGER_ID = `spiffe://${TD}/ns/evil/sa/scraper`;

/** The label keys each meshless metric may carry (besides the exporter's otel_scope_*). */
export const METRIC_LABELS: Record<string, string[]> = {
  meshless_credential_expiry_seconds: ['meshless_source', 'meshless_identity'],
  meshless_credential_generation: ['meshless_source', 'meshless_identity'],
  meshless_credential_reloads_total: ['meshless_source', 'outcome', 'error_code'],
  meshless_peer_refusals_total: ['side', 'failure', 'scope', 'protocol'],
  meshless_policy_would_deny_total: ['scope'],
  meshless_http_plaintext_requests_total: ['side', 'outcome'],
  meshless_workload_api_streams_total: ['meshless_source', 'event', 'rpc_grpc_status_code'],
};

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parsePrometheus(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    assert.ok(m, `unparsable line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[key!] = value!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

async function scrape(port: number): Promise<{ status: number; type: string; text: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), text }));
      })
      .on('error', reject);
  });
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)))]).finally(() => clearTimeout(timer));
}

describe('metrics scraped by Prometheus (@opentelemetry/exporter-prometheus, real /metrics over HTTP)', function () {
  this.timeout(60_000);
  let provider: MeterProvider;
  let metricsServer: http.Server;
  let metricsPort: number;
  let dir: string;
  let ca: TestCA;
  let source: FileSource;
  let strict: MeshlessServer;
  let dryRun: MeshlessServer;
  let permissive: MeshlessServer;
  let grpcServer: Running;
  const clients: Record<string, IssuedCertificate> = {};
  const refusals: PeerRefusal[] = [];

  before(async () => {
    metrics.disable();
    const exporter = new PrometheusExporter({ preventServerStart: true });
    provider = new MeterProvider({ readers: [exporter] });
    assert.ok(metrics.setGlobalMeterProvider(provider), 'the test provider is installed');
    metricsServer = http.createServer((req, res) => {
      if (req.url === '/metrics') return exporter.getMetricsRequestHandler(req, res);
      res.statusCode = 404;
      res.end();
    });
    metricsPort = await listen(metricsServer as unknown as import('node:net').Server);

    dir = await mkdtemp(join(tmpdir(), 'meshless-prometheus-'));
    ca = await createTestCA({ trustDomain: TD });
    for (const [name, id] of Object.entries({ frontend: FRONTEND_ID, batch: BATCH_ID, stranger: STRANGER_ID })) clients[name] = await ca.issue(id);
    const issued = await ca.issue({ spiffeId: SERVER_ID, dnsNames: ['localhost'] });
    const volume = kubernetesVolume(join(dir, 'tls'));
    await volume.write({ 'tls.crt': issued.cert, 'tls.key': issued.key, 'ca.crt': issued.ca });
    await volume.close();
    source = await fileSource({ dir: join(dir, 'tls') }, { logger: recordingLogger() });

    const admin = routePolicy(FRONTEND_ID, { logger: recordingLogger() });
    strict = createServer({ source, allow: [FRONTEND_ID, BATCH_ID], logger: recordingLogger() }, (req, res) => {
      const verdict = admin(req);
      res.statusCode = verdict.allowed ? 200 : verdict.status;
      res.end(JSON.stringify(verdict.allowed ? { ok: true } : verdict.body));
    });
    strict.on('peerRefused', (r: PeerRefusal) => refusals.push(r));
    dryRun = createServer({ source, allow: FRONTEND_ID, dryRun: true, logger: recordingLogger() }, (_req, res) => res.end('ok'));
    permissive = createServer({ source, allow: FRONTEND_ID, mode: 'permissive', logger: recordingLogger() }, (_req, res) => res.end('ok'));
    await Promise.all([listen(strict), listen(dryRun), listen(permissive)]);
    grpcServer = await startServer(serverCredentials({ source, allow: FRONTEND_ID, logger: recordingLogger() }));
  });

  after(async () => {
    for (const server of [strict, dryRun, permissive]) if (server) await closeServer(server);
    await grpcServer?.close();
    await source?.close();
    if (metricsServer) await new Promise((r) => metricsServer.close(r));
    await provider?.shutdown();
    metrics.disable();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('shows expiry, generation, reloads, refusals by class, would-deny and plaintext counts with bounded labels', async () => {
    const port = (s: MeshlessServer) => (s.address() as AddressInfo).port;
    // A rotation (the kubelet's ..data swap), then a reload that fails (a key of another pair).
    const volume = kubernetesVolume(join(dir, 'tls'));
    const next = await ca.issue({ spiffeId: SERVER_ID, dnsNames: ['localhost'] });
    const updated = once(source, 'update');
    await volume.write({ 'tls.crt': next.cert, 'tls.key': next.key, 'ca.crt': next.ca });
    await within(updated, 10_000, 'the rotation');
    const other = await ca.issue({ spiffeId: SERVER_ID, dnsNames: ['localhost'] });
    const failed = once(source, 'error');
    await volume.write({ 'tls.crt': next.cert, 'tls.key': other.key, 'ca.crt': next.ca });
    await within(failed, 10_000, 'the failed reload');
    await volume.close();
    assert.equal(source.current().generation, 2, 'the rotation is served, the bad pair is not');

    // Refusals: denied at the handshake, no certificate, and by a route rule.
    const before = refusals.length;
    await rawRequest(port(strict), { cert: clients.stranger!.cert, key: clients.stranger!.key, ca: clients.stranger!.ca });
    await rawRequest(port(strict), { ca: clients.frontend!.ca });
    const routeDenied = await get(port(strict), '/admin', clients.batch!);
    assert.equal(routeDenied.status, 403);
    assert.equal(refusals.length - before, 2, JSON.stringify(refusals.map((r) => r.failure)));
    // gRPC: a caller the server credentials refuse (counted with protocol="grpc"), and a client
    // refusing a server its rules do not allow (side="client").
    const grpcDenied = echoClient(grpcServer.target, channelCredentials({ source: loadCredential(clients.batch!), allow: SERVER_ID }));
    await assert.rejects(unary(grpcDenied, 'unary', {}), /PERMISSION_DENIED/);
    grpcDenied.close();
    const wrongServer = echoClient(grpcServer.target, channelCredentials({ source: loadCredential(clients.frontend!), allow: `spiffe://${TD}/ns/other/sa/api` }));
    await assert.rejects(unary(wrongServer, 'unary', {}));
    wrongServer.close();
    // A dry run lets the stranger in and counts it; a permissive server serves plaintext and counts it.
    assert.equal((await get(port(dryRun), '/', clients.stranger!)).status, 200);
    const plain = await new Promise<number>((resolve, reject) => http.get({ host: '127.0.0.1', port: port(permissive), path: '/' }, (res) => resolve(res.statusCode ?? 0)).on('error', reject));
    assert.equal(plain, 200);

    const { status, type, text } = await scrape(metricsPort);
    if (process.env.SHOW_SCRAPE) console.log(text);
    assert.equal(status, 200);
    assert.match(type, /^text\/plain/);
    const samples = parsePrometheus(text).filter((s) => s.name.startsWith('meshless_'));
    const one = (name: string, labels: Record<string, string> = {}) =>
      samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((sum, s) => sum + s.value, 0);
    const location = join(dir, 'tls');

    const expiry = samples.find((s) => s.name === 'meshless_credential_expiry_seconds' && s.labels.meshless_source?.includes(location));
    assert.ok(expiry, `no expiry gauge for the source in:\n${text}`);
    assert.ok(expiry.value > 60 && expiry.value <= (source.current().notAfter.getTime() - Date.now()) / 1000 + 5, `expiry ${expiry.value}`);
    assert.equal(expiry.labels.meshless_identity, SERVER_ID);
    assert.equal(samples.find((s) => s.name === 'meshless_credential_generation' && s.labels.meshless_source?.includes(location))?.value, 2);
    assert.ok(one('meshless_credential_reloads_total', { outcome: 'success' }) >= 1, 'the rotation is counted');
    const failure = samples.find((s) => s.name === 'meshless_credential_reloads_total' && s.labels.outcome === 'failure');
    assert.ok(failure && failure.value >= 1 && /^MESHLESS_ERR_/.test(failure.labels.error_code ?? ''), `failed reload with its code: ${JSON.stringify(failure)}`);
    assert.equal(one('meshless_peer_refusals_total', { side: 'server', failure: 'denied', scope: 'route' }), 1);
    assert.ok(one('meshless_peer_refusals_total', { side: 'server', failure: 'denied' }) - 1 >= 1, 'the handshake denial');
    assert.ok(one('meshless_peer_refusals_total', { side: 'server', failure: 'unverified' }) >= 1, 'the client without a certificate');
    assert.ok(one('meshless_policy_would_deny_total') >= 1, 'the dry-run would-deny');
    assert.ok(one('meshless_peer_refusals_total', { side: 'server', protocol: 'grpc', failure: 'denied' }) >= 1, 'the gRPC caller refused by serverCredentials');
    assert.ok(one('meshless_peer_refusals_total', { side: 'client', protocol: 'grpc', failure: 'denied' }) >= 1, 'the gRPC server refused by channelCredentials');
    assert.ok(one('meshless_http_plaintext_requests_total', { side: 'server', outcome: 'served' }) >= 1, 'the plaintext request');

    // Stable names, bounded labels: only the documented keys, and never a peer's identity or serial.
    for (const sample of samples) {
      const base = sample.name.replace(/_(bucket|sum|count)$/, '');
      const allowed = METRIC_LABELS[base];
      assert.ok(allowed, `${sample.name} is not in the documented list (docs/observability.md)`);
      for (const key of Object.keys(sample.labels)) assert.ok(allowed.includes(key) || key.startsWith('otel_scope_'), `${sample.name} has an undocumented label ${key}`);
      for (const value of Object.values(sample.labels)) {
        for (const client of Object.values(clients)) {
          assert.ok(!value.includes(client.serialNumber), `${sample.name} carries a serial number`);
        }
        for (const id of [FRONTEND_ID, BATCH_ID, STRANGER_ID]) assert.ok(!value.includes(id), `${sample.name} carries the peer identity ${id}`);
        assert.ok(!value.includes('127.0.0.1'), `${sample.name} carries an address`);
      }
    }
  });

  it('docs/observability.md lists exactly these metrics, with these labels', async () => {
    const doc = await readFile(join(root, 'docs/observability.md'), 'utf8');
    const rows = new Map([...doc.matchAll(/^\| `(meshless_[a-z_]+)` \(`[a-z._]+`\) \| \w+ \| (.*?) \| /gm)].map((m) => [m[1]!, m[2]!]));
    assert.deepEqual([...rows.keys()].sort(), Object.keys(METRIC_LABELS).sort());
    for (const [name, labels] of Object.entries(METRIC_LABELS)) {
      for (const label of labels) assert.ok(rows.get(name)!.includes(`\`${label}\``), `docs/observability.md: ${name} does not name its label ${label}`);
    }
  });

  it('the sample alerts and Grafana queries of docs/observability.md use only documented metrics and labels', async () => {
    const doc = await readFile(join(root, 'docs/observability.md'), 'utf8');
    const yamlBlock = /```yaml\n([\s\S]*?)```/.exec(doc)?.[1];
    assert.ok(yamlBlock, 'a yaml block of alert rules');
    const rules = (parseYaml(yamlBlock) as { groups: { name: string; rules: { alert: string; expr: string }[] }[] }).groups.flatMap((g) => g.rules);
    assert.ok(rules.some((r) => /expires|Expire/i.test(r.alert)) && rules.some((r) => /Reload/.test(r.alert)), rules.map((r) => r.alert).join(', '));
    const queries = [...rules.map((r) => r.expr), ...[...doc.matchAll(/^\| [^|]+ \| `([^`]+)` \|$/gm)].map((m) => m[1]!)];
    assert.ok(queries.length >= 10, `${queries.length} queries`);
    const scrapeLabels = ['pod', 'instance', 'job'];
    for (const query of queries) {
      const labelKeys = new Set(Object.values(METRIC_LABELS).flat());
      const names = [...query.matchAll(/\b(meshless_[a-z_]+)/g)].map((m) => m[1]!).filter((n) => !labelKeys.has(n));
      assert.ok(names.length > 0, query);
      for (const name of names) assert.ok(METRIC_LABELS[name], `${query}: ${name} is not a documented metric`);
      const labels = [...query.matchAll(/by \(([^)]*)\)/g)].flatMap((m) => m[1]!.split(',').map((l) => l.trim())).concat([...query.matchAll(/([a-z_]+)=~?"/g)].map((m) => m[1]!));
      for (const label of labels) assert.ok(scrapeLabels.includes(label) || names.some((n) => METRIC_LABELS[n]!.includes(label)), `${query}: label ${label} is not one meshless sets`);
    }
  });
});
