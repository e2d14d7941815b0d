// Reading the Kubernetes manifests of examples/kubernetes/ (YAML documents as plain objects), and
// the checks every variant's manifests share.
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { createPeer, type Peer } from '@meshless/core';

/* eslint-disable @typescript-eslint/no-explicit-any */
/** One YAML document of a manifest, as JSON. */
export type Doc = Record<string, any>;

/** The YAML files below `dir` (sub-folders included), sorted. */
export async function yamlFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await yamlFiles(path)));
    else if (/\.ya?ml$/.test(entry.name)) out.push(path);
  }
  return out.sort();
}

/** The documents of one YAML file; fails the test on any YAML error. */
export async function loadManifest(file: string): Promise<Doc[]> {
  const docs = parseAllDocuments(await readFile(file, 'utf8'));
  for (const d of docs) assert.deepEqual(d.errors.map(String), [], `${file}: YAML errors`);
  return docs.map((d) => d.toJSON() as Doc).filter((d) => d !== null);
}

/** Every document of every YAML file below `dir`. */
export async function loadManifests(dir: string): Promise<Doc[]> {
  return (await Promise.all((await yamlFiles(dir)).map(loadManifest))).flat();
}

/** A verified peer with `spiffeId` (and its trust domain) and nothing else, to ask an allow-list about. */
export function peerOf(spiffeId: string): Peer {
  return createPeer({ spiffeId, trustDomain: new URL(spiffeId).host, dnsNames: [], uris: [spiffeId], serialNumber: '01', fingerprint256: '00', notBefore: new Date(0), notAfter: new Date(8.64e15) });
}

/** The values of `--name=value` in a container's args. */
export function flag(args: string[], name: string): string[] {
  return args.filter((a) => a.startsWith(`--${name}=`)).map((a) => a.slice(name.length + 3));
}

/** A Deployment's pod spec and its container that runs `meshless serve` (the test fails without one). */
export function serveContainer(deployment: Doc): { spec: Doc; app: Doc } {
  const spec = deployment.spec.template.spec;
  const app = spec.containers.find((c: Doc) => c.args?.[0] === 'serve');
  assert.ok(app, `${deployment.metadata.name}: a container runs \`meshless serve\``);
  return { spec, app };
}

/** The SPIFFE ID of a Deployment's service account: the identity every example issues its pods. */
export function serviceAccountId(deployment: Doc, trustDomain: string): string {
  return `spiffe://${trustDomain}/ns/${deployment.metadata.namespace}/sa/${deployment.spec.template.spec.serviceAccountName}`;
}

/**
 * Each Deployment's `meshless serve` container listens on 0.0.0.0 on the port of its --http or
 * --grpc flag, a named containerPort that the Service of the same name targets.
 */
export function assertServicesExposePorts(docs: Doc[]): void {
  for (const d of docs.filter((x) => x.kind === 'Deployment')) {
    const { app } = serveContainer(d);
    const port = Number(flag(app.args, 'http')[0] ?? flag(app.args, 'grpc')[0]);
    const named = app.ports.find((p: Doc) => p.containerPort === port);
    assert.ok(named, `${d.metadata.name}: containerPort ${port}`);
    const svc = docs.find((s) => s.kind === 'Service' && s.metadata.name === d.metadata.name)!;
    assert.deepEqual(svc.spec.selector, d.spec.selector.matchLabels);
    assert.ok(svc.spec.ports.some((p: Doc) => p.targetPort === named.name));
    assert.equal(flag(app.args, 'host')[0], '0.0.0.0', 'reachable from other pods');
  }
}
