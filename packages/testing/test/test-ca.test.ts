import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { createTestCA, keyTypes, type TestCA } from '@meshless/testing';
import { x509 } from '../src/x509.js';
import { opensslVerify, pemBlocks, useTempDir } from './support.js';

const TD = 'prod.example';
const API = 'spiffe://prod.example/ns/pay/sa/api';
const CERT_PEM = /^-----BEGIN CERTIFICATE-----\n(?:[A-Za-z0-9+/=]{1,64}\n)+-----END CERTIFICATE-----\n$/;
const KEY_PEM = /^-----BEGIN PRIVATE KEY-----\n(?:[A-Za-z0-9+/=]{1,64}\n)+-----END PRIVATE KEY-----\n$/;

const parse = (pem: string) => new x509.X509Certificate(pemBlocks(pem)[0]!);
const spkiOf = (key: string) => createPublicKey(createPrivateKey(key)).export({ type: 'spki', format: 'der' });
const spkiOfCert = (pem: string) => new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' });

describe('createTestCA', () => {
  const tmp = useTempDir();
  let ca: TestCA;
  before(async () => {
    ca = await createTestCA({ trustDomain: TD });
  });

  describe('the root', () => {
    it('is a self-signed CA for the trust domain, in standard PEM', () => {
      assert.equal(ca.trustDomain, TD);
      assert.equal(ca.keyType, 'ec-p256');
      assert.match(ca.certPem, CERT_PEM);
      assert.match(ca.keyPem, KEY_PEM);
      assert.equal(ca.bundle, ca.certPem);
      assert.equal(ca.intermediateCertPem, undefined);
      const root = new X509Certificate(ca.certPem);
      assert.equal(root.ca, true);
      assert.ok(root.checkIssued(root));
      assert.ok(root.verify(root.publicKey));
      assert.match(root.subject, /^CN=meshless test root prod\.example$/m);
      assert.equal(root.subjectAltName, 'URI:spiffe://prod.example');
      assert.deepEqual(spkiOf(ca.keyPem), spkiOfCert(ca.certPem));
    });

    it('has critical basicConstraints CA:true and keyUsage keyCertSign|cRLSign', () => {
      const root = parse(ca.certPem);
      const bc = root.getExtension(x509.BasicConstraintsExtension)!;
      assert.equal(bc.ca, true);
      assert.equal(bc.critical, true);
      const ku = root.getExtension(x509.KeyUsagesExtension)!;
      assert.equal(ku.critical, true);
      assert.equal(ku.usages, x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
      const ski = root.getExtension(x509.SubjectKeyIdentifierExtension)!;
      assert.equal(root.getExtension(x509.AuthorityKeyIdentifierExtension)!.keyId, ski.keyId);
    });

    it('is a new CA each time: two CAs of one trust domain do not trust each other', async () => {
      const other = await createTestCA({ trustDomain: TD });
      assert.notEqual(other.certPem, ca.certPem);
      assert.notEqual(new X509Certificate(other.certPem).subject, new X509Certificate(ca.certPem).subject);
      const leaf = await other.issue(API);
      assert.equal(new X509Certificate(leaf.cert).checkIssued(new X509Certificate(ca.certPem)), false);
      const result = await opensslVerify(tmp(), { caFile: ca.bundle, leaf: leaf.cert });
      assert.equal(result.ok, false, result.output);
    });
  });

  describe('issue()', () => {
    it('mints a SPIFFE leaf that Node and OpenSSL accept under the root', async () => {
      const before = Date.now();
      const leaf = await ca.issue(API);
      assert.match(leaf.cert, CERT_PEM);
      assert.match(leaf.key, KEY_PEM);
      assert.equal(leaf.ca, ca.certPem);
      const cert = new X509Certificate(leaf.cert);
      const root = new X509Certificate(ca.certPem);
      assert.equal(cert.ca, false);
      assert.ok(cert.checkIssued(root));
      assert.ok(cert.verify(root.publicKey));
      assert.equal(cert.subjectAltName, `URI:${API}`);
      assert.equal(cert.serialNumber, leaf.serialNumber);
      assert.match(leaf.serialNumber, /^[1-7][0-9A-F]{31}$/);
      assert.deepEqual(cert.keyUsage, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
      assert.deepEqual(spkiOf(leaf.key), spkiOfCert(leaf.cert));
      const validFrom = Date.parse(cert.validFrom);
      const validTo = Date.parse(cert.validTo);
      assert.ok(validFrom <= before - 59_000 && validFrom >= before - 62_000, cert.validFrom);
      assert.ok(Math.abs(validTo - (before + 3_600_000)) < 5_000, cert.validTo);
      for (const purpose of ['sslserver', 'sslclient'] as const) {
        const result = await opensslVerify(tmp(), { caFile: ca.bundle, leaf: leaf.cert, purpose });
        assert.ok(result.ok, result.output);
      }
    });

    it('sets the leaf extensions: CA:false, key usages, key identifiers', async () => {
      const leaf = parse((await ca.issue(API)).cert);
      const root = parse(ca.certPem);
      const bc = leaf.getExtension(x509.BasicConstraintsExtension)!;
      assert.equal(bc.ca, false);
      assert.equal(bc.critical, true);
      const ku = leaf.getExtension(x509.KeyUsagesExtension)!;
      assert.ok(ku.usages & x509.KeyUsageFlags.digitalSignature);
      assert.ok(ku.usages & x509.KeyUsageFlags.keyEncipherment);
      assert.equal(ku.usages & x509.KeyUsageFlags.keyCertSign, 0);
      assert.deepEqual([...leaf.getExtension(x509.ExtendedKeyUsageExtension)!.usages], [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]);
      assert.equal(
        leaf.getExtension(x509.AuthorityKeyIdentifierExtension)!.keyId,
        root.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId,
      );
      const ski = leaf.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId;
      const expected = await leaf.publicKey.getKeyIdentifier('SHA-1');
      assert.equal(ski, Buffer.from(expected).toString('hex'));
      assert.ok(await leaf.verify({ publicKey: root.publicKey, signatureOnly: true }));
    });

    it('gives every leaf a fresh key and serial number', async () => {
      const [a, b] = await Promise.all([ca.issue(API), ca.issue(API)]);
      assert.notEqual(a!.key, b!.key);
      assert.notEqual(a!.serialNumber, b!.serialNumber);
    });

    it('writes DNS, IP and extra URI SANs, and the common name', async () => {
      const leaf = await ca.issue({
        spiffeId: API,
        dnsNames: ['api.internal.example', 'localhost'],
        ipAddresses: ['127.0.0.1', '::1'],
        commonName: 'legacy-batch',
      });
      const cert = new X509Certificate(leaf.cert);
      assert.equal(
        cert.subjectAltName,
        `URI:${API}, DNS:api.internal.example, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1`,
      );
      assert.match(cert.subject, /^CN=legacy-batch$/m);
      assert.ok(cert.checkHost('api.internal.example'));
      assert.ok(cert.checkIP('127.0.0.1'));
    });

    it('has no CN unless asked, and no SAN extension when there are no names', async () => {
      const leaf = await ca.issue({ commonName: 'only-cn' });
      const cert = new X509Certificate(leaf.cert);
      assert.equal(cert.subjectAltName, undefined);
      assert.equal(new X509Certificate((await ca.issue(API)).cert).subject, 'O=meshless testing');
    });

    it('honours notBefore, notAfter and ttlMs', async () => {
      const notBefore = new Date('2030-01-02T03:04:05Z');
      const notAfter = new Date('2030-02-03T04:05:06Z');
      const fixed = new X509Certificate((await ca.issue({ spiffeId: API, notBefore, notAfter })).cert);
      assert.equal(new Date(fixed.validFrom).toISOString(), notBefore.toISOString());
      assert.equal(new Date(fixed.validTo).toISOString(), notAfter.toISOString());

      const short = new X509Certificate((await ca.issue({ spiffeId: API, notBefore, ttlMs: 90_000 })).cert);
      assert.equal(Date.parse(short.validTo) - Date.parse(short.validFrom), 90_000);

      const expiredAt = new Date(Date.now() - 3_600_000);
      const expired = await ca.issue({ spiffeId: API, notAfter: expiredAt });
      const cert = new X509Certificate(expired.cert);
      assert.ok(Date.parse(cert.validTo) < Date.now());
      assert.ok(Date.parse(cert.validFrom) < Date.parse(cert.validTo));
      const result = await opensslVerify(tmp(), { caFile: ca.bundle, leaf: expired.cert });
      assert.equal(result.ok, false);
      assert.match(result.output, /expired/);
    });

    it('uses a given serial number, normalized as Node reports it', async () => {
      for (const [given, shown] of [['01', '01'], ['00ff', 'FF'], ['0xDEADbeef', 'DEADBEEF'], ['7f:00', '7F00']]) {
        const leaf = await ca.issue({ spiffeId: API, serialNumber: given });
        assert.equal(leaf.serialNumber, shown);
        assert.equal(new X509Certificate(leaf.cert).serialNumber, shown);
        assert.ok((await opensslVerify(tmp(), { caFile: ca.bundle, leaf: leaf.cert })).ok);
      }
      await assert.rejects(ca.issue({ spiffeId: API, serialNumber: 'xyz' }), TypeError);
      await assert.rejects(ca.issue({ spiffeId: API, serialNumber: '0000' }), RangeError);
    });

    it('sets the extended key usages asked for, or none', async () => {
      const serverOnly = await ca.issue({ spiffeId: API, extendedKeyUsage: ['serverAuth'] });
      assert.deepEqual(new X509Certificate(serverOnly.cert).keyUsage, ['1.3.6.1.5.5.7.3.1']);
      const client = await opensslVerify(tmp(), { caFile: ca.bundle, leaf: serverOnly.cert, purpose: 'sslclient' });
      assert.equal(client.ok, false, client.output);
      const none = parse((await ca.issue({ spiffeId: API, extendedKeyUsage: [] })).cert);
      assert.equal(none.getExtension(x509.ExtendedKeyUsageExtension), null);
      const byOid = await ca.issue({ spiffeId: API, extendedKeyUsage: ['1.3.6.1.5.5.7.3.3'] });
      assert.deepEqual(new X509Certificate(byOid.cert).keyUsage, ['1.3.6.1.5.5.7.3.3']);
      await assert.rejects(ca.issue({ spiffeId: API, extendedKeyUsage: ['serverauth'] }), /unknown extendedKeyUsage/);
    });

    it('can give a leaf another key type than the CA', async () => {
      const leaf = await ca.issue({ spiffeId: API, keyType: 'ed25519' });
      const cert = new X509Certificate(leaf.cert);
      assert.equal(cert.publicKey.asymmetricKeyType, 'ed25519');
      assert.ok(cert.verify(new X509Certificate(ca.certPem).publicKey));
    });

    it('rejects a bad argument with a clear error', async () => {
      await assert.rejects(ca.issue({ spiffeId: API, keyType: 'rsa-1024' as never }), /keyType must be one of/);
      await assert.rejects(ca.issue(undefined as never), /SPIFFE ID string or an options object/);
      await assert.rejects(ca.issue({ spiffeId: API, ttlMs: -1 }), RangeError);
      await assert.rejects(ca.issue({ spiffeId: API, notAfter: new Date(Number.NaN) }), TypeError);
    });
  });

  describe('hostile certificates', () => {
    it('two URI SANs', async () => {
      const leaf = await ca.issue({ spiffeId: API, uris: ['spiffe://prod.example/ns/other/sa/x'] });
      assert.equal(new X509Certificate(leaf.cert).subjectAltName, `URI:${API}, URI:spiffe://prod.example/ns/other/sa/x`);
    });

    it('a single URI SAN that reads like two (SAN injection)', async () => {
      const injected = 'spiffe://evil.example/x, URI:spiffe://good.example/y';
      const leaf = await ca.issue({ uris: [injected] });
      const names = parse(leaf.cert).getExtension(x509.SubjectAlternativeNameExtension)!.names.toJSON();
      assert.deepEqual(names, [{ type: 'url', value: injected }]);
      // Node quotes the value: a naive `includes('URI:spiffe://good.example/y')` is what this catches.
      assert.equal(new X509Certificate(leaf.cert).subjectAltName, 'URI:"spiffe://evil.example/x\\u002c URI:spiffe://good.example/y"');
      assert.ok((await opensslVerify(tmp(), { caFile: ca.bundle, leaf: leaf.cert })).ok);
    });

    it('a CA certificate issued as a leaf', async () => {
      const leaf = await ca.issue({ spiffeId: API, isCA: true });
      const cert = new X509Certificate(leaf.cert);
      assert.equal(cert.ca, true);
      assert.equal(cert.subjectAltName, `URI:${API}`);
      assert.ok(cert.checkIssued(new X509Certificate(ca.certPem)));
      const ku = parse(leaf.cert).getExtension(x509.KeyUsagesExtension)!;
      assert.ok(ku.usages & x509.KeyUsageFlags.keyCertSign);
    });

    it('selfSigned(): a look-alike that does not chain to the CA', async () => {
      const fake = await ca.selfSigned({ spiffeId: API, commonName: 'impostor' });
      const cert = new X509Certificate(fake.cert);
      assert.equal(cert.ca, false);
      assert.equal(cert.subjectAltName, `URI:${API}`);
      assert.equal(cert.issuer, cert.subject);
      assert.ok(cert.verify(cert.publicKey));
      assert.equal(cert.checkIssued(new X509Certificate(ca.certPem)), false);
      assert.equal(fake.ca, ca.bundle);
      assert.equal(pemBlocks(fake.cert).length, 1);
      assert.deepEqual(spkiOf(fake.key), spkiOfCert(fake.cert));
      const result = await opensslVerify(tmp(), { caFile: ca.bundle, leaf: fake.cert });
      assert.equal(result.ok, false, result.output);
      assert.equal(new X509Certificate((await ca.selfSigned(API)).cert).subjectAltName, `URI:${API}`);
    });
  });

  describe('with an intermediate', () => {
    it('signs leaves with the intermediate and sends it in the chain', async () => {
      const withIntermediate = await createTestCA({ trustDomain: TD, intermediate: true });
      const leaf = await withIntermediate.issue(API);
      const [leafPem, intermediatePem, ...rest] = pemBlocks(leaf.cert);
      assert.equal(rest.length, 0);
      assert.equal(intermediatePem, withIntermediate.intermediateCertPem);
      assert.equal(leaf.ca, withIntermediate.certPem);
      const root = new X509Certificate(withIntermediate.certPem);
      const intermediate = new X509Certificate(intermediatePem!);
      const cert = new X509Certificate(leafPem!);
      assert.equal(intermediate.ca, true);
      assert.match(intermediate.subject, /^CN=meshless test intermediate prod\.example$/m);
      assert.ok(intermediate.checkIssued(root) && intermediate.verify(root.publicKey));
      assert.ok(cert.checkIssued(intermediate) && cert.verify(intermediate.publicKey));
      assert.equal(cert.checkIssued(root), false);

      const verified = await opensslVerify(tmp(), { caFile: withIntermediate.bundle, leaf: leafPem!, untrusted: intermediatePem! });
      assert.ok(verified.ok, verified.output);
      const alone = await opensslVerify(tmp(), { caFile: withIntermediate.bundle, leaf: leafPem! });
      assert.equal(alone.ok, false, alone.output);
    });
  });

  describe('key types', () => {
    for (const keyType of keyTypes) {
      it(`${keyType}: root, intermediate and leaf verify with Node and OpenSSL`, async function () {
        this.timeout(20_000);
        const typed = await createTestCA({ trustDomain: TD, keyType, intermediate: true });
        assert.equal(typed.keyType, keyType);
        const leaf = await typed.issue(API);
        const [leafPem, intermediatePem] = pemBlocks(leaf.cert);
        const cert = new X509Certificate(leafPem!);
        assert.equal(cert.publicKey.asymmetricKeyType, keyType.startsWith('ec') ? 'ec' : keyType.split('-')[0]);
        assert.ok(cert.verify(new X509Certificate(intermediatePem!).publicKey));
        assert.deepEqual(spkiOf(leaf.key), spkiOfCert(leafPem!));
        assert.deepEqual(spkiOf(typed.keyPem), spkiOfCert(typed.certPem));
        const result = await opensslVerify(tmp(), { caFile: typed.bundle, leaf: leafPem!, untrusted: intermediatePem!, purpose: 'sslserver' });
        assert.ok(result.ok, result.output);
      });
    }
  });

  it('ttlMs sets the lifetime of the CA certificates', async () => {
    const shortLived = await createTestCA({ trustDomain: TD, ttlMs: 120_000, intermediate: true });
    for (const pem of [shortLived.certPem, shortLived.intermediateCertPem!]) {
      const validTo = Date.parse(new X509Certificate(pem).validTo);
      assert.ok(Math.abs(validTo - (Date.now() + 120_000)) < 5_000, new X509Certificate(pem).validTo);
    }
  });

  it('rejects a bad trust domain or key type', async () => {
    await assert.rejects(createTestCA({ trustDomain: 'spiffe://prod.example' }), /trustDomain must be a SPIFFE trust domain/);
    await assert.rejects(createTestCA({ trustDomain: 'Prod.Example' }), TypeError);
    await assert.rejects(createTestCA({ trustDomain: TD, keyType: 'dsa' as never }), /keyType must be one of/);
  });

  // Speed is reported, not asserted (goals live in bench/): a timed assertion flakes on a busy CI.
  it('issues 200 EC leaves in a row, each with its own serial and key', async function () {
    this.timeout(60_000);
    const fresh = await createTestCA({ trustDomain: TD });
    const started = performance.now();
    const serials = new Set<string>();
    const keys = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const leaf = await fresh.issue(`spiffe://prod.example/ns/load/sa/w${i}`);
      serials.add(leaf.serialNumber);
      keys.add(leaf.key);
    }
    const elapsed = performance.now() - started;
    console.log(`      200 EC P-256 leaves issued one after another in ${elapsed.toFixed(0)} ms (${(elapsed / 200).toFixed(2)} ms each)`);
    assert.equal(serials.size, 200);
    assert.equal(keys.size, 200);
  });
});
