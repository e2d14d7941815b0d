import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { inspect } from 'node:util';
import { loadCredential, privateKeyPem, codes, MeshlessError, identityOf } from '@meshless/core';
import { expectMeshlessError } from './helpers/expect-error.js';
import { OpenSslCA } from './helpers/openssl.js';

const ID = 'spiffe://prod.example/ns/pay/sa/api';

function expectCode(fn: () => unknown, code: string, message?: RegExp): MeshlessError {
  const caught = expectMeshlessError(fn, code, message);
  assert.doesNotMatch(caught.message, /PRIVATE KEY|MII[A-Za-z0-9+/]{20}/, 'no key material in messages');
  return caught;
}

describe('loadCredential with certificates made by the openssl CLI', function () {
  let ca: OpenSslCA;
  let other: OpenSslCA;
  before(function () {
    if (!OpenSslCA.available()) {
      console.log('    skipped: openssl CLI not found');
      this.skip();
    }
    ca = new OpenSslCA();
    other = new OpenSslCA('/CN=another root');
  });
  after(() => {
    ca?.close();
    other?.close();
  });

  for (const kind of ['rsa-pkcs1', 'rsa-pkcs8', 'ec-sec1', 'ec-pkcs8', 'ed25519'] as const) {
    it(`loads a ${kind} key with its SPIFFE leaf`, () => {
      const keyFile = ca.key(kind);
      const cert = ca.issue(keyFile, [`URI.1 = ${ID}`, 'DNS.1 = api.internal.example'], { cn: 'api' });
      const c = loadCredential({ cert, key: ca.read(keyFile), ca: ca.caCert });
      assert.equal(c.identity.spiffeId, ID);
      assert.equal(c.identity.trustDomain, 'prod.example');
      assert.deepEqual(c.identity.dnsNames, ['api.internal.example']);
      assert.equal(c.identity.commonName, 'api');
      assert.equal(c.generation, 1);
      assert.ok(c.notAfter > new Date());
      assert.ok(Object.isFrozen(c));
      assert.match(privateKeyPem(c), /^-----BEGIN PRIVATE KEY-----/);
    });
  }

  it('loads an encrypted PKCS#8 key with its passphrase, and says what is wrong without one', () => {
    const keyFile = ca.key('ec-pkcs8-encrypted', 'hunter2');
    const cert = ca.issue(keyFile, [`URI.1 = ${ID}`]);
    const key = ca.read(keyFile);
    assert.match(key, /ENCRYPTED PRIVATE KEY/);
    const c = loadCredential({ cert, key, ca: ca.caCert, passphrase: 'hunter2' });
    assert.equal(c.identity.spiffeId, ID);
    expectCode(() => loadCredential({ cert, key, ca: ca.caCert }), codes.KEY_ENCRYPTED, /passphrase/);
    expectCode(() => loadCredential({ cert, key, ca: ca.caCert, passphrase: 'wrong' }), codes.KEY_INVALID, /passphrase is wrong/);
  });

  it('accepts Buffers and a bundle with several roots (CA rotation overlap)', () => {
    const keyFile = ca.key('ec-sec1');
    const cert = ca.issue(keyFile, [`URI.1 = ${ID}`]);
    const c = loadCredential({ cert: Buffer.from(cert), key: Buffer.from(ca.read(keyFile)), ca: Buffer.from(other.caCert + ca.caCert) });
    assert.equal(c.bundle.length, 2);
    assert.equal(c.identity.spiffeId, ID);
  });

  it('refuses a key that does not match the leaf, naming the key file', () => {
    const k1 = ca.key('ec-sec1');
    const k2 = ca.key('ec-sec1');
    const cert = ca.issue(k1, [`URI.1 = ${ID}`]);
    const err = expectCode(() => loadCredential({ cert, key: ca.read(k2), ca: ca.caCert }, { files: { key: '/mnt/tls.key' } }), codes.KEY_MISMATCH, /\/mnt\/tls\.key/);
    assert.equal(err.file, '/mnt/tls.key');
  });

  it('refuses a chain that does not verify to the bundle', () => {
    const k = ca.key('ec-sec1');
    const cert = ca.issue(k, [`URI.1 = ${ID}`]);
    expectCode(() => loadCredential({ cert, key: ca.read(k), ca: other.caCert }), codes.CHAIN_UNTRUSTED, /does not verify to the trust bundle/);
  });

  it('refuses a CA certificate used as a leaf', () => {
    const k = ca.key('ec-sec1');
    const cert = ca.issue(k, [`URI.1 = ${ID}`], { ca: true });
    expectCode(() => loadCredential({ cert, key: ca.read(k), ca: ca.caCert }), codes.LEAF_IS_CA, /CA certificate/);
  });

  it('refuses expired and not-yet-valid leaves, with clock skew', () => {
    const k = ca.key('ec-sec1');
    const cert = ca.issue(k, [`URI.1 = ${ID}`], { days: 1 });
    const key = ca.read(k);
    const leaf = new X509Certificate(cert);
    const after = Date.parse(leaf.validTo) + 1000;
    const before = Date.parse(leaf.validFrom) - 1000;
    expectCode(() => loadCredential({ cert, key, ca: ca.caCert }, { now: after }), codes.CERT_EXPIRED, /expired at/);
    expectCode(() => loadCredential({ cert, key, ca: ca.caCert }, { now: before }), codes.CERT_NOT_YET_VALID, /not valid before/);
    assert.ok(loadCredential({ cert, key, ca: ca.caCert }, { now: before, clockSkewMs: 5000 }));
    assert.ok(loadCredential({ cert, key, ca: ca.caCert }, { now: after, clockSkewMs: 5000 }));
  });

  it('checks the own identity against expectIdentity rules', () => {
    const k = ca.key('ec-sec1');
    const cert = ca.issue(k, [`URI.1 = ${ID}`]);
    const key = ca.read(k);
    assert.ok(loadCredential({ cert, key, ca: ca.caCert }, { expectIdentity: 'spiffe://prod.example/ns/pay/**' }));
    expectCode(() => loadCredential({ cert, key, ca: ca.caCert }, { expectIdentity: ['spiffe://prod.example/ns/orders/sa/api'] }), codes.IDENTITY_MISMATCH, /not the one expected/);
  });

  it('works with a second copy of the package (privateKeyPem from another module instance)', async () => {
    const k = ca.key('ec-sec1');
    const c = loadCredential({ cert: ca.issue(k, [`URI.1 = ${ID}`]), key: ca.read(k), ca: ca.caCert });
    const copy = (await import(`../src/credential.ts?copy=${Date.now()}`)) as typeof import('../src/credential.js');
    assert.match(copy.privateKeyPem(c), /BEGIN PRIVATE KEY/);
    assert.throws(() => privateKeyPem({ ...c }), /not a Credential/, 'a spread copy carries no key');
  });

  it('never shows the key in inspect, JSON or errors', () => {
    const k = ca.key('ec-sec1');
    const cert = ca.issue(k, [`URI.1 = ${ID}`]);
    const c = loadCredential({ cert, key: ca.read(k), ca: ca.caCert });
    const shown = inspect(c) + JSON.stringify(c) + String(c.privateKey);
    assert.doesNotMatch(shown, /PRIVATE KEY/);
    assert.match(inspect(c), /Credential\(spiffe:\/\/prod\.example/);
  });

  it('reads the SAN-injection certificate as having no SPIFFE ID', () => {
    const k = ca.key('ec-sec1');
    const cert = ca.issue(k, ['URI.1 = spiffe://evil.example/x, URI:spiffe://good.example/y']);
    const x = new X509Certificate(cert);
    // Node quotes the value; a naive substring search would find "URI:spiffe://good.example/y".
    assert.ok(x.subjectAltName?.includes('URI:spiffe://good.example/y'));
    const id = identityOf(x);
    assert.equal(id.spiffeId, undefined);
    assert.deepEqual(id.uris, ['spiffe://evil.example/x, URI:spiffe://good.example/y']);
  });

  it('reads two URI SANs as no SPIFFE ID', () => {
    const k = ca.key('ec-sec1');
    const cert = ca.issue(k, ['URI.1 = spiffe://prod.example/a', 'URI.2 = spiffe://prod.example/b']);
    const id = identityOf(new X509Certificate(cert));
    assert.equal(id.spiffeId, undefined);
    assert.equal(id.uris.length, 2);
  });

  it('reads a DNS-only certificate with DNS names and no SPIFFE ID', () => {
    const k = ca.key('ec-sec1');
    const cert = ca.issue(k, ['DNS.1 = a.example', 'DNS.2 = b.example', 'IP.1 = 127.0.0.1'], { cn: 'svc' });
    const id = identityOf(new X509Certificate(cert));
    assert.equal(id.spiffeId, undefined);
    assert.deepEqual(id.dnsNames, ['a.example', 'b.example']);
    assert.equal(String(id), 'a.example');
  });
});

describe('loadCredential input checks', () => {
  const garbage = '-----BEGIN CERTIFICATE-----\nnot base64 at all!!\n-----END CERTIFICATE-----\n';
  it('refuses empty PEM, naming the field', () => {
    expectCode(() => loadCredential({ cert: '', key: 'x', ca: 'x' }), codes.PEM_EMPTY, /cert is empty/);
    expectCode(() => loadCredential({ cert: '  \n', key: 'x', ca: 'x' }, { files: { cert: '/m/tls.crt' } }), codes.PEM_EMPTY, /\/m\/tls\.crt/);
  });
  it('refuses text without a certificate block', () => {
    expectCode(() => loadCredential({ cert: 'hello', key: 'x', ca: 'x' }), codes.PEM_INVALID, /BEGIN CERTIFICATE/);
  });
  it('refuses a corrupt certificate block', () => {
    expectCode(() => loadCredential({ cert: garbage, key: 'x', ca: 'x' }), codes.PEM_INVALID, /cannot be parsed/);
  });
  it('refuses a missing input object', () => {
    expectCode(() => loadCredential(undefined as never), codes.INVALID_OPTION);
  });
});

describe('loadCredential: a certificate whose public key cannot be decoded', function () {
  it('is refused at load (PEM_INVALID naming the field), not when it is first used to verify a peer', async () => {
    const { createTestCA } = await import('@meshless/testing');
    const ca = await createTestCA({ trustDomain: 'prod.example' });
    const issued = await ca.issue('spiffe://prod.example/ns/pay/sa/api');
    const der = Buffer.from(new X509Certificate(ca.certPem).raw);
    // Corrupt the EC point inside the root's SubjectPublicKeyInfo: Node still parses the
    // certificate, but `publicKey` throws "decode error".
    const at = der.indexOf(Buffer.from([0x03, 0x42, 0x00, 0x04]));
    assert.ok(at > 0);
    der[at + 10]! ^= 0xff;
    const bad = `-----BEGIN CERTIFICATE-----\n${der.toString('base64').match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`;
    assert.throws(
      () => loadCredential({ ...issued, ca: ca.bundle + bad }),
      (err: unknown) => err instanceof MeshlessError && err.code === codes.PEM_INVALID && /ca/.test(err.message),
    );
  });
});
