// Per-request cost of identity and authorization, in ns/op: core's identityOf, allowList at 10
// and 10,000 rules, the cached-peer lookup socketPeer, and what hand-written code does instead.
// Standalone: node --conditions=source --import tsx bench/scenarios/per-request.ts [--quick]
import { X509Certificate } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { pathToFileURL } from 'node:url';
import { allowList, identityOf, loadCredential, verifyPeer, type Authorizer, type Peer } from '@meshless/core';
import { acceptedPeerCertificateOf, parseCertificates, socketPeer, verifyChain, withoutPeerCertificate } from '@meshless/core/internal';
import { createTestCA, type TestCA } from '@meshless/testing';
import { CLIENT_ID, SERVER_ID, TRUST_DOMAIN } from '../lib/certs.js';
import type { BenchContext } from '../lib/context.js';
import type { Row } from '../lib/results.js';
import { median, round } from '../lib/stats.js';

let sink: unknown;

/** How many calls of `fn` take about `batchMs` (after a first warm-up). */
function calibrate(fn: () => unknown, batchMs: number): number {
  let n = 16;
  for (;;) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) sink = fn();
    const ns = Number(process.hrtime.bigint() - t0);
    if (ns > 5e6 || n > 1e8) return Math.max(1, Math.round((n * batchMs * 1e6) / ns));
    n *= 4;
  }
}

/**
 * ns/op of every case, measured interleaved (one batch of each case per round, `batches`
 * rounds after a warm-up round), so that a machine that slows down mid-run slows every case
 * alike. Returns each case's per-round samples.
 */
function timeInterleaved(fns: (() => unknown)[], batches: number, batchMs: number): number[][] {
  const sizes = fns.map((fn) => calibrate(fn, batchMs));
  const samples: number[][] = fns.map(() => []);
  for (let b = 0; b < batches + 1; b++) {
    fns.forEach((fn, i) => {
      const n = sizes[i]!;
      const t0 = process.hrtime.bigint();
      for (let j = 0; j < n; j++) sink = fn();
      if (b > 0) samples[i]!.push(Number(process.hrtime.bigint() - t0) / n); // round 0 is warm-up
    });
  }
  return samples;
}

function rules(count: number, last: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < count - 1; i++) out.push(`spiffe://${TRUST_DOMAIN}/ns/ns${i}/sa/svc${i}`);
  out.push(last);
  return out;
}

