import { dryRunAuthorizer, type DryRunOptions } from './dry-run.js';
import { MeshlessError, codes } from './errors.js';
import type { Peer } from './peer.js';
import { pathProblem, trustDomainProblem } from './spiffe-id.js';

/** The outcome of an authorization: allowed or not, the rule concerned and why. */
export interface Decision {
  readonly allowed: boolean;
  /** The rule that allowed or denied the peer (absent when no rule matched). */
  readonly rule?: string;
  /** A sentence for logs: which rule matched, or that none did. */
  readonly reason: string;
}

/** A custom allow rule: returns true (or a Decision with `allowed: true`) to allow the peer. */
export type RuleFunction = (peer: Peer) => boolean | Decision;
/** A rule is a rule string (see docs/allow-list.md) or a function. */
export type Rule = string | RuleFunction;
/** An Authorizer is a compiled allow-list: it returns a Decision for a peer. */
export type Authorizer = ((peer: Peer) => Decision) & { readonly rules: readonly string[] };
/** Anything accepted where rules are: one rule, a list, or an already compiled Authorizer. */
export type Rules = Rule | readonly Rule[] | Authorizer;

/**
 * A custom deny rule: returns `true` to deny the peer, `false` to leave it to the allow rules.
 * Anything else it returns (a Decision, undefined…) denies the peer: a deny rule fails closed.
 */
export type DenyFunction = (peer: Peer) => boolean;
/**
 * Deny rules: rule strings, deny functions, or an Authorizer (a peer it allows is denied — e.g.
 * `deny: allowList(['spiffe://prod.example/ns/batch/**'])`).
 */
export type DenyRules = string | DenyFunction | Authorizer | readonly (string | DenyFunction | Authorizer)[];

export interface AllowListOptions {
  /** Rules that deny a peer even when an allow rule matches. Deny always wins. */
  deny?: DenyRules;
  /**
   * Dry run: a peer the rules would deny is allowed, and the would-be denial is logged ("dry
   * run: would deny"), counted and published (see `dryRunAuthorizer`). Relaxes policy only: the
   * rules are only ever asked about peers whose certificate chain verified.
   */
  dryRun?: boolean | DryRunOptions;
}

const authorizerBrand = Symbol.for('meshless.Authorizer');

type SpiffePattern = { rule: string; segments: (string | null)[]; rest: boolean };

/** One compiled set of rules (used for both the allow side and the deny side). */
class RuleSet {
  constructor(private readonly side: 'allow' | 'deny') {}
  readonly rules: string[] = [];
  anyPeer: string | undefined;
  readonly exactIds = new Map<string, string>();
  readonly trustDomains = new Map<string, string>();
  /** `**` rules without other wildcards: key `td` + path prefix (`td/ns/pay`). */
  readonly prefixes = new Map<string, string>();
  /** Rules with `*` segments: by trust domain, then by segment count (`**` ones under -1). */
  readonly patterns = new Map<string, Map<number, SpiffePattern[]>>();
  maxPrefixSegments = 0;
  readonly dnsExact = new Map<string, string>();
  readonly dnsWildcard = new Map<string, string>();
  readonly commonNames = new Map<string, string>();
  readonly functions: { fn: RuleFunction | DenyFunction; label: string; authorizer: boolean }[] = [];

  get size(): number {
    return this.rules.length + this.functions.length;
  }

  add(rule: Rule | DenyFunction, index: number): void {
    if (typeof rule === 'function') {
      const label = (rule as Partial<Authorizer>).rules ? `[${(rule as Authorizer).rules.join(', ')}]` : rule.name ? `function ${rule.name}` : `function #${index}`;
      this.functions.push({ fn: rule, label, authorizer: isAuthorizer(rule) });
      return;
    }
    if (typeof rule !== 'string') {
      throw new MeshlessError(codes.INVALID_RULE, `allow-list rule #${index} is a ${typeof rule}: rules are strings or functions`);
    }
    this.rules.push(rule);
    if (rule === '*') {
      this.anyPeer = rule;
    } else if (rule.startsWith('spiffe://')) {
      this.addSpiffe(rule);
    } else if (rule.startsWith('dns:')) {
      this.addDns(rule);
    } else if (rule.startsWith('cn:')) {
      const cn = rule.slice(3);
      if (cn.length === 0) throw invalidRule(rule, 'a cn: rule needs a common name after "cn:"');
      this.commonNames.set(cn, rule);
    } else {
      throw invalidRule(rule, 'a rule starts with "spiffe://", "dns:" or "cn:", or is "*" (any verified peer)');
    }
  }

