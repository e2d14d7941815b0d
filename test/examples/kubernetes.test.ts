import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { allowList } from '@meshless/core';
import { knownLayouts } from 'meshless';
import { assertServicesExposePorts, flag, loadManifest, loadManifests, peerOf, serveContainer, serviceAccountId, yamlFiles, type Doc } from './helpers/manifests.js';
import { ensureBuilt, root as repoRoot } from './helpers/processes.js';

const root = fileURLToPath(new URL('../../examples/kubernetes/', import.meta.url));
const TRUST_DOMAIN = 'prod.example';

/** The container that runs `meshless serve`, and what it reads and allows. */
function service(deployment: Doc) {
  const { spec, app } = serveContainer(deployment);
  const [dir] = flag(app.args, 'dir');
  assert.ok(dir, `${deployment.metadata.name}: --dir is set`);
  const mount = app.volumeMounts.find((m: Doc) => m.mountPath === dir);
  assert.ok(mount, `${deployment.metadata.name}: the --dir ${dir} is a volume mount`);
  const volume = spec.volumes.find((v: Doc) => v.name === mount.name);
  assert.ok(volume, `${deployment.metadata.name}: volume ${mount.name} exists`);
  return { spec, app, dir: dir!, mount, volume, allow: flag(app.args, 'allow'), spiffeId: serviceAccountId(deployment, TRUST_DOMAIN) };
}

