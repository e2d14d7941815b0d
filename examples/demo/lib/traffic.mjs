// Steady client traffic against orders, counting every success and every failure.
import { request } from 'undici';

/**
 * Starts `workers` loops that POST /orders through `dispatcher` until stopped. Each response
 * is checked (201, the expected caller and payments identities); anything else is a failure.
 */
export function startTraffic({ url, dispatcher, note, expect, workers = 4, pauseMs = 5 }) {
  const stats = { ok: 0, failed: 0, failures: [], ordersSerials: new Set(), paymentsSerials: new Set() };
  let running = true;
  const one = async () => {
    try {
      const res = await request(`${url}/orders`, {
        method: 'POST',
        dispatcher,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ amount_cents: 1299, note }),
      });
      const body = await res.body.json();
      if (res.statusCode !== 201) throw new Error(`HTTP ${res.statusCode}: ${JSON.stringify(body)}`);
      if (body.caller !== expect.client) throw new Error(`orders saw caller ${body.caller}`);
      if (body.charge.caller !== expect.orders) throw new Error(`payments saw caller ${body.charge.caller}`);
      stats.ok += 1;
      stats.ordersSerials.add(body.servedSerial);
      stats.paymentsSerials.add(body.charge.served_serial);
    } catch (err) {
      stats.failed += 1;
      if (stats.failures.length < 20) stats.failures.push(`${err.code ?? ''} ${err.message}`.trim());
    }
  };
  const loops = Array.from({ length: workers }, async () => {
    while (running) {
      await one();
      // Pacing, not synchronisation: leave CPU for the services on small machines.
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
  });
  return {
    stats,
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}
