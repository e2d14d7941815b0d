import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { codes, formatBundleMap, formatSpiffeBundle, loadCredential, MeshlessError, parseBundleMap, parseSpiffeBundle } from '@meshless/core';
import { createTestCA, type TestCA } from '@meshless/testing';
import { expectMeshlessError } from './helpers/expect-error.js';

const expectInvalid = (fn: () => unknown, message: RegExp): MeshlessError => expectMeshlessError(fn, codes.BUNDLE_INVALID, message);

const b64 = (cert: X509Certificate): string => cert.raw.toString('base64');
const jwk = (cert: X509Certificate): Record<string, unknown> => ({ use: 'x509-svid', ...(cert.publicKey.export({ format: 'jwk' }) as object), x5c: [b64(cert)] });

describe('parseSpiffeBundle', function () {
  this.timeout(60_000);
  let rsa: TestCA;
  let rsaNext: TestCA;
  let ec: TestCA;
  let ed: TestCA;
  let rootRsa: X509Certificate;
  let rootRsaNext: X509Certificate;
  let rootEc: X509Certificate;
  let leafEc: X509Certificate;
  before(async () => {
    [rsa, rsaNext, ec, ed] = await Promise.all([
      createTestCA({ trustDomain: 'example.com', keyType: 'rsa-2048' }),
      createTestCA({ trustDomain: 'example.com', keyType: 'rsa-2048' }),
      createTestCA({ trustDomain: 'partner.example' }),
      createTestCA({ trustDomain: 'partner.example', keyType: 'ed25519' }),
    ]);
    rootRsa = new X509Certificate(rsa.certPem);
    rootRsaNext = new X509Certificate(rsaNext.certPem);
    rootEc = new X509Certificate(ec.certPem);
    leafEc = new X509Certificate((await ec.issue('spiffe://partner.example/ns/a/sa/b')).cert);
  });

  it('reads the spec example (Appendix A): trust bundle #1, then #2 during a root rotation', () => {
    const { n, e } = rootRsa.publicKey.export({ format: 'jwk' }) as { n: string; e: string };
    const one = parseSpiffeBundle(`{
        "spiffe_sequence": 1,
        "spiffe_refresh_hint": 2419200,
        "keys": [
                {
                        "kty": "RSA",
                        "use": "x509-svid",
                        "x5c": ["${b64(rootRsa)}"],
                        "n": "${n}",
                        "e": "${e}"
                }
        ]
}`, { trustDomain: 'example.com' });
    assert.equal(one.format, 'jwks');
    assert.equal(one.trustDomain, 'example.com');
    assert.equal(one.sequence, 1);
    assert.equal(one.refreshHintSeconds, 2419200);
    assert.deepEqual(one.x509Authorities.map((c) => c.fingerprint256), [rootRsa.fingerprint256]);
    const two = parseSpiffeBundle(JSON.stringify({ spiffe_sequence: 2, spiffe_refresh_hint: 2419200, keys: [jwk(rootRsa), jwk(rootRsaNext)] }), { trustDomain: 'spiffe://example.com' });
    assert.equal(two.trustDomain, 'example.com');
    assert.equal(two.sequence, 2);
    assert.deepEqual(two.x509Authorities.map((c) => c.fingerprint256), [rootRsa.fingerprint256, rootRsaNext.fingerprint256]);
  });

  it('reads EC and Ed25519 (OKP) authorities; sequence and refresh hint are optional', async () => {
    const rootEd = new X509Certificate(ed.certPem);
    const b = parseSpiffeBundle(JSON.stringify({ keys: [jwk(rootEc), jwk(rootEd)] }));
    assert.equal(b.x509Authorities.length, 2);
    assert.equal(b.sequence, undefined);
    assert.equal(b.refreshHintSeconds, undefined);
    assert.equal(b.trustDomain, undefined);
  });

  it('an x509-svid key needs only kty and x5c (key parameters are checked when present)', () => {
    const b = parseSpiffeBundle(JSON.stringify({ keys: [{ use: 'x509-svid', kty: 'EC', x5c: [b64(rootEc)] }] }));
    assert.equal(b.x509Authorities.length, 1);
    expectInvalid(() => parseSpiffeBundle(JSON.stringify({ keys: [{ ...jwk(rootEc), x: (jwk(rootRsa) as { n: string }).n.slice(0, 43) }] })), /keys\[0\].*"x" does not match/);
    expectInvalid(() => parseSpiffeBundle(JSON.stringify({ keys: [{ ...jwk(rootEc), kty: 'RSA' }] })), /kty is "RSA" but .* ec key/);
  });

  it('empty keys: the trust domain revoked its keys (no authorities, not an error)', () => {
    const b = parseSpiffeBundle('{ "keys": [], "spiffe_sequence": 7 }', { trustDomain: 'partner.example' });
    assert.equal(b.x509Authorities.length, 0);
    assert.equal(b.sequence, 7);
  });

  it('skips JWT authorities, unknown use, missing use and unknown kty, and says so', () => {
    const b = parseSpiffeBundle(JSON.stringify({
      keys: [
        { use: 'jwt-svid', kty: 'EC', kid: 'k1', crv: 'P-256', x: 'x', y: 'y' },
        { use: 'wit-svid', kty: 'EC' },
        { kty: 'EC', x5c: [b64(rootEc)] },
        { use: 'x509-svid', kty: 'PQC', x5c: ['not even base64'] },
        jwk(rootEc),
      ],
    }));
    assert.deepEqual(b.x509Authorities.map((c) => c.fingerprint256), [rootEc.fingerprint256]);
    assert.deepEqual(b.ignoredKeys.map((k) => k.index), [0, 1, 2, 3]);
    assert.match(b.ignoredKeys[0]!.reason, /JWT-SVID/);
    assert.match(b.ignoredKeys[1]!.reason, /unknown use "wit-svid"/);
    assert.match(b.ignoredKeys[2]!.reason, /no "use"/);
    assert.match(b.ignoredKeys[3]!.reason, /unknown kty "PQC"/);
  });

  it('a CA listed twice counts once', () => {
    assert.equal(parseSpiffeBundle(JSON.stringify({ keys: [jwk(rootEc), jwk(rootEc)] })).x509Authorities.length, 1);
  });

  describe('refuses, with BUNDLE_INVALID naming the file, trust domain and key', () => {
    const opts = { trustDomain: 'partner.example', file: '/mnt/partner/bundle.json' };
    const bad = (doc: unknown, message: RegExp): void => {
      const err = expectInvalid(() => parseSpiffeBundle(typeof doc === 'string' ? doc : JSON.stringify(doc), opts), message);
      assert.equal(err.file, '/mnt/partner/bundle.json');
      assert.match(err.message, /^bundle file \/mnt\/partner\/bundle\.json for trust domain partner\.example: /);
    };
    it('x5c with zero entries', () => bad({ keys: [{ ...jwk(rootEc), x5c: [] }] }, /keys\[0\].*x5c holds 0 certificates/));
    it('x5c with two entries', () => bad({ keys: [jwk(rootEc), { ...jwk(rootEc), x5c: [b64(rootEc), b64(rootRsa)] }] }, /keys\[1\].*x5c holds 2 certificates/));
    it('no x5c', () => bad({ keys: [{ use: 'x509-svid', kty: 'EC' }] }, /keys\[0\].*no x5c/));
    it('x5c entry not a string', () => bad({ keys: [{ use: 'x509-svid', kty: 'EC', x5c: [42] }] }, /keys\[0\].*not standard base64/));
    it('bad base64', () => bad({ keys: [{ use: 'x509-svid', kty: 'EC', x5c: ['MII$$$'] }] }, /not standard base64/));
    it('base64url instead of base64', () => {
      // Find a certificate whose base64 has a + or /, then write it base64url.
      const url = b64(rootRsa).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
      assert.notEqual(url, b64(rootRsa));
      bad({ keys: [{ use: 'x509-svid', kty: 'RSA', x5c: [url] }] }, /not standard base64/);
    });
    it('base64 with line breaks', () => bad({ keys: [{ use: 'x509-svid', kty: 'EC', x5c: [b64(rootEc).replace(/(.{64})/g, '$1\n')] }] }, /not standard base64/));
    it('base64 that is not a certificate', () => bad({ keys: [{ use: 'x509-svid', kty: 'EC', x5c: [Buffer.from('hello world!').toString('base64')] }] }, /not a DER X\.509 certificate/));
    it('bytes after the certificate', () => bad({ keys: [{ use: 'x509-svid', kty: 'EC', x5c: [Buffer.concat([rootEc.raw, Buffer.from([0, 0, 0])]).toString('base64')] }] }, /bytes after the DER certificate/));
    it('a leaf, not a CA', () => bad({ keys: [{ use: 'x509-svid', kty: 'EC', x5c: [b64(leafEc)] }] }, /keys\[0\].*not a CA certificate/));
    it('x509-svid key without kty', () => bad({ keys: [{ use: 'x509-svid', x5c: [b64(rootEc)] }] }, /keys\[0\].*no "kty"/));
    it('no keys member', () => bad({ spiffe_sequence: 1 }, /no "keys" member/));
    it('keys not an array', () => bad({ keys: {} }, /"keys" must be an array/));
    it('a key that is not an object', () => bad({ keys: [jwk(rootEc), 'x'] }, /keys\[1\] is not a JSON object/));
    it('a sequence that is not a non-negative integer', () => bad({ keys: [], spiffe_sequence: '1' }, /spiffe_sequence must be a non-negative integer/));
    it('a refresh hint that is not an integer', () => bad({ keys: [], spiffe_refresh_hint: 1.5 }, /spiffe_refresh_hint must be a non-negative integer/));
    it('a JSON array', () => bad('[{"keys":[]}]', /neither a SPIFFE bundle/));
    it('JSON that does not parse', () => bad('{ "keys": [ }', /not valid JSON/));
    it('a key given twice in one object', () => bad('{ "keys": [], "keys": [' + JSON.stringify(jwk(rootEc)) + '] }', /"keys" appears twice at the top level/));
    it('a key given twice inside a JWK (escaped spelling)', () => bad(`{ "keys": [ { "use": "x509-svid", "kty": "EC", "x5c": ["${b64(rootEc)}"], "\\u0078\\u0035c": [] } ] }`, /"x5c" appears twice in "keys"/));
    it('an empty file', () => bad('  \n', /is empty/));
    it('garbage', () => bad('hello', /neither a SPIFFE bundle/));
    it('PEM with a leaf', () => bad(leafEc.toString(), /certificate #1 .* is not a CA certificate/));
    it('PEM that does not parse', () => bad('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', /no readable PEM certificates/));
  });

  it('reads PEM CA certificates (a federation file may be either)', () => {
    const b = parseSpiffeBundle(`${rootRsa.toString()}\n${rootRsaNext.toString()}${rootRsa.toString()}`, { trustDomain: 'example.com' });
    assert.equal(b.format, 'pem');
    assert.deepEqual(b.x509Authorities.map((c) => c.fingerprint256), [rootRsa.fingerprint256, rootRsaNext.fingerprint256]);
    assert.equal(parseSpiffeBundle(Buffer.from('\ufeff' + rootEc.toString())).x509Authorities.length, 1);
  });

  it('formatSpiffeBundle writes what parseSpiffeBundle reads back', () => {
    const text = formatSpiffeBundle([rootRsa, rootEc, new X509Certificate(ed.certPem)], { sequence: 3, refreshHintSeconds: 300 });
    const doc = JSON.parse(text) as { keys: Array<Record<string, unknown>>; spiffe_sequence: number };
    assert.equal(doc.spiffe_sequence, 3);
    assert.deepEqual(doc.keys.map((k) => [k.use, k.kty]), [['x509-svid', 'RSA'], ['x509-svid', 'EC'], ['x509-svid', 'OKP']]);
    assert.equal(doc.keys.some((k) => 'kid' in k), false);
    const b = parseSpiffeBundle(text);
    assert.deepEqual(b.x509Authorities.map((c) => c.fingerprint256), [rootRsa, rootEc, new X509Certificate(ed.certPem)].map((c) => c.fingerprint256));
    assert.equal(b.refreshHintSeconds, 300);
    expectInvalid(() => formatSpiffeBundle([leafEc]), /not a CA certificate/);
  });
});

describe('parseBundleMap', function () {
  this.timeout(60_000);
  let prod: X509Certificate;
  let partner: X509Certificate;
  let partner2: X509Certificate;
  before(async () => {
    const cas = await Promise.all(['prod.example', 'partner.example', 'partner.example'].map((trustDomain) => createTestCA({ trustDomain })));
    [prod, partner, partner2] = cas.map((ca) => new X509Certificate(ca.certPem)) as [X509Certificate, X509Certificate, X509Certificate];
  });
  const bundle = (...certs: X509Certificate[]): Record<string, unknown> => JSON.parse(formatSpiffeBundle(certs, { sequence: 1 })) as Record<string, unknown>;
  const file = '/mnt/bundles/map.json';

  it('reads grpc-go\'s bundle map: bare keys, spiffe:// keys, revoked (empty) bundles, sorted', () => {
    const map = parseBundleMap(JSON.stringify({ trust_domains: { 'spiffe://prod.example': bundle(prod), 'partner.example': bundle(partner, partner2), 'gone.example': { keys: [] } } }), { file });
    assert.deepEqual([...map.keys()], ['gone.example', 'partner.example', 'prod.example']);
    assert.equal(map.get('partner.example')!.x509Authorities.length, 2);
    assert.equal(map.get('partner.example')!.trustDomain, 'partner.example');
    assert.equal(map.get('gone.example')!.x509Authorities.length, 0);
    assert.equal(parseBundleMap('{"trust_domains":{}}').size, 0);
  });

  it('loadCredential takes a federated bundle as PEM or SPIFFE bundle text; a bad one is BUNDLE_INVALID naming the trust domain', async () => {
    const ca = await createTestCA({ trustDomain: 'prod.example' });
    const issued = await ca.issue('spiffe://prod.example/ns/a/sa/b');
    const cred = loadCredential({ ...issued, federation: { 'partner.example': formatSpiffeBundle([partner]), 'spiffe://other.example': partner2.toString(), 'gone.example': '{ "keys": [] }' } });
    assert.deepEqual([...cred.bundles.keys()], ['gone.example', 'other.example', 'partner.example', 'prod.example']);
    assert.equal(cred.bundles.get('partner.example')![0]!.fingerprint256, partner.fingerprint256);
    assert.equal(cred.bundles.get('gone.example')!.length, 0);
    expectInvalid(() => loadCredential({ ...issued, federation: { 'partner.example': 'garbage' } }), /SPIFFE bundle for trust domain partner\.example: is neither/);
    expectInvalid(() => loadCredential({ ...issued, federation: { 'partner.example': '' } }), /for trust domain partner\.example: is empty/);
  });

  it('formatBundleMap round-trips and feeds loadCredential\'s federation', async () => {
    const text = formatBundleMap({ 'spiffe://partner.example': [partner], 'other.example': [partner2] });
    assert.deepEqual(Object.keys((JSON.parse(text) as { trust_domains: object }).trust_domains), ['other.example', 'partner.example']);
    const map = parseBundleMap(text);
    const ca = await createTestCA({ trustDomain: 'prod.example' });
    const issued = await ca.issue('spiffe://prod.example/ns/a/sa/b');
    const cred = loadCredential({ ...issued, federation: new Map([...map].map(([td, b]) => [td, b.x509Authorities])) });
    assert.deepEqual([...cred.bundles.keys()], ['other.example', 'partner.example', 'prod.example']);
    expectInvalid(() => formatBundleMap(new Map([['partner.example', [partner]], ['spiffe://partner.example', [partner2]]])), /partner\.example is given twice/);
  });

  const bad = (text: string, message: RegExp): void => {
    const err = expectInvalid(() => parseBundleMap(text, { file }), message);
    assert.equal(err.file, file);
    assert.match(err.message, /^bundle map file \/mnt\/bundles\/map\.json/);
  };
  it('refuses a trust domain given twice as two raw JSON keys', () => {
    bad(`{ "trust_domains": { "partner.example": ${JSON.stringify(bundle(partner))}, "partner.example": ${JSON.stringify(bundle(partner2))} } }`, /"partner\.example" appears twice in "trust_domains"/);
  });
  it('refuses a trust domain given twice as bare and spiffe:// keys', () => {
    bad(JSON.stringify({ trust_domains: { 'partner.example': bundle(partner), 'spiffe://partner.example': bundle(partner2) } }), /trust domain partner\.example is given twice \("partner\.example" and "spiffe:\/\/partner\.example"\)/);
  });
  it('refuses a bad trust domain name', () => bad(JSON.stringify({ trust_domains: { 'Partner.Example': bundle(partner) } }), /"Partner\.Example" is not a trust domain name \(trust domain must be lowercase\)/));
  it('refuses a bad bundle, naming its trust domain and key', () => {
    bad(JSON.stringify({ trust_domains: { 'prod.example': bundle(prod), 'partner.example': { keys: [{ use: 'x509-svid', kty: 'EC', x5c: [] }] } } }), /, trust domain partner\.example: keys\[0\].*x5c holds 0/);
  });
  it('refuses a bundle given as PEM inside the map', () => bad(JSON.stringify({ trust_domains: { 'partner.example': partner.toString() } }), /trust domain partner\.example: is not a JSON object/));
  it('refuses a map without trust_domains', () => bad('{ "keys": [] }', /no "trust_domains" object/));
  it('refuses trust_domains that is an array', () => bad('{ "trust_domains": [] }', /it is an array/));
  it('refuses an empty file, invalid JSON, a non-object', () => {
    bad('', /is empty/);
    bad('{"trust_domains": {', /not valid JSON/);
    bad('"x"', /not a JSON object/);
  });
});
