import { isIP, type Socket } from 'node:net';
import { plaintextRefused } from './agent-plaintext.js';
import tls, { type ConnectionOptions, type DetailedPeerCertificate, type SecureContext, type TLSSocket } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { MeshlessError, codes, identityOf, type Credential, type Peer, type PresentedChain, type RefusalClass } from '@meshless/core';
import { peerCertificateOf, presentedChainOf, rememberSocketPeer } from '@meshless/core/internal';
import type { ServerPolicy } from './agent-allow.js';
import type { ConnectorSettings } from './agent-options.js';
import { checkServer, handshakeTimeoutError, untrustedServerError } from './connector-verify.js';
import type { CachedSession, SessionCache } from './session-cache.js';

/** What undici passes to a `connect` function. */
export interface ConnectParams {
  readonly hostname: string;
  readonly host: string;
  readonly protocol: string;
  readonly port: string;
  readonly servername?: string | null;
  readonly localAddress?: string | null;
  readonly httpSocket?: Socket;
}

/** undici's connector callback. */
export type ConnectCallback = (...args: [null, Socket | TLSSocket] | [Error, null]) => void;

/** What a connector works with: one credential generation and one allow policy. */
export interface ConnectorContext {
  /** The credential in force: its bundles are what servers must verify to. */
  readonly credential: Credential;
  /** Built once per credential generation from `clientSecureContextOptions` (never cert/key per socket). */
  readonly secureContext: SecureContext;
  readonly policy: ServerPolicy;
  readonly sessions: SessionCache;
  readonly settings: ConnectorSettings;
  /** Our own certificate's notAfter (ms): no connection outlives it. */
  readonly credentialNotAfter: number;
  onAllowed(origin: string, peer: Peer, resumed: boolean): void;
  onRefused(origin: string, failure: RefusalClass, resumed: boolean, error: MeshlessError, peer?: Peer): void;
}

/** Takes a verified socket before undici does: arms its lifetime. */
export interface ConnectionOwner {
  adopt(socket: TLSSocket, peer: Peer, deadline: number): void;
}

/** Socket options `tls.connect` passes on to `net.connect`, missing from its typings. */
interface NetOptions {
  highWaterMark?: number;
  localAddress?: string;
  autoSelectFamily?: boolean;
  autoSelectFamilyAttemptTimeout?: number;
}

/**
 * Opens one TLS connection for undici and hands it over only after the server passed
 * {@link checkServer}. On a full handshake the server's identity is read once, from the object
 * Node builds for `checkServerIdentity` (or, when the chain failed, from the handshake, to name it
 * in the error); on a resumed session it is the Peer
 * verified with that session, re-checked against the current rules and clock. A refused socket is
 * destroyed before undici sees it, so no request byte is written.
 */
