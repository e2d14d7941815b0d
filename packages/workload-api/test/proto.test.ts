import assert from 'node:assert/strict';
import { join } from 'node:path';
import protoLoader from '@grpc/proto-loader';
import grpc from '@grpc/grpc-js';
import { ProtoError, decodeX509SvidResponse } from '../src/proto.js';
import { DerError, parseDerCertificates } from '../src/der.js';
import { createTestCA } from '@meshless/testing';
import { pemToDer } from '@meshless/fixtures/workload-api-server';

// The hand-written decoder against protobufjs's encoder of the spec's proto.
const definition = protoLoader.loadSync(join(import.meta.dirname, '..', 'proto', 'workloadapi.proto'), { keepCase: true });
const loaded = grpc.loadPackageDefinition(definition) as unknown as { SpiffeWorkloadAPI: { service: grpc.ServiceDefinition } };
const encode = loaded.SpiffeWorkloadAPI.service.FetchX509SVID!.responseSerialize as (v: unknown) => Buffer;

describe('X509SVIDResponse decoder', () => {
  it('decodes what protobufjs encodes from the spec proto: svids in order, crl, federated bundles', () => {
    const bytes = encode({
      svids: [
        { spiffe_id: 'spiffe://a.example/x', x509_svid: Buffer.from([1, 2]), x509_svid_key: Buffer.from([3]), bundle: Buffer.from([4, 5, 6]), hint: 'internal' },
        { spiffe_id: 'spiffe://a.example/y', x509_svid: Buffer.from([7]), x509_svid_key: Buffer.from([8]), bundle: Buffer.from([9]) },
      ],
      crl: [Buffer.from([10])],
      federated_bundles: { 'spiffe://b.example': Buffer.from([11, 12]), 'spiffe://c.example': Buffer.alloc(0) },
    });
    const m = decodeX509SvidResponse(bytes);
    assert.deepEqual(m.svids.map((s) => [s.spiffeId, [...s.x509Svid], [...s.x509SvidKey], [...s.bundle], s.hint]), [
      ['spiffe://a.example/x', [1, 2], [3], [4, 5, 6], 'internal'],
      ['spiffe://a.example/y', [7], [8], [9], ''],
    ]);
    assert.deepEqual(m.crl.map((c) => [...c]), [[10]]);
    assert.deepEqual([...m.federatedBundles].map(([k, v]) => [k, [...v]]).sort(), [['spiffe://b.example', [11, 12]], ['spiffe://c.example', []]]);
    assert.deepEqual(decodeX509SvidResponse(Buffer.alloc(0)).svids, []);
  });

  it('skips unknown fields of every wire type (a newer server)', () => {
    const known = encode({ svids: [{ spiffe_id: 'spiffe://a.example/x', x509_svid: Buffer.from([1]), x509_svid_key: Buffer.from([2]), bundle: Buffer.from([3]) }] });
    const unknown = Buffer.from([
      (9 << 3) | 0, 0x96, 0x01, // varint 150
      (10 << 3) | 1, 1, 2, 3, 4, 5, 6, 7, 8, // fixed64
      (11 << 3) | 2, 2, 0xaa, 0xbb, // bytes
      (12 << 3) | 5, 1, 2, 3, 4, // fixed32
    ]);
    const m = decodeX509SvidResponse(Buffer.concat([unknown, known, unknown]));
    assert.equal(m.svids.length, 1);
    assert.equal(m.svids[0]!.spiffeId, 'spiffe://a.example/x');
  });

  it('refuses malformed bytes with ProtoError (truncation, overlong varint, groups, bad UTF-8)', () => {
    const bad = [
      Buffer.from([0x0a, 0x05, 0x01]), // length runs past the end
      Buffer.from([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), // varint > 10 bytes
      Buffer.from([0x0b]), // start group
      Buffer.from([0x0a, 0x03, 0x0a, 0x01, 0xff]), // spiffe_id not UTF-8
      Buffer.from([0x00]), // field 0
      Buffer.from([0x0d, 0x01]), // fixed32 truncated
    ];
    for (const b of bad) assert.throws(() => decodeX509SvidResponse(b), ProtoError, b.toString('hex'));
  });

  it('splits concatenated DER certificates and says which one is broken', async () => {
    const ca = await createTestCA({ trustDomain: 'a.example', intermediate: true });
    const issued = await ca.issue('spiffe://a.example/x');
    const der = pemToDer(issued.cert);
    assert.equal(parseDerCertificates(der).length, 2);
    assert.deepEqual(parseDerCertificates(Buffer.alloc(0)), []);
    assert.throws(() => parseDerCertificates(der.subarray(0, der.length - 5)), (e: unknown) => e instanceof DerError && /certificate #2 is truncated/.test(e.message));
    assert.throws(() => parseDerCertificates(Buffer.from(issued.cert)), (e: unknown) => e instanceof DerError && /PEM instead of DER/.test(e.message));
  });
});
