// A user's project: the packages installed by name with plain npm from what a release would
// publish (pnpm pack), no workspace around them. ESM and CommonJS services, a gRPC pair, the
// public types under the three module resolutions TypeScript users have, and the CLI.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanEnv, localRegistry, packAll, root, runIn, tempDir, upstreamUnreachable, type LocalRegistry, type PackedPackage } from './helpers/release.js';

const fixtures = join(root, 'test', 'release', 'consumer');

describe('release: the published packages in a fresh npm project', function () {
  this.timeout(300_000);
  let packages: PackedPackage[];
  let registry: LocalRegistry;
  let project: string;
  let env: NodeJS.ProcessEnv;

  before(async function () {
    console.log('      (packing every package with pnpm pack, then npm install into a fresh project: about half a minute)');
    const offline = await upstreamUnreachable();
    if (offline) {
      console.log(`      (the npm registry is unreachable from here, so the third-party dependencies cannot install: ${offline})`);
      this.skip();
    }
    packages = await packAll();
    registry = await localRegistry(packages);
    env = cleanEnv(registry.env);
    project = tempDir('meshless-consumer-');
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }, null, 2));
    const names = packages.map((p) => p.name);
    const install = await runIn(project, 'npm', ['install', ...names, 'undici@^7.16.0', '@grpc/grpc-js@^1.14.0', '@grpc/proto-loader@^0.8.0', 'express@^4.21.0', '@types/node@^20.19.0'], env);
    if (install.code !== 0 && registry.unreachable.length) {
      console.log(`      (the npm registry is unreachable from here, so the third-party dependencies cannot install: ${registry.unreachable[0]})`);
      this.skip();
    }
    assert.equal(install.code, 0, `npm install failed:\n${install.stdout}${install.stderr}`);
    for (const file of readdirSync(fixtures)) copyFileSync(join(fixtures, file), join(project, file));
  });
  after(async () => {
    await registry?.close();
  });

  it('every published manifest installs with npm: no workspace: ranges, no source condition, LICENSE, CHANGELOG, a built dist', () => {
    for (const pkg of packages) {
      const text = JSON.stringify(pkg.manifest);
      assert.doesNotMatch(text, /workspace:/, `${pkg.name}: a workspace: range was published`);
      assert.doesNotMatch(JSON.stringify(pkg.manifest.exports), /"source"/, `${pkg.name}: the source condition was published`);
      for (const file of ['LICENSE', 'CHANGELOG.md', 'README.md', 'package.json']) assert.ok(pkg.files.includes(file), `${pkg.name}: ${file} is not in the tarball`);
      for (const target of JSON.stringify(pkg.manifest.exports).match(/\.\/dist\/[^"]+/g) ?? []) {
        assert.ok(pkg.files.includes(target.slice(2)), `${pkg.name}: exports points at ${target}, which is not in the tarball`);
      }
      assert.doesNotMatch(readFileSync(join(project, 'node_modules', pkg.name, 'README.md'), 'utf8'), /\]\(\.\.\//, `${pkg.name}: README links outside the package`);
    }
  });

  it('every entry point of every published package loads with import() and with require()', async () => {
    const specifiers = packages.flatMap((p) => Object.keys((p.manifest.exports ?? { '.': {} }) as object).map((k) => (k === '.' ? p.name : `${p.name}/${k.slice(2)}`)));
    const list = JSON.stringify(specifiers);
    const esm = await runIn(project, process.execPath, ['--input-type=module', '-e', `for (const s of ${list}) await import(s); console.log('ok')`], env, 60_000);
    assert.equal(esm.code, 0, esm.stderr);
    const cjs = await runIn(project, process.execPath, ['-e', `for (const s of ${list}) require(s); console.log('ok')`], env, 60_000);
    assert.equal(cjs.code, 0, cjs.stderr);
    assert.ok(specifiers.includes('@meshless/http/express') && specifiers.length >= packages.length + 1, list);
  });

  it('an ESM service: createServer + createAgent (one mTLS request), global fetch through setGlobalDispatcher, Express 4 mtls()/requirePeer()', async () => {
    const r = await runIn(project, process.execPath, ['esm-service.mjs'], env, 60_000);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { who: { peer: string; direct: string }; adminStatus: number; fetched: { peer: string }; expressVersion: string };
    assert.equal(out.who.peer, 'spiffe://consumer.example/ns/shop/sa/orders', 'mtls() set req.peer');
    assert.equal(out.who.direct, 'spiffe://consumer.example/ns/shop/sa/orders');
    assert.equal(out.adminStatus, 403, 'requirePeer() refused a peer the route does not allow');
    assert.equal(out.fetched.peer, 'spiffe://consumer.example/ns/shop/sa/orders', "Node's fetch went through createAgent");
    assert.match(out.expressVersion, /^4\./);
  });

  it('a CommonJS service: require() of every package, one mTLS request', async () => {
    const r = await runIn(project, process.execPath, ['cjs-service.cjs'], env, 60_000);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout.trim().split('\n').at(-1)!), { body: 'spiffe://consumer.example/ns/shop/sa/orders', middleware: 'function', grpc: 'function' });
  });

  it('a gRPC pair with the application\'s own @grpc/grpc-js and @grpc/proto-loader', async () => {
    const r = await runIn(project, process.execPath, ['grpc-pair.mjs'], env, 60_000);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout.trim().split('\n').at(-1)!), { caller: 'spiffe://consumer.example/ns/shop/sa/orders' });
  });

  it('one copy of undici and of @grpc/grpc-js in the tree', async () => {
    const r = await runIn(project, 'npm', ['ls', '--all', '--parseable', 'undici', '@grpc/grpc-js'], env, 60_000);
    const paths = r.stdout.split('\n').filter((l) => /node_modules\/(undici|@grpc\/grpc-js)$/.test(l));
    assert.deepEqual(paths.map((p) => p.slice(project.length)).sort(), ['/node_modules/@grpc/grpc-js', '/node_modules/undici']);
  });

  it('the public types compile with tsc --noEmit under nodenext, bundler and commonjs (node10) resolution', async () => {
    const configs: Record<string, { module: string; moduleResolution?: string; file: string }> = {
      nodenext: { module: 'nodenext', moduleResolution: 'nodenext', file: 'types.mts' },
      bundler: { module: 'esnext', moduleResolution: 'bundler', file: 'types.ts' },
      commonjs: { module: 'commonjs', file: 'types.ts' },
    };
    copyFileSync(join(project, 'types.ts'), join(project, 'types.mts'));
    const tsc = join(root, 'node_modules', '.bin', 'tsc'); // the workspace's TypeScript 5.9, on the user's project
    const results = await Promise.all(
      Object.entries(configs).map(async ([name, c]) => {
        const { file, ...options } = c;
        writeFileSync(join(project, `tsconfig.${name}.json`), JSON.stringify({ compilerOptions: { ...options, target: 'es2022', strict: true, noEmit: true, skipLibCheck: true, esModuleInterop: true, types: ['node'] }, files: [file] }));
        return { name, ...(await runIn(project, tsc, ['-p', `tsconfig.${name}.json`], env, 120_000)) };
      }),
    );
    for (const r of results) assert.equal(r.code, 0, `tsc (${r.name}):\n${r.stdout}${r.stderr}`);
  });

  it('the installed meshless binary issues certificates', async () => {
    const bin = join(project, 'node_modules', '.bin', 'meshless');
    const init = await runIn(project, bin, ['ca', 'init', '--out', './dev-ca', '--trust-domain', 'consumer.example'], env, 60_000);
    assert.equal(init.code, 0, init.stderr);
    const issue = await runIn(project, bin, ['ca', 'issue', 'spiffe://consumer.example/ns/shop/sa/api', '--ca', './dev-ca', '--out', './certs/api', '--dns', 'localhost'], env, 60_000);
    assert.equal(issue.code, 0, issue.stderr);
    assert.match(issue.stdout, /: tls\.crt, tls\.key, ca\.crt$/m);
    const leaf = new X509Certificate(readFileSync(join(project, 'certs', 'api', 'tls.crt')));
    assert.match(leaf.subjectAltName ?? '', /URI:spiffe:\/\/consumer\.example\/ns\/shop\/sa\/api/);
    const inspect = await runIn(project, bin, ['inspect', './certs/api'], env, 60_000);
    assert.equal(inspect.code, 0, inspect.stdout + inspect.stderr);
    const help = await runIn(project, bin, ['--help'], env, 60_000);
    assert.match(help.stdout, /Docs: https:\/\//);
  });
});
