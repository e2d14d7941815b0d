import { randomBytes, type X509Certificate } from 'node:crypto';
import type { RequestListener } from 'node:http';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import {
  MeshlessError,
  channels,
  verifyPeer,
  type Authorizer,
  type Credential,
  type Peer,
  type PeerCheck,
  type Rules,
  type DenyRules,
  type Source,
} from '@meshless/core';
import {
  hideSecretProperties,
  TLS_SERVER_SECRET_PROPERTIES,
  onPolicyChange,
  compilePolicy,
  checkAcceptedConnection,
} from '@meshless/core/internal';
import { ConnectionRegistry, type LiveConnection, type PeerRetirement, type ReviewVerdict } from './server-connections.js';
import { gateRequests } from './server-request-gate.js';
import { parseServerOptions, secureOptionsFor, type ServerOptions } from './server-options.js';
import { PermissiveListener, parseMode, type PlaintextRequest, type ServerMode } from './server-permissive.js';
import { RefusalReporter, handshakeRefusal, type PeerRefusal } from './server-refusals.js';

/** Drain window of a planned retirement when the server has no keepAliveTimeout. */
const DEFAULT_DRAIN_WINDOW_MS = 5_000;
const NO_INTERMEDIATES: readonly X509Certificate[] = Object.freeze([]);

/**
 * A real `https.Server` that only lets allowed peers reach its request listener, rotates its
 * credential live, and retires connections whose trust ended.
 *
 * Events, besides those of `https.Server`:
 * - `'peerRefused'` `(refusal: PeerRefusal)` — a client was refused (its socket is already closed).
 * - `'peerRetired'` `(retirement: PeerRetirement)` — a live connection is being retired.
 */
export interface MeshlessServer extends https.Server {
  /**
   * Replaces the allow-list (and the deny-list when `deny` is given: without it the current deny
   * rules stay, `deny: []` drops them). New connections are checked against it at once; live
   * connections whose peer it refuses are revoked: no further request on them is handled.
   */
  setAllow(allow: Rules, options?: { deny?: DenyRules; dryRun?: boolean }): void;
  /**
   * Switches between `'strict'` (mutual TLS only) and `'permissive'` (plaintext HTTP too, for a
   * migration) live. To strict: new plaintext connections are refused, live plaintext keep-alive
   * connections close after their in-flight request; TLS connections are untouched.
   */
  setMode(mode: ServerMode): void;
  /** The current mode. */
  readonly mode: ServerMode;
  /** The credential source this server serves (a `staticSource` when given a Credential). */
  readonly source: Source;

  on(event: 'peerRefused', listener: (refusal: PeerRefusal) => void): this;
  on(event: 'peerRetired', listener: (retirement: PeerRetirement) => void): this;
  on(event: 'plaintextRequest', listener: (request: PlaintextRequest) => void): this;
  on(event: string, listener: (...args: any[]) => void): this;
  once(event: 'peerRefused', listener: (refusal: PeerRefusal) => void): this;
  once(event: 'peerRetired', listener: (retirement: PeerRetirement) => void): this;
  once(event: string, listener: (...args: any[]) => void): this;
}

/**
 * Creates an HTTPS server with mutual TLS from a credential source.
 *
 * Every new TLS connection, resumed ones included, is checked before the HTTP parser sees a
 * byte: chain (OpenSSL's verdict, re-checked against the current bundle on resumption), then the
 * client's identity against `allow`/`deny`. A refused client's socket is destroyed at once; the
 * refusal is logged, counted, published on `channels.peerRefused` and emitted as `'peerRefused'`.
 *
 * On every source `update` the complete TLS options are re-applied (`setSecureContext`). When the
 * trust bundle or our own certificate changes, the session ticket keys are renewed (old tickets
 * no longer resume: clients see the new certificate in a full handshake). When the bundle changes,
 * live connections whose client no longer verifies are revoked (no further request on them reaches
 * the listener; in-flight responses are cut after `retireGraceMs`). Connections are also revoked
 * at the client certificate's `notAfter`, and retired gracefully after `maxConnectionAgeMs`.
 *
 * @example
 * const server = createServer({ source, allow: 'spiffe://prod.example/ns/web/sa/frontend' }, app);
 * server.listen(8443);
 */
