import assert from 'node:assert/strict';
import { createTestCA, waitFor } from '@meshless/testing';
import { workloadApiSource, type WorkloadApiSource } from '@meshless/workload-api';
import { silent } from '@meshless/fixtures/events';
import { startWorkloadApi, svidOf } from '@meshless/fixtures/workload-api-server';

// No reconnect storm: a fleet of sources whose agent restarts comes back spread over the backoff
// window (full jitter), not in one burst.

const FLEET = 40;

describe('Workload API reconnects after an agent restart are spread by jitter', function () {
  this.timeout(30_000);

  it(`${FLEET} sources reconnect spread out, not in lockstep`, async () => {
    const ca = await createTestCA({ trustDomain: 'prod.example' });
    const api = await startWorkloadApi();
    const sources: WorkloadApiSource[] = [];
    try {
      api.push({ svids: [svidOf(await ca.issue('spiffe://prod.example/ns/a/sa/b'))] });
      for (let i = 0; i < FLEET; i++) sources.push(await workloadApiSource({ address: api.address, logger: silent, backoff: { initialMs: 400, maxMs: 1600 } }));
      // The agent goes away long enough for every source to fail a few reconnects.
      await api.stop();
      const downAt = Date.now();
      await waitFor(() => sources.every((s) => !s.connected), 5000, 'every stream to break');
      await new Promise((r) => setTimeout(r, Math.max(0, 1500 - (Date.now() - downAt))));
      const before = api.calls;
      await api.restart();
      const upAt = Date.now();
      await waitFor(() => sources.every((s) => s.connected), 10_000, 'every source to reconnect');
      const arrivals = api.callTimes.slice(before).map((t) => t - upAt);
      const buckets = new Map<number, number>();
      for (const t of arrivals) buckets.set(Math.floor(t / 50), (buckets.get(Math.floor(t / 50)) ?? 0) + 1);
      const busiest = Math.max(...buckets.values());
      const span = Math.max(...arrivals) - Math.min(...arrivals);
      console.log(`      ${arrivals.length} reconnects over ${span} ms after the restart; busiest 50 ms window: ${busiest}`);
      assert.ok(span > 300, `reconnects spread over ${span} ms`);
      assert.ok(busiest <= FLEET / 3, `at most a third of the fleet in any 50 ms (got ${busiest})`);
    } finally {
      for (const s of sources) await s.close();
      await api.close();
    }
  });
});