export function connectVerified(ctx: ConnectorContext, params: ConnectParams, callback: ConnectCallback, owner: ConnectionOwner): void {
  let done = false;
  let timer: NodeJS.Timeout | undefined;
  const finish = (err: Error | null, socket: TLSSocket | null): void => {
    if (done) return;
    done = true;
    if (timer !== undefined) clearTimeout(timer);
    if (err) callback(err, null);
    else callback(null, socket!);
  };
  const fail = (err: Error): void => queueMicrotask(() => finish(err, null));

  if (params.protocol !== 'https:') {
    fail(plaintextRefused(`${params.protocol}//${params.host}`));
    return;
  }
  const origin = `https://${params.host}`;
  let authorize;
  try {
    authorize = ctx.policy.authorizerFor(origin);
  } catch (err) {
    fail(err as Error);
    return;
  }
  const servername = params.servername || (isIP(params.hostname) === 0 ? params.hostname : undefined);
  const sessionKey = servername === undefined ? origin : `${origin}|${servername}`;
  const cached: CachedSession | undefined = ctx.sessions.get(sessionKey, Date.now());

  let handshaken = false;
  let presented: PresentedChain | undefined;
  let verified: CachedSession['presented'] | undefined;
  let earlySession: Buffer | undefined;

  const options: ConnectionOptions & NetOptions = {
    host: params.hostname,
    port: Number(params.port) || 443,
    secureContext: ctx.secureContext,
    ALPNProtocols: ctx.settings.allowH2 ? ['h2', 'http/1.1'] : ['http/1.1'],
    rejectUnauthorized: true,
    // Node calls this on full handshakes whose chain verified, with the certificate object it has
    // already built: read the server's identity from it (no second read of the certificate). The
    // real check runs on 'secureConnect' for every connection, resumed ones included.
    checkServerIdentity: (_host, cert) => {
      try {
        presented = cert && cert.raw ? presentedChainOf(cert as DetailedPeerCertificate) : undefined;
      } catch {
        presented = undefined; // no identity: refused as unverified on 'secureConnect'
      }
      return undefined;
    },
    highWaterMark: 16384,
  };
  if (servername !== undefined) options.servername = servername;
  if (cached !== undefined) options.session = cached.session;
  if (params.localAddress) options.localAddress = params.localAddress;
  if (params.httpSocket) options.socket = params.httpSocket;
  if (ctx.settings.autoSelectFamily !== undefined) options.autoSelectFamily = ctx.settings.autoSelectFamily;
  if (ctx.settings.autoSelectFamilyAttemptTimeout !== undefined) options.autoSelectFamilyAttemptTimeout = ctx.settings.autoSelectFamilyAttemptTimeout;

  let socket: TLSSocket;
  try {
    socket = tls.connect(options);
  } catch (err) {
    fail(err as Error);
    return;
  }

  // 'secure' fires when OpenSSL finishes the handshake, before Node applies its verdict.
  socket.prependListener('secure', () => {
    handshaken = true;
    // A resumed TLS 1.3 session shows no server certificate: the Peer verified with it stands in.
    if (socket.isSessionReused()) presented = cached?.presented;
    // A chain that failed to verify: Node will not call checkServerIdentity, and after its verdict
    // the certificate is gone; read it now so the error names what the server presented.
    else if (chainFailed(socket)) presented = presentedBy(socket);
  });

  socket.once('secureConnect', () => {
    const resumed = socket.isSessionReused();
    const check = checkServer(socket, { origin, presented, resumed, authorize, credential: ctx.credential, now: Date.now() });
    if (!check.ok) {
      if (resumed) ctx.sessions.delete(sessionKey);
      socket.destroy();
      ctx.onRefused(origin, check.failure, resumed, check.error, check.peer);
      finish(check.error, null);
      return;
    }
    verified = { leaf: check.certificate, peer: check.peer, intermediates: check.intermediates };
    const peer = check.peer;
    rememberSocketPeer(socket, peer);
    if (earlySession !== undefined) ctx.sessions.set(sessionKey, earlySession, verified);
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    const maxAge = ctx.settings.maxConnectionAgeMs;
    const deadline = Math.min(peer.notAfter.getTime(), ctx.credentialNotAfter, maxAge === undefined ? Infinity : Date.now() + maxAge);
    ctx.onAllowed(origin, peer, resumed);
    owner.adopt(socket, peer, deadline);
    finish(null, socket);
  });

  socket.on('session', (session: Buffer) => {
    if (verified !== undefined) ctx.sessions.set(sessionKey, session, verified);
    else if (!done) earlySession = session;
  });

  socket.on('error', (err: Error) => {
    if (done) return;
    if (handshaken && verified === undefined) {
      const error = untrustedServerError(origin, presented?.peer, err);
      ctx.onRefused(origin, 'unverified', socket.isSessionReused(), error, presented?.peer);
      socket.destroy();
      finish(error, null);
    } else {
      socket.destroy();
      finish(err, null);
    }
  });

  timer = setTimeout(() => {
    socket.destroy();
    finish(handshakeTimeoutError(origin, ctx.settings.connectTimeout), null);
  }, ctx.settings.connectTimeout);
  timer.unref();
}

/** What a server presented, read after a failed handshake (undefined when unavailable). */
function presentedBy(socket: TLSSocket): PresentedChain | undefined {
  try {
    const x509 = peerCertificateOf(socket);
    return x509 === undefined ? undefined : { leaf: x509, peer: identityOf(x509) };
  } catch {
    return undefined;
  }
}

/**
 * Whether OpenSSL's chain verification failed, asked before Node acts on it. Uses the TLS handle's
 * `verifyError()` (what Node itself consults); when that is not reachable, answers true so the
 * certificate is read anyway (a cheap read; only the error message depends on it).
 */
function chainFailed(socket: TLSSocket): boolean {
  const handle = (socket as unknown as { _handle?: { verifyError?: () => unknown } })._handle;
  if (typeof handle?.verifyError !== 'function') return true;
  return handle.verifyError() !== null;
}
