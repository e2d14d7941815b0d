import { SetMetadata } from '@nestjs/common';
import { allowList, type DenyRules, type Rules } from '@meshless/core';
import { REQUIRE_PEER } from './tokens.js';

/** Options of {@link RequirePeer}. */
export interface RequirePeerOptions {
  /** Peers refused even when an allow rule matches. */
  deny?: DenyRules;
  /**
   * Dry run: a verified caller the rules would refuse goes on, and the would-be refusal is logged,
   * counted (`meshless.policy.would_deny`, scope `route`) and published. A caller without a
   * verified peer is still refused.
   */
  dryRun?: boolean;
}

/** What `@RequirePeer` stores on a handler or controller; `MeshlessGuard` compiles it once. */
export interface PeerRequirement {
  readonly rules: Rules;
  readonly deny?: DenyRules;
  readonly dryRun?: boolean;
}

/**
 * Per-handler (or per-controller) allow-list on top of the server-wide one, enforced by
 * `MeshlessGuard` — for HTTP controllers (Express and Fastify platforms) and gRPC handlers
 * (`@GrpcMethod`). A rule on the handler replaces the controller's. An invalid rule fails when
 * the class is defined, naming the rule.
 *
 * HTTP refusals: `403 {"error":"forbidden","code":"MESHLESS_ERR_PEER_DENIED"}` or
 * `401 {"error":"unauthorized","code":"MESHLESS_ERR_PEER_UNVERIFIED"}`; gRPC: `PERMISSION_DENIED`
 * or `UNAUTHENTICATED`.
 */
export function RequirePeer(rules: Rules, options: RequirePeerOptions = {}): MethodDecorator & ClassDecorator {
  allowList(rules, options.deny === undefined ? {} : { deny: options.deny }); // fail at definition, not on the first request
  const requirement: PeerRequirement = Object.freeze({
    rules,
    ...(options.deny === undefined ? {} : { deny: options.deny }),
    ...(options.dryRun === true ? { dryRun: true } : {}),
  });
  return SetMetadata(REQUIRE_PEER, requirement);
}
