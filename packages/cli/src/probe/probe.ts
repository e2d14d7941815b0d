import { allowList, codes, identityOf, isMeshlessError, verifyPeer, type Credential, type MeshlessErrorCode } from '@meshless/core';
import { summarize, type CertificateSummary } from '../inspect/report.js';
import { grpcAnswer, httpAnswer, type ServerAnswer } from './answer.js';
import { handshake, type Handshake } from './handshake.js';

/** What to probe, with what. */
export interface ProbeOptions {
  /** `https://host:port/path` or `grpc://host:port`. */
  url: URL;
  credential: Credential;
  /** The bundle file our trust comes from (for messages). */
  bundleFile: string;
  /** Rules the server's identity must pass; empty: not checked. */
  allow: string[];
  deny: string[];
  /** gRPC method to call (`/pkg.Service/Method`). */
  method: string;
  servername?: string;
  timeoutMs: number;
}

/** What `meshless probe` found. */
export interface ProbeReport {
  url: string;
  ok: boolean;
  error?: { code: MeshlessErrorCode | string; message: string };
  connection?: { address: string; handshakeMs: number; tlsVersion: string | null; cipher: string; alpn: string | null };
  server?: { id: string; spiffeId?: string; dnsNames: string[]; serialNumber: string; notAfter: string; timeLeftMs: number };
  chain: CertificateSummary[];
  /** Whether the server's chain verifies to our bundle (OpenSSL's verdict). */
  verified?: boolean;
  verifyError?: string;
  allow?: { checked: boolean; allowed?: boolean; rule?: string; reason: string };
  /** Our side: the identity we presented and whether the server accepted it. */
  /** Our side: whether the server accepted our certificate (`asked: false`: no request was sent). */
  client?: { id: string; accepted: boolean; answer: string; error?: string; asked?: false };
  resumption?: { resumed: boolean; note?: string };
}

/** Default ports: HTTPS and gRPC over TLS both default to 443. */
function portOf(url: URL): number {
  return url.port ? Number(url.port) : 443;
}

/**
 * Connects to a server the way a meshless client would (our certificate, our bundle), shows who
 * answered and how, and says whether a meshless client with `allow` would accept it — and
 * whether the server accepts us. A second connection checks TLS session resumption.
 */
