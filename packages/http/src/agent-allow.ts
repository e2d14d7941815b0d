import { BoundedMap } from '@meshless/core/internal';
import { MeshlessError, type DryRunOptions, allowList, codes, isMeshlessError, type Authorizer, type DenyRules, type Rules } from '@meshless/core';
import { compileRules, isAuthorizer, optionError } from '@meshless/core/internal';

/**
 * Which servers a client accepts:
 * - rules (`'spiffe://prod.example/ns/pay/sa/api'`, a list, or a compiled `allowList(…)`) for
 *   every origin;
 * - a map from origin to rules: `{ 'https://payments.internal:8443': ['spiffe://prod.example/ns/pay/sa/api'] }`
 *   (requests to origins not listed are refused before any connection is made);
 * - a function `(origin) => rules`, called once per origin and cached until the policy changes.
 *
 * A bare function is read as the per-origin resolver. To pass a custom rule function
 * `(peer) => boolean`, put it in a list (`allow: [fn]`) or compile it (`allowList(fn)`).
 */
export type AllowFor = Rules | Readonly<Record<string, Rules>> | ((origin: string) => Rules);

/** The compiled `allow` option: one Authorizer per origin, built once. */
export interface ServerPolicy {
  /** 1 for the agent's first policy, +1 at every `setAllow`. */
  readonly version: number;
  /**
   * The Authorizer for an origin (`https://host[:port]`, as `new URL(…).origin` writes it).
   * Throws a MeshlessError when no rules apply to the origin.
   */
  authorizerFor(origin: string): Authorizer;
}

const MAX_RESOLVED_ORIGINS = 1024;

/** `https://host[:port]` for a map key or a URL; throws INVALID_OPTION for anything else. */
export function normalizeOrigin(input: string | URL): string {
  let url: URL;
  try {
    url = new URL(String(input));
  } catch {
    throw new MeshlessError(codes.INVALID_OPTION, `allow: ${JSON.stringify(String(input))} is not an origin; write it as 'https://host[:port]'`, { field: 'allow' });
  }
  if (url.protocol !== 'https:') {
    throw new MeshlessError(codes.INVALID_OPTION, `allow: ${JSON.stringify(String(input))} is not an https origin; a meshless agent only speaks TLS`, { field: 'allow' });
  }
  if (url.username || url.password || url.search || url.hash || (url.pathname !== '/' && url.pathname !== '')) {
    throw new MeshlessError(codes.INVALID_OPTION, `allow: ${JSON.stringify(String(input))} has more than an origin; write only 'https://host[:port]' (no path, query or user)`, { field: 'allow' });
  }
  return url.origin;
}

function isRules(value: unknown): value is Rules {
  return typeof value === 'string' || Array.isArray(value) || isAuthorizer(value);
}

function isOriginMap(value: unknown): value is Readonly<Record<string, Rules>> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/** The rules of one origin with the deny rules (the same for every origin) and the dry run. */
interface Compile {
  readonly deny: DenyRules | undefined;
  readonly dryRun: DryRunOptions | undefined;
}

function compileFor(origin: string, rules: Rules, how: Compile): Authorizer {
  return compileRules('createAgent', 'allow', () => allowList(rules, { ...(how.deny === undefined ? {} : { deny: how.deny }), ...(how.dryRun === undefined ? {} : { dryRun: how.dryRun }) }), ` for ${origin}`);
}

function noRules(origin: string, known: string): MeshlessError {
  return new MeshlessError(
    codes.INVALID_OPTION,
    `no allow rules for ${origin}: the request was refused before connecting. ${known}`,
    { field: 'allow' },
  );
}

/** The rules an `allow` option holds directly (a resolver's are known only per origin): for live-policy subscriptions. */
export function rulesIn(allow: AllowFor): Rules[] {
  if (isRules(allow)) return [allow];
  if (typeof allow !== 'function' && isOriginMap(allow)) return Object.values(allow);
  return [];
}

