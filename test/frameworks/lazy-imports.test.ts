import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ensureBuilt, root } from '../examples/helpers/processes.js';

const FRAMEWORKS = ['fastify', 'koa', 'hono', '@hono/node-server', 'express', '@nestjs/common', '@nestjs/core', '@nestjs/microservices', '@nestjs/platform-', '@grpc/grpc-js'];

/** Module URLs a fresh `node` process loads for `imports` (the built packages, as an app gets them). */
function loadedBy(imports: string[]): string[] {
  const code = imports.map((m) => `await import(${JSON.stringify(m)});`).join('\n');
  const r = spawnSync(process.execPath, ['--import', join(root, 'test/frameworks/helpers/record-loads.mjs'), '--input-type=module', '-e', code], { cwd: root, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stderr.split('\n').filter((l) => l.startsWith('loaded ')).map((l) => l.slice('loaded '.length));
}

const frameworksIn = (urls: string[], except: string[] = []) =>
  FRAMEWORKS.filter((f) => !except.includes(f)).filter((f) => urls.some((u) => u.includes(`/node_modules/${f}`)));

describe('integrations load no framework the application does not use', function () {
  this.timeout(60_000);
  before(() => ensureBuilt());

  it('@meshless/http loads no framework (and no grpc-js)', () => {
    const urls = loadedBy(['@meshless/http']);
    assert.ok(urls.some((u) => u.includes('packages/http/dist/index.js')), 'the recorder sees the package itself');
    assert.deepEqual(frameworksIn(urls), []);
    assert.deepEqual(frameworksIn(loadedBy(['fastify'])), ['fastify'], 'control: the recorder does see a framework');
  });

  it('@meshless/http/fastify and /express load neither Fastify nor Express (types only)', () => {
    assert.deepEqual(frameworksIn(loadedBy(['@meshless/http/fastify', '@meshless/http/express'])), []);
  });

  it('@meshless/nest loads Nest itself, but no HTTP platform, no microservices package and no grpc-js (loaded on the first gRPC call)', () => {
    const urls = loadedBy(['@meshless/nest']);
    assert.deepEqual(frameworksIn(urls, ['@nestjs/common', '@nestjs/core']), []);
    assert.ok(urls.some((u) => u.includes('/node_modules/@nestjs/common')), 'Nest is loaded');
  });
});