  private addSpiffe(rule: string): void {
    const rest = rule.slice('spiffe://'.length);
    const slash = rest.indexOf('/');
    const td = slash === -1 ? rest : rest.slice(0, slash);
    if (td === '*' || td.includes('*')) throw invalidRule(rule, 'the trust domain cannot be a wildcard; list each trust domain');
    const tdProblem = trustDomainProblem(td);
    if (tdProblem) throw invalidRule(rule, tdProblem);
    if (slash === -1) {
      throw invalidRule(rule, `a rule names a workload path; for any workload in the trust domain write "spiffe://${td}/**"`);
    }
    const path = rest.slice(slash);
    const segs = path.slice(1).split('/');
    const out: (string | null)[] = [];
    let restWildcard = false;
    let hasStar = false;
    for (let i = 0; i < segs.length; i++) {
      const s = segs[i]!;
      if (s === '') {
        throw invalidRule(rule, i === segs.length - 1 ? 'path must not end with "/"' : 'path must not contain empty segments');
      } else if (s === '**') {
        if (i !== segs.length - 1) throw invalidRule(rule, '"**" may only be the last segment');
        restWildcard = true;
      } else if (s === '*') {
        out.push(null);
        hasStar = true;
      } else if (s.includes('*')) {
        throw invalidRule(rule, `"*" must be a whole segment (found ${JSON.stringify(s)}); use "*" alone or list the IDs`);
      } else {
        const problem = pathProblem('/' + s);
        if (problem) throw invalidRule(rule, problem);
        out.push(s);
      }
    }
    if (!restWildcard && !hasStar) {
      this.exactIds.set(rule, rule);
    } else if (restWildcard && out.length === 0) {
      this.trustDomains.set(td, rule);
    } else if (restWildcard && !hasStar) {
      this.prefixes.set(td + '/' + out.join('/'), rule);
      if (out.length > this.maxPrefixSegments) this.maxPrefixSegments = out.length;
    } else {
      let byTd = this.patterns.get(td);
      if (!byTd) this.patterns.set(td, (byTd = new Map()));
      const key = restWildcard ? -1 : out.length;
      let list = byTd.get(key);
      if (!list) byTd.set(key, (list = []));
      list.push({ rule, segments: out, rest: restWildcard });
    }
  }

  private addDns(rule: string): void {
    const name = rule.slice(4).toLowerCase();
    if (name.length === 0) throw invalidRule(rule, 'a dns: rule needs a host name after "dns:"');
    const labels = name.split('.');
    for (let i = 0; i < labels.length; i++) {
      const l = labels[i]!;
      if (l === '*' && i === 0 && labels.length >= 3) continue;
      if (l === '*') throw invalidRule(rule, '"*" may only be the left-most label of a name with at least two more labels (dns:*.svc.example)');
      if (l.includes('*')) throw invalidRule(rule, '"*" must be a whole label');
      if (!DNS_LABEL.test(l)) throw invalidRule(rule, `${JSON.stringify(l)} is not a valid DNS label`);
    }
    if (labels[0] === '*') this.dnsWildcard.set(labels.slice(1).join('.'), rule);
    else this.dnsExact.set(name, rule);
  }

  /**
   * The first rule (string) or function label matching `peer`, or undefined. A certificate that
   * carries a SPIFFE ID is judged by its SPIFFE ID only: `dns:` and `cn:` rules never match it
   * (as Istio judges principals), so a DNS name or CN cannot stand in for an identity the
   * SPIFFE rules do not allow.
   */
  match(peer: Peer): { rule: string; decision?: Decision } | undefined {
    if (this.anyPeer !== undefined) return { rule: this.anyPeer };
    const id = peer.spiffeId;
    if (id !== undefined && peer.trustDomain !== undefined) {
      const exact = this.exactIds.get(id);
      if (exact !== undefined) return { rule: exact };
      const td = peer.trustDomain;
      const tdRule = this.trustDomains.get(td);
      if (tdRule !== undefined) return { rule: tdRule };
      if (this.prefixes.size > 0 || this.patterns.size > 0) {
        const segs = id.slice('spiffe://'.length + td.length + 1).split('/');
        if (this.prefixes.size > 0) {
          // Try every strict prefix of the path: `**` needs at least one more segment.
          let key = td;
          const upto = Math.min(segs.length - 1, this.maxPrefixSegments);
          for (let i = 0; i < upto; i++) {
            key += '/' + segs[i];
            const r = this.prefixes.get(key);
            if (r !== undefined) return { rule: r };
          }
        }
        const byTd = this.patterns.get(td);
        if (byTd) {
          const sameLength = byTd.get(segs.length);
          if (sameLength) for (const p of sameLength) if (segmentsMatch(p, segs)) return { rule: p.rule };
          const withRest = byTd.get(-1);
          if (withRest) for (const p of withRest) if (segs.length > p.segments.length && segmentsMatch(p, segs)) return { rule: p.rule };
        }
      }
    }
    if (id === undefined && (this.dnsExact.size > 0 || this.dnsWildcard.size > 0)) {
      for (const raw of peer.dnsNames) {
        const name = raw.toLowerCase();
        const exact = this.dnsExact.get(name);
        if (exact !== undefined) return { rule: exact };
        const dot = name.indexOf('.');
        // The certificate's left-most label must itself be a valid DNS label: a SAN such as
        // "x, DNS:a.internal.example" or one holding a NUL never matches a wildcard.
        if (dot > 0 && this.dnsWildcard.size > 0 && DNS_LABEL.test(name.slice(0, dot))) {
          const r = this.dnsWildcard.get(name.slice(dot + 1));
          if (r !== undefined) return { rule: r };
        }
      }
    }
    if (id === undefined && peer.commonName !== undefined && this.commonNames.size > 0) {
      const r = this.commonNames.get(peer.commonName);
      if (r !== undefined) return { rule: r };
    }
    for (const { fn, label, authorizer } of this.functions) {
      const result = fn(peer);
      if (this.side === 'deny' && !authorizer) {
        // A deny function returns true to deny, false to pass; anything else fails closed.
        if (result === false) continue;
        if (result === true) return { rule: label };
        return { rule: `${label} (returned ${describeValue(result)}, not a boolean: denied)` };
      }
      if (result === true) return { rule: label };
      if (typeof result === 'object' && result !== null && result.allowed === true) {
        return { rule: result.rule ?? label, decision: result };
      }
    }
    return undefined;
  }
}

