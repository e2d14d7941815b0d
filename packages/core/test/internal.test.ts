import assert from 'node:assert/strict';
import { BoundedMap, MAX_TIMER_MS, setLongTimeout } from '@meshless/core/internal';

describe('@meshless/core/internal: BoundedMap and setLongTimeout', function () {
  it('BoundedMap keeps at most max entries, least recently used out; get and set count as a use, peek and has do not', () => {
    const map = new BoundedMap<string, number>(2);
    map.set('a', 1).set('b', 2);
    assert.equal(map.get('a'), 1); // a is now the most recently used
    map.set('c', 3); // evicts b
    assert.deepEqual([...map.keys()], ['a', 'c']);
    assert.equal(map.peek('a'), 1);
    assert.equal(map.has('a'), true);
    map.set('d', 4); // peek/has did not refresh a: a goes
    assert.deepEqual([...map.keys()], ['c', 'd']);
    map.set('c', 30); // an update refreshes, evicts nothing
    assert.deepEqual([...map.entries()], [['d', 4], ['c', 30]]);
    assert.ok(map instanceof Map);
    const none = new BoundedMap<string, number>(0);
    none.set('a', 1);
    assert.equal(none.size, 0);
  });

  it('setLongTimeout fires once after the delay, re-arming in steps past the step limit, and clear() cancels it', async () => {
    assert.equal(MAX_TIMER_MS, 2 ** 31 - 1);
    const started = Date.now();
    const fired = await new Promise<number>((resolve) => setLongTimeout(() => resolve(Date.now()), 60, 7));
    assert.ok(fired - started >= 59, `fired after ${fired - started} ms`);
    let calls = 0;
    const t = setLongTimeout(() => calls++, 20, 5);
    t.clear();
    await new Promise<void>((resolve) => setLongTimeout(resolve, 60));
    assert.equal(calls, 0);
  });
});