/**
 * Compiles the `allow` option once. Rules and maps are checked at once (a bad rule throws here);
 * a resolver function is called on the first connection to each origin.
 */
export function compileAllow(allow: AllowFor, version: number, deny?: DenyRules, dryRun?: DryRunOptions): ServerPolicy {
  if (allow === undefined || allow === null) {
    throw optionError('createAgent', 'allow', "needs { allow }: the rules that say which servers to accept, e.g. 'spiffe://prod.example/ns/pay/sa/api'");
  }
  // Deny rules apply to every origin: checked once here, whatever shape allow has.
  if (deny !== undefined) compileRules('createAgent', 'deny', () => allowList('*', { deny }));
  const how: Compile = { deny, dryRun };
  if (isRules(allow)) {
    const authorizer = compileFor('every origin', allow, how);
    return { version, authorizerFor: () => authorizer };
  }
  if (typeof allow === 'function') return resolverPolicy(allow as (origin: string) => Rules, version, how);
  if (isOriginMap(allow)) return mapPolicy(allow, version, how);
  throw new MeshlessError(codes.INVALID_OPTION, `allow must be rules, a map { 'https://host:port': rules } or a function (origin) => rules, not ${typeof allow}`, { field: 'allow' });
}

function mapPolicy(map: Readonly<Record<string, Rules>>, version: number, how: Compile): ServerPolicy {
  const byOrigin = new Map<string, Authorizer>();
  for (const [key, rules] of Object.entries(map)) {
    const origin = normalizeOrigin(key);
    if (byOrigin.has(origin)) {
      throw new MeshlessError(codes.INVALID_OPTION, `allow lists ${origin} twice (as ${JSON.stringify(key)}); keep one entry per origin`, { field: 'allow' });
    }
    byOrigin.set(origin, compileFor(origin, rules, how));
  }
  if (byOrigin.size === 0) {
    throw new MeshlessError(codes.EMPTY_ALLOW_LIST, 'allow is an empty map: no server would be accepted; list origins and their rules', { field: 'allow' });
  }
  const known = `createAgent({ allow }) lists ${[...byOrigin.keys()].join(', ')}; add this origin with its rules.`;
  return {
    version,
    authorizerFor(origin) {
      const authorizer = byOrigin.get(origin);
      if (authorizer === undefined) throw noRules(origin, known);
      return authorizer;
    },
  };
}

function resolverPolicy(resolve: (origin: string) => Rules, version: number, how: Compile): ServerPolicy {
  const byOrigin = new BoundedMap<string, Authorizer>(MAX_RESOLVED_ORIGINS);
  return {
    version,
    authorizerFor(origin) {
      const cached = byOrigin.get(origin);
      if (cached !== undefined) return cached;
      let rules: unknown;
      try {
        rules = resolve(origin);
      } catch (cause) {
        if (isMeshlessError(cause)) throw cause;
        throw new MeshlessError(codes.INVALID_OPTION, `allow(${JSON.stringify(origin)}) threw: ${(cause as Error)?.message ?? String(cause)}`, { field: 'allow', cause });
      }
      if (rules === undefined || rules === null) throw noRules(origin, 'The allow function returned nothing for it.');
      if (typeof rules === 'boolean' || (typeof rules === 'object' && !Array.isArray(rules) && 'allowed' in (rules as object))) {
        throw new MeshlessError(
          codes.INVALID_OPTION,
          `allow is a function, so meshless called it with the origin ${origin}, and it returned a ${typeof rules === 'boolean' ? 'boolean' : 'Decision'}: ` +
            'a bare function in allow maps an origin to rules. To use a custom rule (peer) => boolean, pass allow: [fn] or allowList(fn)',
          { field: 'allow' },
        );
      }
      const authorizer = compileFor(origin, rules as Rules, how);
      byOrigin.set(origin, authorizer);
      return authorizer;
    },
  };
}
