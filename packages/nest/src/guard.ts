import { HttpException, Inject, Injectable, Optional, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { Logger } from '@meshless/core';
import { routePolicy, type RoutePolicy, type RouteVerdict } from '@meshless/http';
import { grpcCallOf, loadGrpcPeerOf } from './peer-of-context.js';
import type { PeerRequirement } from './require-peer.js';
import { MESHLESS_OPTIONS, REQUIRE_PEER } from './tokens.js';

/** gRPC status codes the guard answers with (numbers of the gRPC spec). */
const GRPC_UNAUTHENTICATED = 16;
const GRPC_PERMISSION_DENIED = 7;

/** What the guard reads from the module options. */
export interface MeshlessGuardOptions {
  /** pino-compatible logger for refusals (default: meshless's shared logger). */
  logger?: Logger;
}

/**
 * Enforces `@RequirePeer(rules)` on HTTP controllers (Express and Fastify platforms) and gRPC
 * handlers. Handlers without `@RequirePeer` pass (the server-wide `allow` of `createServer` /
 * `serverCredentials` already admitted the caller). `MeshlessModule.forRoot` registers it for
 * the whole application; or `@UseGuards(MeshlessGuard)` / `app.useGlobalGuards(new MeshlessGuard())`.
 */
@Injectable()
export class MeshlessGuard implements CanActivate {
  readonly #logger: Logger | undefined;
  readonly #policies = new WeakMap<PeerRequirement, RoutePolicy>();

  constructor(@Optional() @Inject(MESHLESS_OPTIONS) options?: MeshlessGuardOptions) {
    this.#logger = options?.logger;
  }

  canActivate(context: ExecutionContext): boolean | Promise<boolean> {
    const requirement = (Reflect.getMetadata(REQUIRE_PEER, context.getHandler()) ?? Reflect.getMetadata(REQUIRE_PEER, context.getClass())) as PeerRequirement | undefined;
    if (requirement === undefined) return true;
    const policy = this.#policy(requirement);
    const type = context.getType<string>();
    if (type === 'http') {
      const request = context.switchToHttp().getRequest<{ raw?: unknown; url?: string; originalUrl?: string }>();
      const verdict = policy((request.raw ?? request) as Parameters<RoutePolicy>[0], { path: request.originalUrl ?? request.url });
      if (verdict.allowed) return true;
      throw new HttpException(verdict.body, verdict.status);
    }
    if (type === 'rpc') return this.#rpc(context, policy);
    // Other transports (WebSockets…) carry no verified peer here: fail closed.
    const verdict = policy.decide(undefined, {});
    throw new HttpException(verdict.allowed ? {} : verdict.body, 401);
  }

  async #rpc(context: ExecutionContext, policy: RoutePolicy): Promise<boolean> {
    const call = grpcCallOf(context);
    const peerOf = call === undefined ? undefined : await loadGrpcPeerOf();
    const peer = call === undefined || peerOf === undefined ? undefined : peerOf(call);
    const path = call?.getPath?.();
    const verdict: RouteVerdict = policy.decide(peer, { path, protocol: 'grpc', remoteAddress: call?.getPeer?.() });
    if (verdict.allowed) return true;
    const { RpcException } = await import('@nestjs/microservices');
    const message =
      verdict.status === 401 ? `meshless: ${path ?? 'this method'} needs a verified client certificate` : `meshless: ${String(peer)} is not allowed to call ${path ?? 'this method'}`;
    throw new RpcException({ code: verdict.status === 401 ? GRPC_UNAUTHENTICATED : GRPC_PERMISSION_DENIED, message, details: message });
  }

  #policy(requirement: PeerRequirement): RoutePolicy {
    let policy = this.#policies.get(requirement);
    if (policy === undefined) {
      policy = routePolicy(requirement.rules, {
        ...(requirement.deny === undefined ? {} : { deny: requirement.deny }),
        ...(requirement.dryRun === true ? { dryRun: true } : {}),
        ...(this.#logger === undefined ? {} : { logger: this.#logger }),
      });
      this.#policies.set(requirement, policy);
    }
    return policy;
  }
}