describe('examples/kubernetes manifests', () => {
  it('every YAML document parses and names its apiVersion, kind and name', async () => {
    const files = await yamlFiles(root);
    assert.ok(files.length >= 3, `found ${files.map((f) => relative(root, f)).join(', ')}`);
    for (const file of files) {
      const docs = await loadManifest(file);
      assert.ok(docs.length > 0, `${file} holds documents`);
      for (const d of docs) {
        assert.equal(typeof d.apiVersion, 'string', `${file}: apiVersion`);
        assert.equal(typeof d.kind, 'string', `${file}: kind`);
        assert.equal(typeof d.metadata?.name, 'string', `${file}: metadata.name of a ${d.kind}`);
      }
    }
  });

  for (const variant of ['csi-driver-spiffe', 'spire']) {
    describe(variant, () => {
      let docs: Doc[];
      const of = (kind: string) => docs.filter((d) => d.kind === kind);
      before(async () => {
        docs = await loadManifests(join(root, variant));
      });

      it('has the expected kinds', () => {
        const kinds = new Set(docs.map((d) => d.kind));
        const expected = variant === 'spire'
          ? ['Namespace', 'ServiceAccount', 'ConfigMap', 'Deployment', 'Service', 'ClusterSPIFFEID']
          : ['Namespace', 'ServiceAccount', 'Role', 'RoleBinding', 'Deployment', 'Service', 'ClusterIssuer', 'Certificate'];
        assert.deepEqual([...kinds].sort(), [...expected].sort());
        assert.deepEqual(of('Deployment').map((d) => d.metadata.name).sort(), ['orders', 'payments']);
      });

      it('mounts the credential as a whole directory (no subPath), read-only, in the layout the SDK expects', () => {
        for (const deployment of of('Deployment')) {
          const { mount, volume, spec, dir } = service(deployment);
          assert.equal(mount.subPath, undefined, 'a subPath mount never rotates');
          assert.equal(mount.readOnly, true);
          if (variant === 'csi-driver-spiffe') {
            assert.equal(volume.csi?.driver, 'spiffe.csi.cert-manager.io');
            assert.equal(volume.csi?.readOnly, true);
            // csi-driver-spiffe writes tls.crt / tls.key / ca.crt: the "kubernetes" layout.
            assert.equal(knownLayouts[0]!.name, 'kubernetes');
            assert.deepEqual(knownLayouts[0]!.files, { cert: 'tls.crt', key: 'tls.key', ca: 'ca.crt' });
          } else {
            assert.equal(volume.emptyDir?.medium, 'Memory');
            const conf: string = of('ConfigMap').find((c) => c.metadata.name === 'spiffe-helper')!.data['helper.conf'];
            const setting = (k: string) => new RegExp(`^${k}\\s*=\\s*"([^"]*)"`, 'm').exec(conf)?.[1];
            const layout = knownLayouts.find((l) => l.name === 'spiffe-helper')!.files;
            assert.deepEqual({ cert: setting('svid_file_name'), key: setting('svid_key_file_name'), ca: setting('svid_bundle_file_name') }, layout);
            const helpers = [...(spec.initContainers ?? []), ...spec.containers].filter((c: Doc) => String(c.image).includes('spiffe-helper'));
            assert.equal(helpers.length, 2, 'an init container for the first SVID and a sidecar that renews it');
            assert.ok(spec.initContainers.some((c: Doc) => c.args.includes('-daemon-mode=false')));
            const agentDir = setting('agent_address')!.replace(/\/[^/]+$/, '');
            for (const h of helpers) {
              const configMount = h.volumeMounts.find((m: Doc) => spec.volumes.find((v: Doc) => v.name === m.name)?.configMap?.name === 'spiffe-helper');
              assert.ok(h.args.includes(`${configMount.mountPath}/helper.conf`), `${h.name} reads the mounted helper.conf`);
              const certMount = h.volumeMounts.find((m: Doc) => m.name === mount.name);
              assert.equal(certMount?.mountPath, setting('cert_dir'), `${h.name} writes into the volume the service reads`);
              assert.notEqual(certMount.readOnly, true);
              const api = h.volumeMounts.find((m: Doc) => m.mountPath === agentDir);
              assert.equal(spec.volumes.find((v: Doc) => v.name === api?.name)?.csi?.driver, 'csi.spiffe.io', `${h.name} reaches the Workload API socket`);
            }
            assert.equal(setting('cert_dir'), dir);
          }
        }
      });

      it('gives each service its own service account, whose SPIFFE ID the callers allow', () => {
        const deployments = Object.fromEntries(of('Deployment').map((d) => [d.metadata.name, service(d)]));
        const accounts = new Set(of('ServiceAccount').map((s) => `${s.metadata.namespace}/${s.metadata.name}`));
        for (const d of of('Deployment')) {
          const sa = d.spec.template.spec.serviceAccountName;
          assert.ok(sa && sa !== 'default', `${d.metadata.name} has its own service account`);
          assert.ok(accounts.has(`${d.metadata.namespace}/${sa}`), `ServiceAccount ${sa} is declared`);
        }
        const paymentsAllows = allowList(deployments.payments!.allow);
        assert.equal(paymentsAllows(peerOf(deployments.orders!.spiffeId)).allowed, true, 'payments allows orders');
        assert.equal(paymentsAllows(peerOf(deployments.payments!.spiffeId)).allowed, false, 'and nobody else');
        assert.equal(paymentsAllows(peerOf(`spiffe://${TRUST_DOMAIN}/ns/shop/sa/frontend`)).allowed, false);
        const ordersAllows = allowList(deployments.orders!.allow);
        assert.equal(ordersAllows(peerOf(`spiffe://${TRUST_DOMAIN}/ns/shop/sa/frontend`)).allowed, true);
        assert.equal(ordersAllows(peerOf(`spiffe://${TRUST_DOMAIN}/ns/ops/sa/oncall`)).allowed, true);
        assert.equal(ordersAllows(peerOf(`spiffe://${TRUST_DOMAIN}/ns/shop/sa/payments`)).allowed, false);
      });

      it('runs `meshless serve` with arguments the CLI accepts (it fails only on the missing mount)', async function () {
        this.timeout(60_000);
        ensureBuilt();
        for (const d of of('Deployment')) {
          const { app, dir } = service(d);
          const r = spawnSync(process.execPath, [join(repoRoot, 'packages/cli/dist/bin.js'), ...app.args], { encoding: 'utf8', timeout: 20_000 });
          assert.equal(r.status, 1, `${d.metadata.name}: ${r.stderr}`);
          assert.match(r.stderr, /MESHLESS_ERR_FILE_UNREADABLE/, 'the arguments parsed; the mount is what is missing here');
          assert.ok(r.stderr.includes(dir));
        }
      });

      it('exposes the port each service listens on through its Service', () => {
        assertServicesExposePorts(docs);
      });

      if (variant === 'csi-driver-spiffe') {
        it('lets each service account create its CertificateRequests', () => {
          const role = of('Role')[0]!;
          assert.ok(role.rules.some((r: Doc) => r.apiGroups.includes('cert-manager.io') && r.resources.includes('certificaterequests') && r.verbs.includes('create')));
          const bound = new Set(of('RoleBinding').flatMap((b) => (b.roleRef.name === role.metadata.name ? b.subjects.map((s: Doc) => s.name) : [])));
          for (const d of of('Deployment')) assert.ok(bound.has(d.spec.template.spec.serviceAccountName));
          const issuer = of('ClusterIssuer').find((i) => i.spec.ca);
          assert.equal(issuer?.spec.ca.secretName, of('Certificate')[0]!.spec.secretName);
        });
      } else {
        it('registers the pods with SPIRE under their service account identity', () => {
          const entry = of('ClusterSPIFFEID')[0]!;
          assert.match(entry.spec.spiffeIDTemplate, /^spiffe:\/\/\{\{ \.TrustDomain \}\}\/ns\/\{\{ \.PodMeta\.Namespace \}\}\/sa\/\{\{ \.PodSpec\.ServiceAccountName \}\}$/);
          for (const d of of('Deployment')) {
            const labels = d.spec.template.metadata.labels;
            for (const [k, v] of Object.entries(entry.spec.podSelector.matchLabels)) assert.equal(labels[k], v, `${d.metadata.name} is selected`);
          }
        });
      }
    });
  }
});