const DNS_LABEL = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/;

function describeValue(value: unknown): string {
  if (value === null || typeof value !== 'object') return String(value);
  return 'allowed' in value ? `a Decision { allowed: ${String((value as Decision).allowed)} }` : 'an object';
}

function segmentsMatch(p: SpiffePattern, segs: string[]): boolean {
  for (let i = 0; i < p.segments.length; i++) {
    const want = p.segments[i];
    if (want !== null && want !== segs[i]) return false;
  }
  return true;
}

function invalidRule(rule: string, why: string): MeshlessError {
  return new MeshlessError(codes.INVALID_RULE, `invalid allow-list rule ${JSON.stringify(rule)}: ${why}`, { rule });
}

function flatten(rules: Rules | DenyRules | undefined): (Rule | DenyFunction)[] {
  if (rules === undefined) return [];
  if (typeof rules === 'string' || typeof rules === 'function') return [rules];
  if (Array.isArray(rules)) return rules as (Rule | DenyFunction)[];
  throw new MeshlessError(codes.INVALID_RULE, `allow-list rules must be a string, a function or an array of them (got ${typeof rules})`);
}

/** True when `value` is an Authorizer built by `allowList`. */
export function isAuthorizer(value: unknown): value is Authorizer {
  return typeof value === 'function' && (value as unknown as Record<symbol, unknown>)[authorizerBrand] === true;
}

/**
 * Compiles allow rules (and optional deny rules) once into an Authorizer. Nothing is allowed
 * by default: an empty list is an error. Lookups are O(1) in the number of exact rules.
 *
 * ```ts
 * const authorize = allowList(['spiffe://prod.example/ns/pay/**'], { deny: ['spiffe://prod.example/ns/pay/sa/batch'] });
 * authorize(peer) // → { allowed: true, rule: 'spiffe://prod.example/ns/pay/**', reason: '…' }
 * ```
 */
export function allowList(rules: Rules, options: AllowListOptions = {}): Authorizer {
  if (options.dryRun) {
    const { dryRun, ...rest } = options;
    return dryRunAuthorizer(allowList(rules, rest), dryRun === true ? {} : dryRun);
  }
  if (isAuthorizer(rules) && options.deny === undefined) return rules;
  const allow = new RuleSet('allow');
  flatten(rules).forEach((r, i) => allow.add(r, i));
  if (allow.size === 0) {
    throw new MeshlessError(codes.EMPTY_ALLOW_LIST, 'the allow-list is empty: nothing would be allowed. List the peers to allow, or write "*" to allow any peer whose certificate verifies');
  }
  const deny = new RuleSet('deny');
  flatten(options.deny).forEach((r, i) => deny.add(r, i));
  const hasDeny = deny.size > 0;

  const decide = (peer: Peer): Decision => {
    if (hasDeny) {
      const denied = deny.match(peer);
      if (denied !== undefined) {
        return Object.freeze({ allowed: false, rule: denied.rule, reason: `${String(peer)} is denied by rule ${JSON.stringify(denied.rule)}` });
      }
    }
    const allowed = allow.match(peer);
    if (allowed === undefined) {
      return Object.freeze({ allowed: false, reason: `${String(peer)} matches no allow rule` });
    }
    return allowed.decision ?? Object.freeze({ allowed: true, rule: allowed.rule, reason: `${String(peer)} is allowed by rule ${JSON.stringify(allowed.rule)}` });
  };
  // String rules are pure functions of the (frozen) Peer: decide once per Peer. Peers are cached
  // per connection, so a per-request check is one WeakMap lookup. Custom functions may depend on
  // more than the Peer (time, feature flags…), so with any of them every call decides afresh.
  const pure = allow.functions.length === 0 && deny.functions.length === 0;
  const decided = new WeakMap<Peer, Decision>();
  const authorize = pure
    ? (peer: Peer): Decision => {
        let decision = decided.get(peer);
        if (decision === undefined) {
          decision = decide(peer);
          if (Object.isFrozen(peer)) decided.set(peer, decision);
        }
        return decision;
      }
    : decide;
  Object.defineProperty(authorize, 'rules', { value: Object.freeze([...allow.rules]), enumerable: true });
  Object.defineProperty(authorize, authorizerBrand, { value: true });
  return authorize as Authorizer;
}
