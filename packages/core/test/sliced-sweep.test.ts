import assert from 'node:assert/strict';
import { SlicedSweep, type SweepStats } from '@meshless/core/internal';
import { waitFor } from '@meshless/testing';

/** Spins for `us` microseconds (a visit with real work). */
function spin(us: number): void {
  const end = performance.now() + us / 1000;
  while (performance.now() < end);
}

describe('@meshless/core/internal: SlicedSweep', function () {
  this.timeout(20_000);

  it('visits every item in bounded slices, letting other callbacks run between them', async () => {
    const items = new Set(Array.from({ length: 2_000 }, (_, i) => i));
    const visited: number[] = [];
    let between = 0;
    let done: SweepStats | undefined;
    const sweep = new SlicedSweep(() => items.values(), (i) => (spin(20), visited.push(i)), (s) => (done = s), 2);
    sweep.restart();
    assert.ok(visited.length > 0 && visited.length < 2_000, `the first slice runs synchronously, the rest later (${visited.length} visited at once)`);
    // Something else wanting the loop: counts the turns it got while the sweep ran.
    const tick = (): void => {
      if (done !== undefined) return;
      between++;
      setImmediate(tick);
    };
    setImmediate(tick);
    await waitFor(() => done, 10_000, 'the sweep to finish');
    assert.deepEqual(visited, [...items]);
    assert.equal(done!.visited, 2_000);
    assert.ok(done!.slices >= 10, `2,000 × 20 µs in 2 ms slices: ${done!.slices} slices`);
    assert.ok(between >= done!.slices - 2, `other callbacks ran between slices (${between})`);
    assert.ok(done!.busyMs >= 40 && done!.durationMs >= done!.busyMs);
    assert.ok(Number.isFinite(done!.maxSliceCpuMs) && done!.maxSliceCpuMs > 0, 'the longest slice\'s CPU time is reported');
    assert.equal(sweep.running, false);
  });

  it('restart during a sweep starts over from the first item; items removed meanwhile are skipped, added ones visited', async () => {
    const items = new Set(Array.from({ length: 500 }, (_, i) => i));
    const visits = new Map<number, number>();
    const completed: SweepStats[] = [];
    let restarted = false;
    const sweep = new SlicedSweep(
      () => items.values(),
      (i) => {
        spin(20);
        visits.set(i, (visits.get(i) ?? 0) + 1);
        if (i === 300 && !restarted) {
          restarted = true;
          items.delete(499);
          items.add(500);
          sweep.restart();
        }
      },
      (s) => completed.push(s),
      1,
    );
    sweep.restart();
    await waitFor(() => completed.length > 0, 10_000, 'the sweep to finish');
    assert.equal(completed.length, 1, 'the superseded sweep never completes');
    assert.equal(completed[0]!.superseded, 1);
    assert.equal(completed[0]!.visited, 500);
    assert.equal(visits.get(0), 2, 'visited again by the newer sweep');
    assert.equal(visits.get(301), 1, 'the older sweep stopped right after the restart');
    assert.equal(visits.has(499), false);
    assert.equal(visits.get(500), 1);
  });

  it('a sweep that fits in one slice is done before restart() returns (no request runs under the old state)', () => {
    const items = new Set([1, 2, 3]);
    const visited: number[] = [];
    let done: SweepStats | undefined;
    const sweep = new SlicedSweep(() => items.values(), (i) => visited.push(i), (s) => (done = s));
    sweep.restart();
    assert.deepEqual(visited, [1, 2, 3]);
    assert.equal(done?.slices, 1);
    assert.equal(sweep.running, false);
  });

  it('stop() abandons a sweep', async () => {
    const items = Array.from({ length: 1_000 }, (_, i) => i);
    let visited = 0;
    const sweep = new SlicedSweep(() => items.values(), () => (spin(20), visited++), () => assert.fail('stopped sweep completed'), 1);
    sweep.restart();
    const afterFirstSlice = visited;
    assert.ok(afterFirstSlice > 0 && afterFirstSlice < 1_000);
    sweep.stop();
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    assert.equal(visited, afterFirstSlice);
    assert.equal(sweep.running, false);
  });
});
