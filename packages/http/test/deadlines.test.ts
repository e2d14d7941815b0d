// The server's shared deadline timer: many deadlines on one setTimeout, in time order, with
// cancellation that removes the entry at once (no growth with connection churn).
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Deadlines, type Deadline } from '../src/deadlines.js';

/** Resolves when `count` calls were recorded, or rejects after a bound. */
function collect(count: number, timeoutMs = 5_000): { fired: number[]; done: Promise<void>; push: (n: number) => void } {
  const fired: number[] = [];
  let resolve!: () => void;
  const done = new Promise<void>((res, rej) => {
    resolve = res;
    setTimeout(() => rej(new Error(`only ${fired.length} of ${count} deadlines fired within ${timeoutMs} ms`)), timeoutMs).unref();
  });
  return {
    fired,
    done,
    push: (n) => {
      fired.push(n);
      if (fired.length === count) resolve();
    },
  };
}

describe('Deadlines: one timer for every connection', function () {
  it('fires due deadlines in time order, and not the cancelled ones', async function () {
    const d = new Deadlines();
    const now = Date.now();
    const c = collect(4);
    const entries: Deadline[] = [];
    for (const [i, offset] of [30, -5, 10, 20, 0, 15].entries()) entries.push(d.add(now + offset, () => c.push(i)));
    d.cancel(entries[2]); // +10
    d.cancel(entries[4]); // +0
    d.cancel(entries[4]); // twice: no-op
    assert.equal(d.size, 4);
    await c.done;
    assert.deepEqual(c.fired, [1, 5, 3, 0]);
    assert.equal(d.size, 0);
  });

  it('an earlier deadline added later re-arms the timer for it', async function () {
    const d = new Deadlines();
    const c = collect(1);
    const late = d.add(Date.now() + 60 * 60_000, () => c.push(99));
    d.add(Date.now(), () => c.push(1));
    await c.done;
    assert.deepEqual(c.fired, [1]);
    assert.equal(d.size, 1);
    d.cancel(late);
    assert.equal(d.size, 0);
  });

  it('a deadline added by a firing one runs too', async function () {
    const d = new Deadlines();
    const c = collect(3);
    d.add(Date.now() - 1, () => {
      c.push(1);
      d.add(Date.now(), () => c.push(3));
    });
    d.add(Date.now(), () => c.push(2));
    await c.done;
    assert.deepEqual(c.fired, [1, 2, 3]);
  });

  it('keeps the heap consistent under any sequence of adds and cancels (nothing left behind)', function () {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.record({ add: fc.integer({ min: 0, max: 1_000 }) }), fc.record({ cancel: fc.nat() })), { maxLength: 200 }), (ops) => {
        const d = new Deadlines();
        const live: Deadline[] = [];
        const base = Date.now() + 10 * 60_000; // far enough that nothing fires during the check
        for (const op of ops) {
          if ('add' in op) live.push(d.add(base + op.add, () => {}));
          else if (live.length > 0) d.cancel(live.splice(op.cancel % live.length, 1)[0]);
        }
        assert.equal(d.size, live.length);
        for (const e of live) d.cancel(e);
        assert.equal(d.size, 0);
        assert.ok(live.every((e) => e.index === -1));
        d.clear();
        assert.equal(d.armed, false);
      }),
    );
  });

  it('connections that come and go one at a time keep one timer; clear() stops it', async function () {
    const d = new Deadlines();
    const c = collect(1);
    const when = Date.now() + 60_000;
    const first = d.add(when, () => c.push(0));
    assert.equal(d.armed, true);
    d.cancel(first);
    assert.equal(d.size, 0);
    assert.equal(d.armed, true, 'the timer stays armed when the heap empties');
    d.add(when, () => c.push(0));
    d.clear();
    assert.equal(d.size, 0);
    assert.equal(d.armed, false);
    // A timer left armed for a cancelled deadline fires harmlessly and re-arms for the next one.
    const soon = d.add(Date.now() + 20, () => c.push(1));
    d.cancel(soon);
    d.add(Date.now() + 60, () => c.push(2));
    await c.done;
    assert.deepEqual(c.fired, [2]);
    assert.equal(d.armed, false, 'nothing left to wait for');
  });
});