export function createServer(options: ServerOptions, requestListener?: RequestListener): MeshlessServer {
  const parsed = parseServerOptions(options);
  const { source, logger } = parsed;
  const policyOf = (allow: Rules, deny: DenyRules | undefined, dryRun: boolean): Authorizer => compilePolicy('createServer', allow, deny, dryRun ? { scope: 'server', logger } : undefined);
  let dryRun = parsed.dryRun;
  let deny = parsed.deny;
  let authorize: Authorizer = policyOf(parsed.allow, deny, dryRun);
  let ticketKeys = randomBytes(48);
  let served: Credential = source.current();
  const verifiedPaths = new WeakMap<TLSSocket, readonly X509Certificate[]>();

  const server = https.createServer(secureOptionsFor(served, parsed, ticketKeys), requestListener) as MeshlessServer;
  // Node copies options.key (and the ticket keys) onto the server: keep them out of logs and inspect.
  hideSecretProperties(server, TLS_SERVER_SECRET_PROPERTIES);
  const metrics = parsed.metrics;
  const reporter = new RefusalReporter(logger, metrics, (refusal) => server.emit('peerRefused', refusal));
  const connections = new ConnectionRegistry(parsed.maxConnectionAgeMs, () => server.keepAliveTimeout || DEFAULT_DRAIN_WINDOW_MS, (_connection, retirement) => {
    logger.info(
      {
        peer: String(retirement.peer),
        reason: retirement.reason,
        detail: retirement.detail,
        remoteAddress: retirement.remoteAddress,
        inFlight: retirement.inFlight,
        closesBy: retirement.closesBy?.toISOString(),
      },
      'meshless server: retiring a connection',
    );
    server.emit('peerRetired', retirement);
  }, parsed.retireGraceMs, (connection, req, status, code) => {
    logger.warn(
      { peer: String(connection.peer), reason: connection.revoked, status, code, method: req.method, path: req.url, remoteAddress: connection.remoteAddress },
      'meshless server: refused a request on a retired connection',
    );
    metrics.refusals.add(1, { side: 'server', failure: connection.revoked === 'policy-changed' ? 'denied' : 'unverified', scope: 'retired-connection' });
  });

  // First listener of 'secureConnection': runs before the HTTP parser is attached, so a refused
  // client never has a request parsed.
  server.prependListener('secureConnection', (socket: TLSSocket) => {
    const credential = source.current();
    const check = checkAcceptedConnection(socket, authorize, credential, { who: 'client' });
    if (!check.ok) {
      const remoteAddress = socket.remoteAddress;
      socket.destroy();
      reporter.report({
        failure: check.failure,
        ...(check.peer === undefined ? {} : { peer: check.peer }),
        ...(check.decision === undefined ? {} : { decision: check.decision }),
        reason: check.reason,
        ...(remoteAddress === undefined ? {} : { remoteAddress }),
        resumed: check.resumed,
        error: check.error,
      });
      return;
    }
    // Keep the certificate and verified path, to re-verify the connection when trust changes
    // (a resumed session shows no intermediates later).
    connections.add(socket, check.peer, check.certificate, credential.bundleHash);
    if (check.intermediates.length > 0) verifiedPaths.set(socket, check.intermediates);
    if (channels.peerAllowed.hasSubscribers) channels.peerAllowed.publish({ side: 'server', peer: check.peer, resumed: check.resumed });
  });
  // Before every request listener: a request on a revoked connection never reaches the application.
  gateRequests(server, connections);
  server.on('tlsClientError', (err: Error & { code?: string }, socket: TLSSocket) => {
    const remoteAddress = socket?.remoteAddress;
    const refusal = handshakeRefusal(err, socket, remoteAddress);
    if (refusal === undefined) {
      logger.debug({ code: err.code, remoteAddress }, 'meshless server: a client went away during the TLS handshake');
      return;
    }
    reporter.report(refusal);
  });

  /**
   * Re-checks live connections after a trust or policy change: each peer goes through the
   * verifier again (chain against the current bundle of its trust domain, with the path verified
   * at accept time; validity; allow-list). Sliced across event-loop turns by the registry (a
   * connection not reached yet is re-checked before its next request). Connections sharing a
   * peer certificate share one verdict: one verify per distinct certificate, O(1) per connection.
   */
  function review(): void {
    const credential = source.current();
    const policy = authorize;
    const verdicts = new Map<Peer, { intermediates: readonly X509Certificate[]; check: PeerCheck }>();
    let retired = 0;
    const recheck = (connection: LiveConnection): ReviewVerdict => {
      if (connection.leaf === undefined) {
        retired++;
        return { reason: 'trust-changed', detail: `${String(connection.peer)}: the connection has no client certificate to re-verify` };
      }
      const intermediates = verifiedPaths.get(connection.socket) ?? NO_INTERMEDIATES;
      const seen = verdicts.get(connection.peer);
      // A passing verdict holds for every connection of this certificate (the verifier's cache is
      // per certificate); a failing one only for the same presented path.
      let check = seen !== undefined && (seen.check.ok || seen.intermediates === intermediates) ? seen.check : undefined;
      if (check === undefined) {
        check = verifyPeer({ leaf: connection.leaf, peer: connection.peer, intermediates }, { credential, authorize: policy, who: 'client' });
        verdicts.set(connection.peer, { intermediates, check });
      }
      if (check.ok) {
        connection.bundleHash = credential.bundleHash;
        return undefined;
      }
      retired++;
      if (check.failure === 'denied') return { reason: 'policy-changed', detail: check.reason };
      return { reason: 'trust-changed', detail: `${String(connection.peer)} no longer verifies under credential generation ${credential.generation}: ${check.reason}` };
    };
    connections.review(recheck, (stats) => {
      verdicts.clear();
      const report = { side: 'server', generation: credential.generation, connections: stats.visited, retired, slices: stats.slices, maxSliceMs: stats.maxSliceMs, maxSliceCpuMs: stats.maxSliceCpuMs, busyMs: stats.busyMs, durationMs: stats.durationMs, superseded: stats.superseded };
      logger.info(report, 'meshless server: live connections reviewed after a trust or policy change');
      if (channels.connectionsReviewed.hasSubscribers) channels.connectionsReviewed.publish(report);
    });
  }

  function rotate(credential: Credential): void {
    const trustChanged = credential.bundleHash !== served.bundleHash;
    const leafChanged = credential.leaf.fingerprint256 !== served.leaf.fingerprint256;
    // Fresh ticket keys whenever trust or our own identity changes: a ticket issued under the old
    // trust cannot resume, and a client cannot resume a session of our previous certificate
    // (on resumption it sees no certificate and would report the identity it cached).
    const keys = trustChanged || leafChanged ? randomBytes(48) : ticketKeys;
    try {
      server.setSecureContext(secureOptionsFor(credential, parsed, keys));
    } catch (err) {
      logger.error(
        { generation: credential.generation, code: (err as { code?: string }).code, error: (err as Error).message },
        `meshless server: could not apply credential generation ${credential.generation}; still serving generation ${served.generation}`,
      );
      return;
    }
    ticketKeys = keys;
    served = credential;
    logger.info(
      { generation: credential.generation, identity: String(credential.identity), serialNumber: credential.identity.serialNumber, trustChanged },
      `meshless server: serving credential generation ${credential.generation}`,
    );
    if (trustChanged) review();
  }

  const onUpdate = (credential: Credential): void => rotate(credential);
  const onError = (error: MeshlessError): void => {
    logger.debug({ code: error.code, file: error.file }, `meshless server: credential reload failed; still serving generation ${served.generation}`);
  };
  source.on('update', onUpdate);
  source.on('error', onError);
  // A live policy (policyFile) retires the connections of peers it no longer allows, as setAllow does.
  let stopPolicyChanges = onPolicyChange([parsed.allow, parsed.deny as Rules | undefined], () => review());
  const permissive = new PermissiveListener(server, logger, metrics, parsed.handshakeTimeoutMs);
  permissive.setMode(parsed.mode);
  server.once('close', () => {
    connections.close();
    stopPolicyChanges();
    source.off('update', onUpdate);
    source.off('error', onError);
  });

  Object.defineProperty(server, 'source', { value: source, enumerable: true });
  Object.defineProperty(server, 'mode', { get: () => permissive.mode, enumerable: true });
  Object.defineProperty(server, 'setMode', { value: (mode: ServerMode) => permissive.setMode(parseMode(mode)) });
  Object.defineProperty(server, 'setAllow', {
    value(allow: Rules, opts: { deny?: DenyRules; dryRun?: boolean } = {}): void {
      // The deny rules and a dry run stay as they are until setAllow says otherwise (`deny: []`
      // drops every deny rule): replacing the allow-list never silently widens who is refused.
      const nextDeny = opts.deny === undefined ? deny : opts.deny;
      const nextDryRun = opts.dryRun ?? dryRun;
      authorize = policyOf(allow, nextDeny, nextDryRun);
      deny = nextDeny;
      dryRun = nextDryRun;
      stopPolicyChanges();
      stopPolicyChanges = onPolicyChange([allow, deny as Rules | undefined], () => review());
      logger.info({ rules: authorize.rules }, 'meshless server: allow-list replaced');
      review();
    },
  });
  return server;
}
