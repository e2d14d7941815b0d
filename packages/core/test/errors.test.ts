import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { codes, isMeshlessError, MeshlessError } from '@meshless/core';

describe('MeshlessError', () => {
  it('carries a stable code, the file, field, peer and rule concerned, and its cause', () => {
    const cause = new Error('EACCES');
    const err = new MeshlessError(codes.FILE_UNREADABLE, 'cannot read /m/tls.key', { cause, file: '/m/tls.key', field: 'key' });
    assert.equal(err.code, 'MESHLESS_ERR_FILE_UNREADABLE');
    assert.equal(err.name, 'MeshlessError');
    assert.equal(err.file, '/m/tls.key');
    assert.equal(err.field, 'key');
    assert.equal(err.cause, cause);
    assert.ok(err instanceof Error);
    assert.ok(isMeshlessError(err, codes.FILE_UNREADABLE));
    assert.equal(isMeshlessError(err, codes.KEY_MISMATCH), false);
    assert.equal(isMeshlessError(new Error('x')), false);
  });

  it('is recognised across two copies of the package (instanceof looks for a global brand)', async () => {
    // A second module instance of errors.ts, as a second copy of @meshless/core would be.
    const copy = (await import(`../src/errors.ts?copy=${Date.now()}`)) as typeof import('../src/errors.js');
    assert.notEqual(copy.MeshlessError, MeshlessError, 'a distinct class');
    const foreign = new copy.MeshlessError(copy.codes.PEER_DENIED, 'denied');
    assert.ok(foreign instanceof MeshlessError);
    assert.ok(new MeshlessError(codes.PEER_DENIED, 'x') instanceof copy.MeshlessError);
    assert.equal({ code: 'MESHLESS_ERR_PEER_DENIED' } instanceof MeshlessError, false, 'a look-alike object is not one');
  });

  it('every code is MESHLESS_ERR_* and documented in docs/errors.md', function () {
    const values = Object.values(codes);
    assert.equal(new Set(values).size, values.length, 'codes are unique');
    for (const c of values) assert.match(c, /^MESHLESS_ERR_[A-Z_]+$/);
    const doc = readFileSync(join(import.meta.dirname, '..', '..', '..', 'docs', 'errors.md'), 'utf8');
    for (const c of values) assert.ok(doc.includes(c), `docs/errors.md lists ${c}`);
  });
});