export async function probe(options: ProbeOptions): Promise<ProbeReport> {
  const { url, credential } = options;
  const report: ProbeReport = { url: url.href, ok: false, chain: [] };
  const grpc = url.protocol === 'grpc:';
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = portOf(url);
  const target = { host, port, alpn: grpc ? ['h2'] : ['http/1.1'], timeoutMs: options.timeoutMs, ...(options.servername ? { servername: options.servername } : {}) };
  const fail = (code: MeshlessErrorCode | string, message: string) => {
    report.error = { code, message };
    return report;
  };

  let first: Handshake;
  try {
    first = await handshake(credential, target);
  } catch (err) {
    if (isMeshlessError(err)) return fail(err.code, err.message);
    const e = err as NodeJS.ErrnoException;
    const alert = /alert|handshake failure|wrong version number|unsupported protocol/i.test(e.message);
    return fail(e.code ?? 'ERR_CONNECT', alert ? `the TLS handshake with ${host}:${port} failed: ${e.message}` : `cannot connect to ${host}:${port}: ${e.message}`);
  }
  const now = Date.now();
  report.connection = { address: `${host}:${port}`, handshakeMs: Math.round(first.ms * 10) / 10, tlsVersion: first.version, cipher: first.cipher, alpn: first.alpn };
  report.chain = first.chain.map((c) => summarize(c, now));
  report.verified = first.authorized;
  if (first.authorizationError) report.verifyError = first.authorizationError;
  const leaf = first.chain[0];
  // OpenSSL verified the chain to any of our bundles; a meshless client also wants it verified to
  // the bundle of the trust domain the server's SPIFFE ID names (federation): ask the verifier.
  let trustRefusal: { code: MeshlessErrorCode; reason: string } | undefined;
  if (first.authorized && leaf) {
    const check = verifyPeer({ leaf, intermediates: first.chain.slice(1) }, { credential, authorize: allowList('*'), now: Date.now(), who: 'server' });
    if (!check.ok) {
      trustRefusal = { code: check.error.code, reason: check.reason };
      report.verified = false;
      report.verifyError = check.reason;
    }
  }
  const peer = leaf ? identityOf(leaf) : undefined;
  if (peer) {
    report.server = { id: String(peer), dnsNames: [...peer.dnsNames], serialNumber: peer.serialNumber, notAfter: peer.notAfter.toISOString(), timeLeftMs: peer.notAfter.getTime() - now };
    if (peer.spiffeId !== undefined) report.server.spiffeId = peer.spiffeId;
  }
  if (options.allow.length === 0) {
    report.allow = { checked: false, reason: 'no --allow given: the server identity was not checked against rules' };
  } else if (peer) {
    const decision = allowList(options.allow, { deny: options.deny })(peer);
    report.allow = { checked: true, allowed: decision.allowed, reason: decision.reason, ...(decision.rule ? { rule: decision.rule } : {}) };
  }

  // Like a meshless client, send nothing to a server that is not trusted or not allowed: the
  // handshake alone shows who it is; asking it whether it accepts us would talk to an impostor.
  const trusted = report.verified === true && report.allow?.allowed !== false;
  let answer: ServerAnswer | undefined;
  if (trusted) {
    answer = grpc
      ? await grpcAnswer(first.socket, `${url.host}`, options.method, options.timeoutMs)
      : await httpAnswer(first.socket, url.host, `${url.pathname}${url.search}`, options.timeoutMs);
    report.client = { id: String(credential.identity), accepted: answer.accepted, answer: answer.summary, ...(answer.error ? { error: answer.error } : {}) };
  } else {
    first.socket.destroy();
    report.client = { id: String(credential.identity), accepted: false, asked: false, answer: 'not asked: no request is sent to a server that does not verify or is not allowed' };
  }

  const ticket = await first.session;
  if (ticket && report.verified) {
    try {
      const second = await handshake(credential, { ...target, session: ticket });
      second.socket.destroy();
      report.resumption = { resumed: second.resumed, ...(second.resumed ? {} : { note: 'the server issued a ticket but did not resume the session' }) };
    } catch (err) {
      report.resumption = { resumed: false, note: `the second connection failed: ${(err as Error).message}` };
    }
  } else {
    report.resumption = { resumed: false, note: ticket ? 'not tried: the first connection did not verify' : 'the server issued no session ticket' };
  }

  // The verdict, in the order a meshless client would fail.
  if (!peer) return fail(codes.PEER_UNVERIFIED, `${host}:${port} presented no certificate`);
  if (!first.authorized) {
    return fail(codes.PEER_UNVERIFIED, `the server presented ${String(peer)}, whose chain does not verify to our bundle ${options.bundleFile} (${first.authorizationError}); it was issued by ${JSON.stringify(report.chain[report.chain.length - 1]?.issuer)}: trust that CA (during a CA rotation, both roots)`);
  }
  if (trustRefusal !== undefined) return fail(trustRefusal.code, `the server presented ${String(peer)}: ${trustRefusal.reason}`);
  if (report.allow?.checked && !report.allow.allowed) {
    return fail(codes.PEER_DENIED, `the server presented ${String(peer)}, which --allow does not accept: ${report.allow.reason}`);
  }
  if (answer !== undefined && !answer.accepted) {
    const code = answer.grpcStatus === 16 ? codes.PEER_UNVERIFIED : codes.PEER_DENIED;
    return fail(code, `the server refused our certificate (${String(credential.identity)}): ${answer.summary}${answer.error ? ` (${answer.error})` : ''}; check the server's allow-list and that its bundle holds our CA`);
  }
  report.ok = true;
  return report;
}
