import assert from 'node:assert/strict';
import { codes, isMeshlessError } from '@meshless/core';
import { parseAddress } from '@meshless/workload-api';
import { Backoff } from '../src/backoff.js';

describe('Workload API address (SPIFFE Workload Endpoint spec)', () => {
  it('accepts unix:///abs, unix:/abs and tcp://<ip>:<port>, and gives the gRPC target', () => {
    assert.deepEqual({ ...parseAddress('unix:///run/spire/agent.sock') }, { address: 'unix:///run/spire/agent.sock', target: 'unix:///run/spire/agent.sock', transport: 'unix', from: 'option' });
    assert.equal(parseAddress('unix:/run/spire/agent.sock').target, 'unix:///run/spire/agent.sock');
    assert.equal(parseAddress('unix:///tmp/a%20b.sock').target, 'unix:///tmp/a b.sock');
    assert.equal(parseAddress('tcp://127.0.0.1:8081').target, '127.0.0.1:8081');
    assert.equal(parseAddress('tcp://[::1]:8081').target, '[::1]:8081');
  });

  it('falls back to SPIFFE_ENDPOINT_SOCKET, and says how to configure one when neither is set', () => {
    const parsed = parseAddress(undefined, { SPIFFE_ENDPOINT_SOCKET: 'unix:///run/x.sock' });
    assert.equal(parsed.target, 'unix:///run/x.sock');
    assert.equal(parsed.from, 'SPIFFE_ENDPOINT_SOCKET');
    assert.throws(() => parseAddress(undefined, {}), (err: unknown) => isMeshlessError(err, codes.WORKLOAD_API_ADDRESS_INVALID) && /SPIFFE_ENDPOINT_SOCKET/.test(err.message));
  });

  const bad: Array<[string, RegExp]> = [
    ['unix://host/run/agent.sock', /authority/],
    ['unix:relative/agent.sock', /absolute/],
    ['unix://', /no socket path/],
    ['unix:///run/agent.sock?x=1', /query/],
    ['unix:///run/agent.sock#frag', /fragment/],
    ['tcp://localhost:8081', /IP address/],
    ['tcp://127.0.0.1', /tcp:\/\/<IP address>:<port>/],
    ['tcp://127.0.0.1:8081/path', /path/],
    ['tcp://user@127.0.0.1:8081', /user info/],
    ['tcp://127.0.0.1:70000', /out of range/],
    ['tcp://::1:8081', /./],
    ['http://127.0.0.1:8081', /scheme "http"/],
    ['/run/spire/agent.sock', /no scheme/],
  ];
  for (const [value, why] of bad) {
    it(`refuses ${value} with a coded error naming the value and what is allowed`, () => {
      assert.throws(
        () => parseAddress(value),
        (err: unknown) => isMeshlessError(err, codes.WORKLOAD_API_ADDRESS_INVALID) && err.message.includes(JSON.stringify(value)) && why.test(err.message) && /unix:\/\/\/absolute/.test(err.message),
      );
    });
  }
});

describe('Backoff (capped exponential, full jitter)', () => {
  it('waits a random time below min(max, initial · 2ⁿ), and starts over after reset', () => {
    const ceilings: number[] = [];
    const b = new Backoff(100, 1000, () => 0.999999);
    for (let i = 0; i < 6; i++) ceilings.push(b.next() + 1);
    assert.deepEqual(ceilings, [100, 200, 400, 800, 1000, 1000]);
    b.reset();
    assert.equal(b.next(), 99);
    const capped = new Backoff(100, 1000, () => 0.999999);
    for (let i = 0; i < 5; i++) capped.next();
    assert.equal(capped.next(300) + 1, 300, 'a lower cap for one retry (before the first SVID)');
    const low = new Backoff(100, 1000, () => 0);
    assert.equal(low.next(), 0, 'full jitter goes down to zero');
  });

  it('spreads a fleet: 1,000 clients at the same attempt do not retry in the same 10 ms', () => {
    const delays = Array.from({ length: 1000 }, () => {
      const b = new Backoff(1000, 30_000);
      b.next();
      b.next();
      return b.next();
    });
    const buckets = new Map<number, number>();
    for (const d of delays) buckets.set(Math.floor(d / 10), (buckets.get(Math.floor(d / 10)) ?? 0) + 1);
    assert.ok(Math.max(...buckets.values()) < 50, `at most a few per 10 ms (got ${Math.max(...buckets.values())})`);
    assert.ok(delays.every((d) => d >= 0 && d < 4000));
  });
});
