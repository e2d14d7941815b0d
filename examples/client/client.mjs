// A client of orders: proves it is the web frontend (the identity in CERTS_DIR) and accepts
// only a server that proves it is orders. Usage: ORDERS_URL=https://127.0.0.1:8443 node client.mjs
import { request } from 'undici';
import { fileSource } from '@meshless/core';
import { createAgent } from '@meshless/http';

const td = process.env.TRUST_DOMAIN ?? 'prod.example';
const source = await fileSource({ dir: process.env.CERTS_DIR ?? '/var/run/secrets/spiffe.io' });
const agent = createAgent({ source, allow: `spiffe://${td}/ns/shop/sa/orders` });

try {
  const res = await request(`${process.env.ORDERS_URL ?? 'https://orders.shop.svc:8443'}/orders`, {
    method: 'POST',
    dispatcher: agent,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ amount_cents: 1299, note: process.env.NOTE ?? 'a book' }),
  });
  console.log(JSON.stringify({ status: res.statusCode, body: await res.body.json() }));
  process.exitCode = res.statusCode === 201 ? 0 : 1;
} catch (err) {
  console.error(`request failed: ${err.code ?? ''} ${err.message}`);
  process.exitCode = 1;
} finally {
  await agent.close();
  await source.close();
}
