import { allowList, channels, codes, loggerOf, meshlessMetrics, type DenyRules, type Logger, type Peer, type Rules } from '@meshless/core';
import { peerOf, type PeerTarget } from './peer-of.js';

/** Options of {@link routePolicy} (and of every framework's `requirePeer`). */
export interface RoutePolicyOptions {
  /** Rules that refuse a peer even when an allow rule matches. */
  deny?: DenyRules;
  /** pino-compatible logger for refusals (default: meshless's shared logger). */
  logger?: Logger;
  /**
   * Dry run: a verified peer the rules would refuse goes on, and the would-be refusal is logged
   * ("dry run: would deny"), counted and published. A request without a verified peer (plaintext,
   * no certificate) is still refused with 401: a dry run relaxes policy, never authentication.
   */
  dryRun?: boolean;
}

/** The JSON body of a route refusal: the same in every framework integration. */
export interface RouteRefusalBody {
  error: 'unauthorized' | 'forbidden';
  code: typeof codes.PEER_UNVERIFIED | typeof codes.PEER_DENIED;
}

/** What a route policy says about one request. */
export type RouteVerdict =
  | { readonly allowed: true; readonly peer: Peer }
  | { readonly allowed: false; readonly status: 401 | 403; readonly body: RouteRefusalBody; readonly peer?: Peer };

/** Where the request came from, for the refusal log (never for the decision). */
export interface RouteContext {
  path?: string | undefined;
  remoteAddress?: string | undefined;
  /** `'grpc'` for calls (logged, and a bounded attribute of the refusal counter); HTTP by default. */
  protocol?: 'grpc' | undefined;
}

/** A compiled per-route policy: give it the request (or its socket), get a verdict. */
export interface RoutePolicy {
  (target: PeerTarget, context?: RouteContext): RouteVerdict;
  /** The same decision for a peer found some other way (a gRPC call's), or none. */
  decide(peer: Peer | undefined, context?: RouteContext): RouteVerdict;
}

const UNAUTHORIZED: RouteRefusalBody = Object.freeze({ error: 'unauthorized', code: codes.PEER_UNVERIFIED });
const FORBIDDEN: RouteRefusalBody = Object.freeze({ error: 'forbidden', code: codes.PEER_DENIED });

function contextOf(target: PeerTarget, context: RouteContext | undefined): RouteContext {
  const request = target as { url?: string; socket?: { remoteAddress?: string } } | null | undefined;
  return {
    path: context?.path ?? request?.url,
    remoteAddress: context?.remoteAddress ?? request?.socket?.remoteAddress,
  };
}

/**
 * The framework-neutral core of every `requirePeer`: rules compiled once; per request, the peer
 * cached on the connection and a decision. A refusal is `401 {"error":"unauthorized","code":
 * "MESHLESS_ERR_PEER_UNVERIFIED"}` (no verified peer) or `403 {"error":"forbidden","code":
 * "MESHLESS_ERR_PEER_DENIED"}`; it is logged (naming the peer and the rule), counted in
 * `meshless.peer.refusals` with `scope: 'route'`, and published on `meshless:peer:refused`. The
 * body never names the policy. Use it to write the two-line middleware of any framework.
 */
export function routePolicy(rules: Rules, options: RoutePolicyOptions = {}): RoutePolicy {
  const logger = loggerOf(options.logger);
  const authorize = allowList(rules, { deny: options.deny, ...(options.dryRun === true ? { dryRun: { scope: 'route', logger } } : {}) });
  const metrics = meshlessMetrics();
  const decide = (peer: Peer | undefined, target: PeerTarget, context: RouteContext | undefined): RouteVerdict => {
    const protocol = context?.protocol;
    if (peer === undefined) {
      const where = contextOf(target, context);
      logger.warn({ failure: 'unverified', path: where.path, remoteAddress: where.remoteAddress, protocol }, 'meshless: refused a request without a verified peer');
      metrics.refusals.add(1, protocol ? { side: 'server', protocol, failure: 'unverified', scope: 'route' } : { side: 'server', failure: 'unverified', scope: 'route' });
      return { allowed: false, status: 401, body: UNAUTHORIZED };
    }
    const decision = authorize(peer);
    if (decision.allowed) return { allowed: true, peer };
    const where = contextOf(target, context);
    logger.warn(
      { failure: 'denied', peer: String(peer), rule: decision.rule, reason: decision.reason, path: where.path, remoteAddress: where.remoteAddress, protocol },
      'meshless: refused a request by route policy',
    );
    metrics.refusals.add(1, protocol ? { side: 'server', protocol, failure: 'denied', scope: 'route' } : { side: 'server', failure: 'denied', scope: 'route' });
    if (channels.peerRefused.hasSubscribers) {
      channels.peerRefused.publish({ side: 'server', peer, decision, failure: 'denied', reason: decision.reason, remoteAddress: where.remoteAddress, path: where.path, ...(protocol ? { protocol } : {}) });
    }
    return { allowed: false, status: 403, body: FORBIDDEN, peer };
  };
  const policy = ((target: PeerTarget, context?: RouteContext) => decide(peerOf(target), target, context)) as RoutePolicy;
  policy.decide = (peer, context) => decide(peer, undefined, context);
  return policy;
}
