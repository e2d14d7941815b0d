import assert from 'node:assert/strict';
import type { Server } from 'node:https';
import { codes, isMeshlessError, loadCredential, silentLogger, type Credential, type MeshlessErrorCode } from '@meshless/core';
import { channelCredentials, serverCredentials } from '@meshless/grpc';
import { createAgent, createServer, type MeshlessAgent } from '@meshless/http';
import { createTestCA, manualSource, recordingLogger, type IssuedCertificate } from '@meshless/testing';

// The four wrappers read their common options (source, allow, deny, dryRun, TLS policy, logger)
// through one resolver in core: one table of bad inputs, the same code and field from each, and a
// message that names the wrapper first and then the field. Construction only: nothing listens.

type Wrapper = 'createServer' | 'createAgent' | 'serverCredentials' | 'channelCredentials';
const WRAPPERS: Wrapper[] = ['createServer', 'createAgent', 'serverCredentials', 'channelCredentials'];

const built: { close(): unknown }[] = [];
function construct(wrapper: Wrapper, options: unknown): void {
  switch (wrapper) {
    case 'createServer': {
      const server: Server = createServer(options as never);
      built.push({ close: () => server.close() });
      return;
    }
    case 'createAgent': {
      const agent: MeshlessAgent = createAgent(options as never);
      built.push({ close: () => agent.close() });
      return;
    }
    case 'serverCredentials':
      serverCredentials(options as never);
      return;
    case 'channelCredentials':
      channelCredentials(options as never);
      return;
  }
}

interface Case {
  name: string;
  /** The options, from valid ones (`base`); `undefined` values remove a field. */
  options: (base: Record<string, unknown>, issued: IssuedCertificate) => unknown;
  code: MeshlessErrorCode;
  field: string;
  /** What the message says after "wrapper: ". */
  says: RegExp;
  /** Wrappers that accept this input (a TLS field a client cannot apply is refused instead: same code and field). */
  skip?: Wrapper[];
}

const without = (base: Record<string, unknown>, field: string) => {
  const copy = { ...base };
  delete copy[field];
  return copy;
};

const CASES: Case[] = [
  { name: 'no options object', options: () => undefined, code: codes.INVALID_OPTION, field: 'options', says: /needs an options object \{ source, allow \}/ },
  { name: 'options not an object', options: () => 'source', code: codes.INVALID_OPTION, field: 'options', says: /needs an options object/ },
  { name: 'missing source', options: (b) => without(b, 'source'), code: codes.INVALID_OPTION, field: 'source', says: /needs \{ source \}: a Source .* or a Credential/ },
  { name: 'null source', options: (b) => ({ ...b, source: null }), code: codes.INVALID_OPTION, field: 'source', says: /needs \{ source \}/ },
  { name: 'PEM material as source', options: (b, issued) => ({ ...b, source: issued }), code: codes.INVALID_OPTION, field: 'source', says: /loadCredential\(\{ cert, key, ca \}\)/ },
  { name: 'a string as source', options: (b) => ({ ...b, source: '/var/run/secrets/spiffe' }), code: codes.INVALID_OPTION, field: 'source', says: /source must be a Source .* got "\/var\/run\/secrets\/spiffe"/ },
  { name: 'missing allow', options: (b) => without(b, 'allow'), code: codes.INVALID_OPTION, field: 'allow', says: /needs \{ allow \}/ },
  { name: 'null allow', options: (b) => ({ ...b, allow: null }), code: codes.INVALID_OPTION, field: 'allow', says: /needs \{ allow \}/ },
  { name: 'empty allow', options: (b) => ({ ...b, allow: [] }), code: codes.EMPTY_ALLOW_LIST, field: 'allow', says: /^allow( for every origin)?: the allow-list is empty/ },
  { name: 'allow rule that does not parse', options: (b) => ({ ...b, allow: 'nonsense' }), code: codes.INVALID_RULE, field: 'allow', says: /^allow( for every origin)?: .*nonsense/ },
  { name: 'deny rule that does not parse', options: (b) => ({ ...b, deny: 'spiffe://Bad/x' }), code: codes.INVALID_RULE, field: 'deny', says: /^deny: .*spiffe:\/\/Bad\/x/ },
  { name: 'deny of the wrong type', options: (b) => ({ ...b, deny: 42 }), code: codes.INVALID_RULE, field: 'deny', says: /^deny: / },
  { name: 'dryRun not a boolean', options: (b) => ({ ...b, dryRun: 'yes' }), code: codes.INVALID_OPTION, field: 'dryRun', says: /^dryRun must be true or false, got "yes"/ },
  { name: 'logger a string', options: (b) => ({ ...b, logger: 'info' }), code: codes.INVALID_OPTION, field: 'logger', says: /^logger must be a pino-compatible logger/ },
  { name: 'logger without every method', options: (b) => ({ ...b, logger: { info() {} } }), code: codes.INVALID_OPTION, field: 'logger', says: /it has no error, warn, debug methods/ },
  { name: 'TLS version below 1.2', options: (b) => ({ ...b, minVersion: 'TLSv1.1' }), code: codes.INVALID_OPTION, field: 'minVersion', says: /minVersion/ },
  { name: 'maxVersion below the default minVersion', options: (b) => ({ ...b, maxVersion: 'TLSv1.2' }), code: codes.INVALID_OPTION, field: 'maxVersion', says: /maxVersion/ },
  { name: 'ciphers not a string', options: (b) => ({ ...b, ciphers: 42 }), code: codes.INVALID_OPTION, field: 'ciphers', says: /ciphers/ },
  { name: 'unknown option (typo)', options: (b) => ({ ...b, dryrun: true }), code: codes.INVALID_OPTION, field: 'dryrun', says: /^unknown option `dryrun`; did you mean `dryRun`\?/ },
  { name: 'unknown option', options: (b) => ({ ...b, denyList: ['*'] }), code: codes.INVALID_OPTION, field: 'denyList', says: /^unknown option `denyList`/ },
];