/** A real mTLS connection on 127.0.0.1: the server-side socket, for socketPeer and getPeerCertificate. */
async function tlsPair(ca: TestCA): Promise<{ socket: tls.TLSSocket; close: () => void }> {
  const server = await ca.issue(SERVER_ID);
  const client = await ca.issue(CLIENT_ID);
  const srv = tls.createServer({ cert: server.cert, key: server.key, ca: ca.bundle, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' });
  const accepted = new Promise<tls.TLSSocket>((resolve) => srv.once('secureConnection', resolve));
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as AddressInfo).port;
  const cli = tls.connect({ host: '127.0.0.1', port, cert: client.cert, key: client.key, ca: ca.bundle, checkServerIdentity: () => undefined });
  cli.on('error', () => undefined);
  const socket = await accepted;
  return {
    socket,
    close: () => {
      cli.destroy();
      socket.destroy();
      srv.close();
    },
  };
}

/**
 * Per resumed TLS 1.3 connection, ns: the server reading the client certificate the old way
 * (`getPeerCertificate()`) and meshless's way (from the session), and the client's `tls.connect`
 * with the session as OpenSSL serialized it and as createAgent caches it (no server certificate).
 * Fresh connections every time (the first read on a socket is the dear one), `perBatch`
 * connections per case and batch, cases interleaved batch by batch.
 */
async function connectionReads(ca: TestCA, batches: number, perBatch: number): Promise<Record<string, number[]>> {
  const server = await ca.issue(SERVER_ID);
  const client = await ca.issue(CLIENT_ID);
  let read: 'legacy' | 'session' = 'legacy';
  let lastReadNs = 0;
  const srv = tls.createServer({ cert: server.cert, key: server.key, ca: ca.bundle, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' }, (socket) => {
    const t0 = process.hrtime.bigint();
    const x509 = read === 'legacy' ? socket.getPeerCertificate() : acceptedPeerCertificateOf(socket);
    lastReadNs = Number(process.hrtime.bigint() - t0);
    sink = x509;
    // Written, not just ended: OpenSSL sends the session tickets with the first data.
    socket.end('x');
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as AddressInfo).port;
  const secureContext = tls.createSecureContext({ cert: client.cert, key: client.key, ca: ca.bundle, minVersion: 'TLSv1.3' });
  let session: Buffer | undefined;
  const connect = (offered: Buffer | undefined): Promise<{ connectNs: number; readNs: number; resumed: boolean }> =>
    new Promise((resolve, reject) => {
      const t0 = process.hrtime.bigint();
      const socket = tls.connect({ host: '127.0.0.1', port, secureContext, session: offered, checkServerIdentity: () => undefined });
      const connectNs = Number(process.hrtime.bigint() - t0);
      let resumed = false;
      socket.on('secureConnect', () => (resumed = socket.isSessionReused()));
      socket.on('session', (s: Buffer) => (session ??= s));
      socket.on('error', reject);
      socket.on('close', () => resolve({ connectNs, readNs: lastReadNs, resumed }));
      socket.resume();
    });
  try {
    while (session === undefined) await connect(undefined);
    const full = session;
    const stripped = withoutPeerCertificate(full);
    if (stripped.length >= full.length) throw new Error('the client session carries no server certificate to leave out: the bench is wrong');
    const out: Record<string, number[]> = { 'read-legacy': [], 'read-session': [], 'connect-full': [], 'connect-stripped': [] };
    for (let b = 0; b < batches + 1; b++) {
      for (const [mode, offered, readKey, connectKey] of [
        ['legacy', full, 'read-legacy', 'connect-full'],
        ['session', stripped, 'read-session', 'connect-stripped'],
      ] as const) {
        read = mode;
        const reads: number[] = [];
        const connects: number[] = [];
        for (let i = 0; i < perBatch; i++) {
          const r = await connect(offered);
          if (!r.resumed) throw new Error('a connection did not resume: the bench is wrong');
          reads.push(r.readNs);
          connects.push(r.connectNs);
        }
        if (b === 0) continue; // warm-up
        out[readKey]!.push(median(reads)!);
        out[connectKey]!.push(median(connects)!);
      }
    }
    return out;
  } finally {
    srv.close();
  }
}

/** Runs the per-request microbenchmarks. */
export async function runPerRequestBench(options: { quick?: boolean; batches?: number } = {}) {
  const batches = options.batches ?? (options.quick ? 5 : 15);
  const batchMs = options.quick ? 10 : 20;
  const ca = await createTestCA({ trustDomain: TRUST_DOMAIN });
  const issued = await ca.issue(CLIENT_ID);
  const x509 = new X509Certificate(issued.cert);
  const peer: Peer = identityOf(x509);
  const stranger: Peer = identityOf(new X509Certificate((await ca.issue(`spiffe://${TRUST_DOMAIN}/ns/other/sa/nobody`)).cert));

  const allow10: Authorizer = allowList(rules(10, CLIENT_ID));
  const allow10k: Authorizer = allowList(rules(10_000, CLIENT_ID));
  const allowPatterns: Authorizer = allowList([...rules(9_990, `spiffe://${TRUST_DOMAIN}/ns/x/sa/y`), ...Array.from({ length: 10 }, (_, i) => `spiffe://${TRUST_DOMAIN}/ns/*/sa/pat${i}`), `spiffe://${TRUST_DOMAIN}/ns/*/sa/client`]);
  for (const [name, a] of [['10', allow10], ['10k', allow10k], ['patterns', allowPatterns]] as const) {
    if (!a(peer).allowed) throw new Error(`allow-list ${name} does not allow ${String(peer)}: the bench is wrong`);
  }
  if (allow10k(stranger).allowed) throw new Error('allow-list 10k allows a stranger: the bench is wrong');
  // Authorizers remember their decision per (frozen) Peer; an unfrozen copy is matched afresh on
  // every call: that is the cost of the first decision on a new connection.
  const fresh = { ...peer, toString: peer.toString } as Peer;
  const freshStranger = { ...stranger, toString: stranger.toString } as Peer;

  // Per-connection check with federation: our credential trusts 1 or 20 other trust domains; the
  // peer belongs to one of them. Cached: what a repeated certificate costs (resumption, re-checks);
  // chain: the uncached step against that trust domain's bundle, next to a flat pool of every root.
  const partners = await Promise.all(Array.from({ length: 20 }, (_, i) => createTestCA({ trustDomain: `partner${i}.example` })));
  const ownIssued = await ca.issue(SERVER_ID);
  const own1 = loadCredential({ ...ownIssued, federation: { [partners[0]!.trustDomain]: partners[0]!.bundle } });
  const own20 = loadCredential({ ...ownIssued, federation: Object.fromEntries(partners.map((p) => [p.trustDomain, p.bundle])) });
  const partnerLeaf = new X509Certificate((await partners[0]!.issue(`spiffe://${partners[0]!.trustDomain}/ns/shop/sa/checkout`)).cert);
  const partnerPeer = identityOf(partnerLeaf); // wrappers compute it once per connection
  const anyPeer = allowList('*');
  const flatPool = parseCertificates(own20.trustPem, { field: 'bench' });
  const partnerBundle = own20.bundles.get(partners[0]!.trustDomain)!;
  for (const credential of [own1, own20]) {
    const check = verifyPeer({ leaf: partnerLeaf }, { credential, authorize: anyPeer });
    if (!check.ok) throw new Error(`verifyPeer refused the partner peer: ${check.reason}`);
  }

  const pair = await tlsPair(ca);
  try {
    const socket = pair.socket;
    if (String(socketPeer(socket)) !== CLIENT_ID) throw new Error('socketPeer did not return the client identity');
    const cases: [string, string, () => unknown][] = [
      ['identityOf', 'identityOf(x509): identity from a parsed certificate (once per connection)', () => identityOf(x509)],
      ['match-10', 'allowList matching, 10 exact rules (first decision for a peer)', () => allow10(fresh)],
      ['match-10k', 'allowList matching, 10,000 exact rules (first decision for a peer)', () => allow10k(fresh)],
      ['match-10k-miss', 'allowList matching, 10,000 exact rules (no match)', () => allow10k(freshStranger)],
      ['allow-10', 'allowList decision, 10 exact rules (match)', () => allow10(peer)],
      ['allow-10k', 'allowList decision, 10,000 exact rules (match)', () => allow10k(peer)],
      ['allow-10k-miss', 'allowList decision, 10,000 exact rules (no match: denied)', () => allow10k(stranger)],
      ['allow-10k-pattern', "allowList decision, 10,000 rules matched by a 'ns/*' pattern", () => allowPatterns(peer)],
      ['socketPeer', 'peerOf(req)\'s lookup: the cached peer of a connection (core/internal socketPeer)', () => socketPeer(socket)],
      ['request-10', 'per request: peer lookup + decision, 10 rules', () => allow10(socketPeer(socket)!)],
      ['request-10k', 'per request: peer lookup + decision, 10,000 rules', () => allow10k(socketPeer(socket)!)],
      [
        'handwritten-getPeerCertificate',
        "hand-written per request: socket.getPeerCertificate().subjectaltname.includes('URI:' + id)",
        () => (socket.getPeerCertificate().subjectaltname ?? '').includes(`URI:${CLIENT_ID}`),
      ],
      ['handwritten-x509', 'uncached per request: identityOf(socket.getPeerX509Certificate())', () => identityOf(socket.getPeerX509Certificate()!)],
      ['verify-td1', 'per connection: verifyPeer, repeated certificate, 1 federated trust domain', () => verifyPeer({ leaf: partnerLeaf, peer: partnerPeer }, { credential: own1, authorize: anyPeer })],
      ['verify-td20', 'per connection: verifyPeer, repeated certificate, 20 federated trust domains', () => verifyPeer({ leaf: partnerLeaf, peer: partnerPeer }, { credential: own20, authorize: anyPeer })],
      ['chain-td', "per new certificate: chain check against the peer's trust domain bundle (same with 1 or 20 domains)", () => verifyChain(partnerLeaf, [], partnerBundle, Date.now())],
      ['chain-flat20', 'for comparison: the same chain check against a flat pool of all 21 roots', () => verifyChain(partnerLeaf, [], flatPool, Date.now())],
    ];
    const samples = timeInterleaved(
      cases.map(([, , fn]) => fn),
      batches,
      batchMs,
    );
    const rows = cases.map(([id, label], i) => ({ id, label, nsPerOp: median(samples[i]!)!, minNsPerOp: Math.min(...samples[i]!) }));
    const perConnection = await connectionReads(ca, options.quick ? 2 : Math.max(3, Math.round(batches / 3)), options.quick ? 10 : 30);
    const connectionLabels: Record<string, string> = {
      'read-legacy': 'per resumed connection, server: the client certificate through getPeerCertificate() (what meshless did before)',
      'read-session': 'per resumed connection, server: the client certificate from the TLS session (acceptedPeerCertificateOf)',
      'connect-full': "per resumed connection, client: tls.connect with the session as OpenSSL serialized it (server certificate inside)",
      'connect-stripped': "per resumed connection, client: tls.connect with createAgent's cached session (no server certificate)",
    };
    for (const [id, values] of Object.entries(perConnection)) rows.push({ id, label: connectionLabels[id]!, nsPerOp: median(values)!, minNsPerOp: Math.min(...values) });
    const at = (id: string) => samples[cases.findIndex(([cid]) => cid === id)]!;
    // allowList at 10,000 rules ÷ at 10 rules (issue 2: within 2×), paired by round: each 10,000-rule batch ran right after its 10-rule batch.
    const ratio10kTo10 = median(at('match-10k').map((x, i) => x / at('match-10')[i]!))!;
    if (sink === Symbol.for('never')) console.log(sink);
    return { rows, ratio10kTo10 };
  } finally {
    pair.close();
  }
}

/** Prints the rows as a small table. */
function printPerRequest(result: Awaited<ReturnType<typeof runPerRequestBench>>): void {
  for (const r of result.rows) console.log(`  ${r.nsPerOp.toFixed(0).padStart(8)} ns/op  ${r.label}`);
  console.log(`  10,000 rules ÷ 10 rules = ${result.ratio10kTo10.toFixed(2)}× (${result.ratio10kTo10 <= 2 ? 'within' : 'NOT within'} 2×)`);
}

/** The scenario: in the orchestrator's own process, which is idle meanwhile (no child is running). */
export async function runPerRequest(ctx: BenchContext): Promise<Row[]> {
  console.log('\n== per request: identity + allow-list decision ==');
  const result = await runPerRequestBench({ quick: ctx.options.mode === 'quick', batches: ctx.options.microBatches });
  printPerRequest(result);
  return result.rows.map((r) => ({
    group: 'per-request',
    scenario: r.id,
    variant: 'ns/op',
    status: 'ok',
    median: { nsPerOp: round(r.nsPerOp, 3), minNsPerOp: round(r.minNsPerOp, 3) },
    details: { label: r.label, ...(r.id === 'allow-10k' ? { ratio10kTo10: round(result.ratio10kTo10, 3) } : {}) },
  }));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  printPerRequest(await runPerRequestBench({ quick: process.argv.includes('--quick') }));
}
