// The federation scene: a workload of another trust domain (partner.example) calls an orders
// instance that trusts partner.example through a bundle map on a ConfigMap-style mount; the
// partner's CA forging one of our identities is refused; removing partner.example from the map
// retires its connection and refuses its next call.
import https from 'node:https';
import { once } from 'node:events';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { fileSource, formatBundleMap } from '@meshless/core';
import { createAgent, createServer, peerOf } from '@meshless/http';
import { createTestCA, kubernetesVolume } from '@meshless/testing';
import { request } from 'undici';

const PARTNER_TD = 'partner.example';
const PARTNER_ID = `spiffe://${PARTNER_TD}/ns/billing/sa/invoicer`;
const quiet = { error() {}, warn() {}, info() {}, debug() {} };

/** GET / with a certificate from outside meshless (an attacker's client): the status, or the error. */
function rawGet(port, { cert, key }) {
  return new Promise((resolve) => {
    const req = https.get({ host: '127.0.0.1', port, path: '/', agent: false, cert, key, rejectUnauthorized: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode }));
    });
    req.on('error', (err) => resolve({ error: err.code ?? err.message }));
    req.setTimeout(5_000, () => req.destroy(new Error('timeout')));
  });
}

async function call(agent, port) {
  try {
    const res = await request(`https://127.0.0.1:${port}/`, { dispatcher: agent, headersTimeout: 5_000, bodyTimeout: 5_000 });
    return { status: res.statusCode, body: await res.body.text() };
  } catch (err) {
    return { error: err.code ?? err.message };
  }
}

/** Runs the scene with the orders identity; `ourCA` is the CA our bundles trust now. Returns { ok, line }. */
export async function federationScene({ work, ordersDir, ourCA, ID, pass, fail, say, waitFor }) {
  const cleanups = [];
  try {
    const partnerCA = await createTestCA({ trustDomain: PARTNER_TD });
    const map = (domains) => formatBundleMap(Object.fromEntries(domains.map((td) => [td, [new X509Certificate(partnerCA.certPem)]])));
    // The ConfigMap trust-manager or a SPIRE bundle publisher would mount: partner.example's bundle.
    const federation = kubernetesVolume(join(work, 'federation'));
    cleanups.push(() => federation.close());
    await federation.write({ 'bundles.json': map([PARTNER_TD]) });
    // The partner's workload: its SVID, and our trust domain's bundle in a federation file.
    const partnerDir = join(work, 'partner-invoicer');
    const partnerMount = kubernetesVolume(partnerDir);
    cleanups.push(() => partnerMount.close());
    const invoicer = await partnerCA.issue({ spiffeId: PARTNER_ID, ttlMs: 3_600_000 });
    await partnerMount.write({ 'tls.crt': invoicer.cert, 'tls.key': invoicer.key, 'ca.crt': invoicer.ca, 'prod.example.pem': ourCA.certPem });

    const source = await fileSource({ dir: ordersDir, bundleMap: join(work, 'federation', 'bundles.json') }, { logger: quiet });
    cleanups.push(() => source.close());
    const refusals = [];
    const server = createServer({ source, allow: [`spiffe://${PARTNER_TD}/ns/billing/**`, ID.web], logger: quiet }, (req, res) => res.end(`hello ${peerOf(req)}`));
    server.on('peerRefused', (r) => refusals.push(r));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanups.push(() => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(resolve);
    }));
    const { port } = server.address();
    say(`an orders instance on :${port} trusts ${PARTNER_TD} through a bundle map (${[...source.current().bundles.keys()].join(', ')}), allows ${PARTNER_TD}/ns/billing/**`);

    const partnerSource = await fileSource({ dir: partnerDir, federation: { 'prod.example': join(partnerDir, 'prod.example.pem') } }, { logger: quiet });
    cleanups.push(() => partnerSource.close());
    const partner = createAgent({ source: partnerSource, allow: ID.orders, logger: quiet });
    cleanups.push(() => partner.close());
    const first = await call(partner, port);
    const accepted = first.body === `hello ${PARTNER_ID}`;
    if (accepted) pass(`${PARTNER_ID} (partner CA) → orders: answered; each side verified the other against its own trust domain's bundle`);
    else fail(`the partner workload was not answered: ${JSON.stringify(first)}`);

    const forged = await partnerCA.issue({ spiffeId: ID.web, ttlMs: 3_600_000 });
    const before = refusals.length;
    const forgery = await rawGet(port, forged);
    const forgeryRefusal = await waitFor(() => refusals[before], 5_000, 'the forged certificate to be refused').catch(() => undefined);
    const forgeryRefused = forgery.status === undefined && /does not verify to the trust bundle of prod\.example/.test(forgeryRefusal?.reason ?? '');
    if (forgeryRefused) pass(`the partner CA forging ${ID.web} → orders: refused — its chain is checked against prod.example's bundle only (OpenSSL alone would have accepted it)`);
    else fail(`the forged ${ID.web} was not refused as it should be: ${JSON.stringify(forgery)} ${forgeryRefusal?.reason ?? ''}`);

    await federation.write({ 'bundles.json': map([]) });
    await waitFor(() => !source.current().bundles.has(PARTNER_TD), 5_000, `${PARTNER_TD} to leave the bundles`);
    const after = await call(partner, port);
    const removed = after.status === undefined;
    if (removed) pass(`${PARTNER_TD} removed from the map: its live connection retired, its next call refused (${after.error})`);
    else fail(`after removing ${PARTNER_TD} the partner was still answered: ${JSON.stringify(after)}`);
    const ok = accepted && forgeryRefused && removed;
    return { ok, line: `${PARTNER_TD} workload ${accepted ? 'answered' : 'NOT answered'}; partner CA forging ${ID.web} ${forgeryRefused ? 'refused' : 'NOT refused'}; ${PARTNER_TD} removed from the map → ${removed ? 'refused' : 'still answered'}` };
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup();
  }
}