describe('the common options of createServer, createAgent, serverCredentials and channelCredentials', function () {
  let credential: Credential;
  let issued: IssuedCertificate;

  before(async function () {
    const ca = await createTestCA({ trustDomain: 'prod.example' });
    issued = await ca.issue({ spiffeId: 'spiffe://prod.example/ns/pay/sa/api', dnsNames: ['localhost'] });
    credential = loadCredential(issued);
  });
  after(async function () {
    await Promise.all(built.splice(0).map((b) => b.close()));
  });

  for (const c of CASES) {
    it(`${c.name}: ${c.code.replace('MESHLESS_ERR_', '')} (field ${c.field}) from each wrapper`, function () {
      const base = { source: credential, allow: '*', logger: silentLogger };
      const messages: string[] = [];
      for (const wrapper of WRAPPERS) {
        assert.throws(
          () => construct(wrapper, c.options(base, issued)),
          (err: unknown) => {
            assert.ok(isMeshlessError(err), `${wrapper}: not a MeshlessError: ${String(err)}`);
            assert.equal(err.code, c.code, `${wrapper}: ${err.message}`);
            assert.equal(err.field, c.field, `${wrapper}: ${err.message}`);
            assert.ok(err.message.startsWith(`${wrapper}: `), `${wrapper}: message does not name the wrapper first: ${err.message}`);
            const said = err.message.slice(wrapper.length + 2);
            // channelCredentials takes no TLS policy: it refuses the field, naming it, with the same code.
            if (!(wrapper === 'channelCredentials' && /^(min|max)Version|ciphers$/.test(c.field))) assert.match(said, c.says, `${wrapper}`);
            else assert.match(said, new RegExp(`^option \`${c.field}\` is not accepted: .*TLS`));
            messages.push(said.replace(/clients|servers|client|server/g, 'peer').replace(/ for every origin/, ''));
            return true;
          },
          `${wrapper} accepted ${c.name}`,
        );
      }
      // The same wording from the wrappers that apply the field (only who `allow` admits differs).
      const applying = messages.filter((_, i) => !(WRAPPERS[i] === 'channelCredentials' && /Version|ciphers/.test(c.field)));
      assert.equal(new Set(applying).size, 1, applying.join('\n'));
    });
  }

  it('every wrapper accepts every common option, a Source or a Credential, and a one-method { current() } source', function () {
    const source = manualSource(credential);
    const logger = recordingLogger();
    const common = { allow: ['spiffe://prod.example/**'], deny: ['spiffe://prod.example/ns/batch/**'], dryRun: true, logger };
    for (const wrapper of WRAPPERS) {
      const tls = wrapper === 'channelCredentials' ? {} : { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256' };
      for (const given of [source, credential, { current: () => credential }]) construct(wrapper, { ...common, ...tls, source: given });
    }
    assert.equal(logger.at('error').length, 0, JSON.stringify(logger.entries));
  });

  it('sessionTimeout is a server option: createAgent refuses it, naming why', function () {
    const base = { source: credential, allow: '*', logger: silentLogger, sessionTimeout: 300 };
    construct('createServer', base);
    construct('serverCredentials', base);
    for (const wrapper of ['createAgent', 'channelCredentials'] as const) {
      assert.throws(() => construct(wrapper, base), (e: unknown) => isMeshlessError(e, codes.INVALID_OPTION) && e.field === 'sessionTimeout' && e.message.startsWith(`${wrapper}: option \`sessionTimeout\` is not accepted`));
    }
  });

  it('the TLS settings of a hand-written client (rejectUnauthorized, checkServerIdentity, ca, cert, key, servername) are refused by createAgent with the reason, not as unknown names', function () {
    for (const [field, value] of [['rejectUnauthorized', false], ['checkServerIdentity', () => undefined], ['ca', 'PEM'], ['cert', 'PEM'], ['key', 'PEM'], ['servername', 'localhost']] as const) {
      assert.throws(
        () => construct('createAgent', { source: credential, allow: '*', logger: silentLogger, [field]: value }),
        (e: unknown) => isMeshlessError(e, codes.INVALID_OPTION) && e.field === field && e.message.startsWith(`createAgent: option \`${field}\` is not accepted: meshless`),
      );
    }
  });
});
