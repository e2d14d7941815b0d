/**
 * @meshless/http/express — Express (or any connect-style) middleware: `mtls()` sets `req.peer`,
 * `requirePeer(rules)` refuses requests from peers a route does not allow.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { allowList, channels, codes, loggerOf, meshlessMetrics, type Logger, type Peer, type Rules, type DenyRules } from '@meshless/core';
import { peerOf } from './peer-of.js';

export { healthHandler, type HealthBody } from './health.js';
export { peerOf } from './peer-of.js';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** The verified peer of the connection (set by `mtls()` or `requirePeer()`). */
      peer?: Peer;
    }
  }
}

/** A request that may carry its peer. */
export type PeerRequest = IncomingMessage & { peer?: Peer };
/** A connect-style middleware (Express, Connect, or a plain `http` handler chain). */
export type Middleware = (req: PeerRequest, res: ServerResponse, next: (err?: unknown) => void) => void;

/**
 * Sets `req.peer` to the verified peer of the connection (O(1): the Peer cached on the socket).
 * Never refuses a request: with no verified peer, `req.peer` stays undefined. Use behind
 * `createServer` (every connection was already checked) or any https server whose options come
 * from `serverTlsOptions` (there the peer is computed once per socket from a verified chain).
 */
export function mtls(): Middleware {
  return (req, _res, next) => {
    const peer = peerOf(req);
    if (peer !== undefined) req.peer = peer;
    next();
  };
}

export interface RequirePeerOptions {
  /** Rules that refuse a peer even when an allow rule matches. */
  deny?: DenyRules;
  /** pino-compatible logger for refusals (default: meshless's shared logger). */
  logger?: Logger;
}

/**
 * Per-route policy on top of the server-wide allow-list: the request goes on only when its peer
 * passes `rules`. Otherwise answers `403 {"error":"forbidden","code":"MESHLESS_ERR_PEER_DENIED"}`,
 * or `401 {"error":"unauthorized","code":"MESHLESS_ERR_PEER_UNVERIFIED"}` when the connection has
 * no verified peer. The body never names the policy; the log does. Rules are compiled once.
 */
export function requirePeer(rules: Rules, options: RequirePeerOptions = {}): Middleware {
  const authorize = allowList(rules, { deny: options.deny });
  const logger = loggerOf(options.logger);
  const metrics = meshlessMetrics();
  return (req, res, next) => {
    const peer = req.peer ?? peerOf(req);
    if (peer === undefined) {
      refuse(req, res, 401, 'unauthorized', codes.PEER_UNVERIFIED);
      logger.warn({ failure: 'unverified', path: req.url, remoteAddress: req.socket?.remoteAddress }, 'meshless: refused a request without a verified peer');
      metrics.refusals.add(1, { side: 'server', failure: 'unverified', scope: 'route' });
      return;
    }
    req.peer = peer;
    const decision = authorize(peer);
    if (decision.allowed) {
      next();
      return;
    }
    refuse(req, res, 403, 'forbidden', codes.PEER_DENIED);
    logger.warn(
      { failure: 'denied', peer: String(peer), rule: decision.rule, reason: decision.reason, path: req.url, remoteAddress: req.socket?.remoteAddress },
      'meshless: refused a request by route policy',
    );
    metrics.refusals.add(1, { side: 'server', failure: 'denied', scope: 'route' });
    if (channels.peerRefused.hasSubscribers) {
      channels.peerRefused.publish({ side: 'server', peer, decision, failure: 'denied', reason: decision.reason, remoteAddress: req.socket?.remoteAddress, path: req.url });
    }
  };
}

function refuse(req: IncomingMessage, res: ServerResponse, status: number, error: string, code: string): void {
  const text = JSON.stringify({ error, code });
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.end(req.method === 'HEAD' ? undefined : text);
}
