// Callers that must be refused: an intruder with a certificate from another CA, a valid
// workload that no allow rule names, and a workload calling a method it is not allowed to.
import { fileURLToPath } from 'node:url';
import tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { Agent, request } from 'undici';
import { loadCredential } from '@meshless/core';
import { channelCredentials } from '@meshless/grpc';
import { createAgent } from '@meshless/http';
import { createTestCA } from '@meshless/testing';
import { waitFor } from './services.mjs';

const protoFile = fileURLToPath(new URL('../../grpc-service/payments.proto', import.meta.url));
const { shop } = grpc.loadPackageDefinition(protoLoader.loadSync(protoFile, { keepCase: true, longs: Number }));
/** Refusals are the point here: keep the SDK's own warnings out of the narration. */
const quiet = { error() {}, warn() {}, info() {}, debug() {} };

async function post(url, dispatcher) {
  try {
    const res = await request(`${url}/orders`, { method: 'POST', dispatcher, headers: { 'content-type': 'application/json' }, body: '{"amount_cents":1}' });
    await res.body.dump();
    return { refused: res.statusCode >= 400, outcome: `HTTP ${res.statusCode}` };
  } catch (err) {
    return { refused: true, outcome: `connection closed by orders (${err.code ?? err.message})` };
  } finally {
    await dispatcher.close();
  }
}

/** A bare TLS handshake as `issued`, to read the alert a server answers a refused certificate with. */
function tlsAlert(port, issued, caPem) {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, cert: issued.cert, key: issued.key, ca: caPem, ALPNProtocols: ['h2'], checkServerIdentity: () => undefined });
    const done = (text) => {
      socket.destroy();
      resolve(text);
    };
    socket.setTimeout(5000, () => done('no answer'));
    socket.on('error', (err) => done(err.message.replace(/^.*?(alert [a-z ]+|certificate [a-z ]+).*$/s, '$1')));
    socket.on('close', () => done('closed without an alert'));
    socket.on('secureConnect', () => socket.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'));
  });
}

async function call(client, method) {
  try {
    await new Promise((resolve, reject) => client[method]({ order_id: 'x', charge_id: 'x' }, { deadline: Date.now() + 5000 }, (err, reply) => (err ? reject(err) : resolve(reply))));
    return { refused: false, outcome: 'OK' };
  } catch (err) {
    return { refused: true, outcome: grpc.status[err.code], detail: err.details };
  } finally {
    client.close();
  }
}

const paymentsClient = (port, credentials) => new shop.payments.v1.Payments(`localhost:${port}`, credentials, { 'grpc.use_local_subchannel_pool': 1 });

/** Runs every refusal check; returns one row per attempt: who, where, refused?, outcome, reason. */
export async function refusalChecks({ ordersUrl, orders, payments, nextCA, ID, TD, pass, fail }) {
  const rows = [];
  const record = async (who, where, attempt, reasonFrom) => {
    const since = { orders: orders.events.length, payments: payments.events.length };
    const result = await attempt();
    let reason = result.detail;
    if (result.refused && reasonFrom) {
      const service = reasonFrom === 'orders' ? orders : payments;
      const event = await waitFor(() => service.events.slice(since[reasonFrom]).find((e) => e.event === 'refused'), 5000, `${reasonFrom} to log the refusal`).catch(() => undefined);
      if (event) reason = `${reasonFrom} logged "${event.failure}: ${event.reason}"`;
    }
    rows.push({ who, where, refused: result.refused, outcome: result.outcome, reason });
    (result.refused ? pass : fail)(`${who} → ${where}: ${result.refused ? 'refused' : 'NOT refused'} (${result.outcome})${reason ? `\n              ${reason}` : ''}`);
  };

  // An intruder: a certificate claiming a trusted identity, from a CA nobody trusts. It is not a
  // meshless client (those refuse to load a certificate their own bundle does not verify).
  const evilCA = await createTestCA({ trustDomain: TD });
  const evil = await evilCA.issue({ spiffeId: ID.web });
  const evilHttp = new Agent({ connect: { cert: evil.cert, key: evil.key, ca: nextCA.certPem, servername: 'localhost', checkServerIdentity: () => undefined } });
  await record(`intruder claiming ${ID.web} (another CA)`, 'orders', () => post(ordersUrl, evilHttp), 'orders');
  const evilOrders = await evilCA.issue({ spiffeId: ID.orders });
  const evilGrpc = grpc.credentials.createSsl(Buffer.from(nextCA.certPem), Buffer.from(evilOrders.key), Buffer.from(evilOrders.cert), { checkServerIdentity: () => undefined });
  await record(`intruder claiming ${ID.orders} (another CA)`, 'payments', async () => {
    const result = await call(paymentsClient(payments.port, evilGrpc), 'Charge');
    const seen = await tlsAlert(payments.port, evilOrders, nextCA.certPem);
    const detail = seen === 'closed without an alert' ? 'payments closed the TLS connection as soon as it saw the certificate (it does not verify to its bundle)' : `payments' TLS layer answered "${seen}"`;
    return { ...result, detail };
  });

  // Valid certificates from the real CA, whose identities the allow-lists do not name.
  const reporter = loadCredential(await nextCA.issue({ spiffeId: `spiffe://${TD}/ns/batch/sa/reporter` }));
  await record(`spiffe://${TD}/ns/batch/sa/reporter (valid, not allowed)`, 'orders', () => post(ordersUrl, createAgent({ source: reporter, allow: ID.orders, logger: quiet })), 'orders');
  await record(`spiffe://${TD}/ns/batch/sa/reporter (valid, not allowed)`, 'payments', () => call(paymentsClient(payments.port, channelCredentials({ source: reporter, allow: ID.payments, logger: quiet })), 'Charge'));
  const support = loadCredential(await nextCA.issue({ spiffeId: `spiffe://${TD}/ns/shop/sa/support` }));
  await record(`spiffe://${TD}/ns/shop/sa/support (may Refund only)`, 'payments Charge', () => call(paymentsClient(payments.port, channelCredentials({ source: support, allow: ID.payments, logger: quiet })), 'Charge'));
  const refund = await call(paymentsClient(payments.port, channelCredentials({ source: support, allow: ID.payments, logger: quiet })), 'Refund');
  (refund.refused ? fail : pass)(`and the same support workload → payments Refund: ${refund.outcome} (allowed by its per-method rule)`);
  if (refund.refused) rows.push({ who: 'support', where: 'payments Refund', refused: false, outcome: `wrongly refused: ${refund.outcome}` });
  return rows;
}
