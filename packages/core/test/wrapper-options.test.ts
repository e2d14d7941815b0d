import assert from 'node:assert/strict';
import { codes, isMeshlessError, loadCredential, silentLogger, staticSource, type Credential } from '@meshless/core';
import { compilePolicy, compileRules, resolveOptions, type WrapperSpec } from '@meshless/core/internal';
import { createTestCA } from '@meshless/testing';

// core's option resolver, which createServer, createAgent, serverCredentials and
// channelCredentials share (test/options/common-options.test.ts drives the four through it).
const SPEC: WrapperSpec = {
  wrapper: 'createServer',
  peers: 'clients',
  scope: 'server',
  tls: ['minVersion', 'maxVersion', 'ciphers', 'ecdhCurve', 'sessionTimeout'],
  names: new Set(['mode', 'keepAliveTimeout']),
  refused: { cert: 'the certificate comes from `source`' },
};

describe('@meshless/core/internal: resolveOptions (the wrappers\' common options)', function () {
  let credential: Credential;
  before(async function () {
    const ca = await createTestCA({ trustDomain: 'prod.example' });
    credential = loadCredential(await ca.issue('spiffe://prod.example/ns/pay/sa/api'));
  });
  const fails = (options: unknown, field: string, message: RegExp, code: string = codes.INVALID_OPTION) =>
    assert.throws(() => resolveOptions(options, SPEC), (e: unknown) => isMeshlessError(e) && e.code === code && e.field === field && message.test(e.message), `${field}: ${String(message)}`);

  it('resolves the common options and leaves the others in rest', function () {
    const source = staticSource(credential);
    const r = resolveOptions({ source, allow: '*', deny: 'spiffe://prod.example/ns/batch/**', dryRun: true, logger: silentLogger, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256', ecdhCurve: 'X25519', sessionTimeout: 300, mode: 'strict', keepAliveTimeout: 1, cert: undefined }, SPEC);
    assert.equal(r.source, source);
    assert.equal(r.allow, '*');
    assert.equal(r.deny, 'spiffe://prod.example/ns/batch/**');
    assert.equal(r.dryRun, true);
    assert.deepEqual(r.dryRunOptions, { scope: 'server', logger: silentLogger });
    assert.deepEqual(r.tlsPolicy, { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256', ecdhCurve: 'X25519', sessionTimeout: 300 });
    assert.deepEqual(r.rest, { mode: 'strict', keepAliveTimeout: 1 });
    assert.equal(typeof r.metrics.refusals.add, 'function');
    const defaults = resolveOptions({ source: credential, allow: '*' }, SPEC);
    assert.equal(defaults.dryRun, false);
    assert.equal(defaults.dryRunOptions, undefined);
    assert.deepEqual(defaults.tlsPolicy, {});
    assert.equal(typeof defaults.logger.warn, 'function');
    assert.equal(defaults.source.current(), credential);
  });

  it('refuses with INVALID_OPTION naming the wrapper and the field', function () {
    fails(null, 'options', /^createServer: needs an options object/);
    fails([], 'options', /got an array/);
    fails({ allow: '*' }, 'source', /^createServer: needs \{ source \}/);
    fails({ source: 42n, allow: '*' }, 'source', /got 42n/);
    fails({ source: () => credential, allow: '*' }, 'source', /got a function/);
    fails({ source: { cert: 'x', key: 'y' }, allow: '*' }, 'source', /loadCredential/);
    fails({ source: credential }, 'allow', /any client whose certificate verifies/);
    fails({ source: credential, allow: '*', cert: 'x' }, 'cert', /option `cert` is not accepted: the certificate comes from `source`/);
    fails({ source: credential, allow: '*', Mode: 'strict' }, 'Mode', /did you mean `mode`/);
    fails({ source: credential, allow: '*', xyzzy: 1 }, 'xyzzy', /^createServer: unknown option `xyzzy` \(/);
    fails({ source: credential, allow: '*', logger: null }, 'logger', /got null/);
    fails({ source: credential, allow: '*', logger: { error() {}, warn() {}, info() {} } }, 'logger', /no debug method$/);
    fails({ source: credential, allow: '*', minVersion: 'TLSv1.3', maxVersion: 'TLSv1.2' }, 'maxVersion', /below minVersion/);
    fails({ source: credential, allow: '*', maxVersion: 'TLSv1' }, 'maxVersion', /use 'TLSv1.3' or 'TLSv1.2'/);
    fails({ source: credential, allow: '*', ecdhCurve: '' }, 'ecdhCurve', /non-empty/);
    fails({ source: credential, allow: '*', sessionTimeout: 1.5 }, 'sessionTimeout', /whole number of seconds/);
    fails({ source: credential, allow: '*', sessionTimeout: -1 }, 'sessionTimeout', /whole number of seconds/);
    fails({ source: credential, allow: '*', deny: ['spiffe://prod.example/ns/*x'] }, 'deny', /^createServer: deny: /, codes.INVALID_RULE);
  });

  it('a TLS field outside the wrapper\'s: refused with its reason, or as not taken', function () {
    const client: WrapperSpec = { ...SPEC, wrapper: 'channelCredentials', tls: [], tlsRefusal: 'no TLS policy here' };
    assert.throws(() => resolveOptions({ source: credential, allow: '*', minVersion: 'TLSv1.3' }, client), /channelCredentials: option `minVersion` is not accepted: no TLS policy here/);
    const agent: WrapperSpec = { ...SPEC, wrapper: 'createAgent', tls: ['minVersion'] };
    assert.throws(() => resolveOptions({ source: credential, allow: '*', ciphers: 'x' }, agent), /createAgent: option `ciphers` is not accepted: createAgent takes minVersion/);
    assert.doesNotThrow(() => resolveOptions({ source: credential, allow: '*', ciphers: undefined }, agent));
  });

  it('an object with only current() works as a source that never emits', async function () {
    const r = resolveOptions({ source: { current: () => credential }, allow: '*' }, SPEC);
    assert.equal(r.source.current(), credential);
    assert.equal(r.source.health().generation, credential.generation);
    assert.equal(r.source.health().state, 'fresh');
    assert.equal(await r.source.reload(), credential);
    await r.source.close();
    r.source.on('update', () => assert.fail('never emits'));
  });

  it('compilePolicy: rule errors keep their code and name the wrapper and the field', function () {
    const authorize = compilePolicy('serverCredentials', '*', 'spiffe://prod.example/ns/pay/sa/api', undefined);
    assert.equal(authorize(credential.identity).allowed, false);
    assert.throws(() => compilePolicy('serverCredentials', [], undefined, undefined), (e: unknown) => isMeshlessError(e, codes.EMPTY_ALLOW_LIST) && e.field === 'allow' && e.message.startsWith('serverCredentials: allow: '));
    assert.throws(() => compilePolicy('serverCredentials', '*', 'dns:', undefined), (e: unknown) => isMeshlessError(e, codes.INVALID_RULE) && e.field === 'deny' && e.rule === 'dns:');
    const dry = compilePolicy('serverCredentials', 'spiffe://prod.example/ns/web/**', undefined, { scope: 'grpc-server', logger: silentLogger });
    assert.equal(dry(credential.identity).allowed, true);
    assert.throws(() => compileRules('x', 'allow', () => { throw new TypeError('boom'); }), (e: unknown) => e instanceof TypeError && e.message === 'boom', 'a non-meshless error is not wrapped');
  });
});
