import { EventEmitter } from 'node:events';
import { X509Certificate } from 'node:crypto';
import type { SecureVersion } from 'node:tls';
import { allowList, type Authorizer, type DenyRules, type Rules } from './allow-list.js';
import type { Credential } from './credential.js';
import type { DryRunOptions } from './dry-run.js';
import { MeshlessError, codes, isMeshlessError } from './errors.js';
import { loggerOf, type Logger } from './logger.js';
import { meshlessMetrics, type MeshlessMetrics } from './metrics.js';
import { healthStateOf, isSource, staticSource, type Health, type Source, type SourceEvents } from './source.js';
import type { ServerTlsPolicy } from './tls-options.js';

/**
 * The one option resolver of the four wrappers (`createServer`, `createAgent`, `serverCredentials`,
 * `channelCredentials`): `source`, `allow`, `deny`, `dryRun`, the TLS policy and `logger` are read
 * with the same rules and refused with the same coded errors (`MESHLESS_ERR_INVALID_OPTION` naming
 * the wrapper and the field; rule errors keep their own code, `INVALID_RULE` or
 * `EMPTY_ALLOW_LIST`, and gain the wrapper and the field). docs/options.md documents them once.
 */

/** The wrappers that take the common options. */
export type WrapperName = 'createServer' | 'createAgent' | 'serverCredentials' | 'channelCredentials';

/** The TLS policy fields a wrapper may take. */
export type TlsPolicyField = 'minVersion' | 'maxVersion' | 'ciphers' | 'ecdhCurve' | 'sessionTimeout';

/** What a wrapper takes besides the common options. */
export interface WrapperSpec {
  readonly wrapper: WrapperName;
  /** Who `allow` admits, for messages: `clients` (servers) or `servers` (clients). */
  readonly peers: 'clients' | 'servers';
  /** `dryRun`'s scope (a metric attribute): `server`, `client`, `grpc-server`, `grpc-client`. */
  readonly scope: string;
  /** The TLS policy fields the wrapper applies; any other is refused with `tlsRefusal`. */
  readonly tls: readonly TlsPolicyField[];
  /** Why the wrapper takes no TLS policy field outside `tls` (default: it is unknown). */
  readonly tlsRefusal?: string;
  /** Every other option name the wrapper takes: its own and those it passes to the library under it. */
  readonly names: ReadonlySet<string>;
  /** Option names the wrapper refuses, each with the reason (meshless owns what they set). */
  readonly refused?: Readonly<Record<string, string>>;
}

/** The common options, resolved. */
export interface ResolvedOptions<Allow = Rules> {
  /** `source` as a Source (a Credential becomes a `staticSource`). */
  readonly source: Source;
  /** `allow` as given, present (the wrapper compiles it: {@link compilePolicy}, or createAgent's per-origin shapes). */
  readonly allow: Allow;
  /** `deny` as given (checked: its rules compile). */
  readonly deny: DenyRules | undefined;
  readonly dryRun: boolean;
  /** `dryRun`'s options for `allowList` (scope and logger), when `dryRun` is on. */
  readonly dryRunOptions: DryRunOptions | undefined;
  /** The TLS policy fields given, checked (the defaults stay core's: TLS 1.3 minimum). */
  readonly tlsPolicy: Omit<ServerTlsPolicy, 'ticketKeys'>;
  /** The logger given, else meshless's shared one. */
  readonly logger: Logger;
  /** meshless's OpenTelemetry instruments (no-ops until the application installs a provider). */
  readonly metrics: MeshlessMetrics;
  /** Every other option given (the wrapper's own and pass-through ones), names checked. */
  readonly rest: Readonly<Record<string, unknown>>;
}

const COMMON = new Set(['source', 'allow', 'deny', 'dryRun', 'logger']);
const TLS_FIELDS: readonly TlsPolicyField[] = ['minVersion', 'maxVersion', 'ciphers', 'ecdhCurve', 'sessionTimeout'];
const LOGGER_METHODS = ['error', 'warn', 'info', 'debug'] as const;
const VERSIONS: readonly SecureVersion[] = ['TLSv1.2', 'TLSv1.3'];

/** `MESHLESS_ERR_INVALID_OPTION` for one field of one wrapper: "wrapper: text". */
export function optionError(wrapper: string, field: string, text: string, cause?: unknown): MeshlessError {
  return new MeshlessError(codes.INVALID_OPTION, `${wrapper}: ${text}`, cause === undefined ? { field } : { field, cause });
}

function shown(value: unknown): string {
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'object' && value !== null) return Array.isArray(value) ? 'an array' : 'an object';
  if (typeof value === 'bigint') return `${value}n`;
  return JSON.stringify(value) ?? String(value);
}

/**
 * Reads the common options of one wrapper and checks every option name. Throws a MeshlessError
 * naming the wrapper and the field; nothing is started before it returns.
 */
export function resolveOptions<Allow = Rules>(options: unknown, spec: WrapperSpec): ResolvedOptions<Allow> {
  const { wrapper } = spec;
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw optionError(wrapper, 'options', `needs an options object { source, allow }, got ${shown(options)}`);
  }
  const given = options as Record<string, unknown>;
  const rest: Record<string, unknown> = {};
  for (const name of Object.keys(given)) {
    const value = given[name];
    if (COMMON.has(name)) continue;
    if ((TLS_FIELDS as readonly string[]).includes(name)) {
      if (!spec.tls.includes(name as TlsPolicyField) && value !== undefined) {
        throw optionError(wrapper, name, `option \`${name}\` is not accepted: ${spec.tlsRefusal ?? `${wrapper} takes ${spec.tls.join(', ')}`}`);
      }
      continue;
    }
    if (spec.refused !== undefined && Object.hasOwn(spec.refused, name)) {
      if (value !== undefined) throw optionError(wrapper, name, `option \`${name}\` is not accepted: ${spec.refused[name]}`);
      continue;
    }
    if (!spec.names.has(name)) throw optionError(wrapper, name, unknownText(name, spec));
    rest[name] = value;
  }

  const source = resolveSource(wrapper, given.source);
  const allow = given.allow;
  if (allow === undefined || allow === null) {
    throw optionError(
      wrapper,
      'allow',
      `needs { allow }: the rules that say which ${spec.peers} to accept, e.g. 'spiffe://prod.example/ns/pay/sa/api' (write '*' for any ${spec.peers.slice(0, -1)} whose certificate verifies)`,
    );
  }
  const logger = resolveLogger(wrapper, given.logger);
  const dryRun = given.dryRun;
  if (dryRun !== undefined && typeof dryRun !== 'boolean') {
    throw optionError(wrapper, 'dryRun', `dryRun must be true or false, got ${shown(dryRun)}`);
  }
  const deny = given.deny as DenyRules | undefined;
  if (deny !== undefined) compileRules(wrapper, 'deny', () => allowList('*', { deny }));
  return {
    source,
    allow: allow as Allow,
    deny,
    dryRun: dryRun === true,
    dryRunOptions: dryRun === true ? { scope: spec.scope, logger } : undefined,
    tlsPolicy: resolveTlsPolicy(wrapper, given),
    logger,
    metrics: meshlessMetrics(),
    rest,
  };
}

/**
 * `allowList(allow, { deny, dryRun })` with the wrapper's errors: a rule that does not compile
 * keeps its code (INVALID_RULE, EMPTY_ALLOW_LIST) and gains the wrapper and the field.
 */
export function compilePolicy(wrapper: string, allow: Rules, deny: DenyRules | undefined, dryRun: DryRunOptions | undefined): Authorizer {
  if (deny !== undefined) compileRules(wrapper, 'deny', () => allowList('*', { deny }));
  return compileRules(wrapper, 'allow', () => allowList(allow, { ...(deny === undefined ? {} : { deny }), ...(dryRun === undefined ? {} : { dryRun }) }));
}

/** Runs a rule compilation; its MeshlessError is re-thrown naming the wrapper and the field (`allow`, `deny`). */
export function compileRules<T>(wrapper: string, field: 'allow' | 'deny', compile: () => T, where = ''): T {
  try {
    return compile();
  } catch (err) {
    if (!isMeshlessError(err)) throw err;
    const details: { cause: unknown; field: string; rule?: string } = { cause: err, field };
    if (err.rule !== undefined) details.rule = err.rule;
    throw new MeshlessError(err.code, `${wrapper}: ${field}${where}: ${err.message}`, details);
  }
}

function unknownText(name: string, spec: WrapperSpec): string {
  const candidates = [...COMMON, ...spec.tls, ...spec.names];
  const near = candidates.filter((c) => c.toLowerCase() === name.toLowerCase() || distance(c.toLowerCase(), name.toLowerCase()) <= 2);
  const hint = near.length > 0 ? `; did you mean \`${near[0]}\`?` : '';
  return `unknown option \`${name}\`${hint} (docs/options.md lists the options)`;
}

/** Levenshtein distance, for "did you mean" (option names are short). */
function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next.push(Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)));
    }
    row = next;
  }
  return row[b.length]!;
}

function isCredential(value: object): value is Credential {
  const c = value as Partial<Credential>;
  return c.leaf instanceof X509Certificate && typeof c.certPem === 'string' && typeof c.contentHash === 'string' && typeof c.generation === 'number';
}

function resolveSource(wrapper: string, value: unknown): Source {
  if (value === undefined || value === null) {
    throw optionError(wrapper, 'source', 'needs { source }: a Source (fileSource, staticSource, workloadApiSource) or a Credential (loadCredential)');
  }
  if (isSource(value)) {
    const events = value as Partial<Source>;
    return typeof events.on === 'function' && typeof events.off === 'function' ? value : new CurrentOnlySource(value);
  }
  if (typeof value === 'object' && isCredential(value)) return staticSource(value);
  const pem = typeof value === 'object' && ('cert' in value || 'key' in value);
  throw optionError(
    wrapper,
    'source',
    `source must be a Source (fileSource, staticSource, workloadApiSource) or a Credential, got ${shown(value)}` +
      (pem ? ': PEM material is loaded and validated first, source: loadCredential({ cert, key, ca })' : ''),
  );
}

/**
 * An object with only `current()` (the one method every wrapper reads) as a Source: it never
 * emits, so a wrapper serves whatever `current()` returns when it builds (the way to rotate is a
 * real Source, which emits `update`).
 */
class CurrentOnlySource extends EventEmitter<SourceEvents> implements Source {
  readonly #inner: { current(): Credential };
  readonly #since = new Date();
  constructor(inner: { current(): Credential }) {
    super();
    this.#inner = inner;
  }
  current(): Credential {
    return this.#inner.current();
  }
  health(): Health {
    const credential = this.current();
    return { state: healthStateOf(credential, Date.now(), 2 / 3), notAfter: credential.notAfter, generation: credential.generation, lastReloadAt: this.#since };
  }
  reload(): Promise<Credential> {
    return Promise.resolve(this.current());
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

function resolveLogger(wrapper: string, value: unknown): Logger {
  if (value === undefined) return loggerOf(undefined);
  if (typeof value !== 'object' || value === null) {
    throw optionError(wrapper, 'logger', `logger must be a pino-compatible logger (an object with error, warn, info and debug methods), got ${shown(value)}`);
  }
  const missing = LOGGER_METHODS.filter((m) => typeof (value as Record<string, unknown>)[m] !== 'function');
  if (missing.length > 0) {
    throw optionError(wrapper, 'logger', `logger must be a pino-compatible logger: it has no ${missing.join(', ')} method${missing.length > 1 ? 's' : ''}`);
  }
  return value as Logger;
}

function resolveTlsPolicy(wrapper: string, given: Record<string, unknown>): Omit<ServerTlsPolicy, 'ticketKeys'> {
  const policy: Omit<ServerTlsPolicy, 'ticketKeys'> = {};
  const { minVersion, maxVersion, ciphers, ecdhCurve, sessionTimeout } = given;
  for (const [field, value] of [['minVersion', minVersion], ['maxVersion', maxVersion]] as const) {
    if (value !== undefined && !VERSIONS.includes(value as SecureVersion)) {
      throw optionError(wrapper, field, `${field} ${shown(value)} is not allowed: use 'TLSv1.3'${field === 'minVersion' ? ' (default)' : ''} or 'TLSv1.2'`);
    }
  }
  if (minVersion !== undefined) policy.minVersion = minVersion as SecureVersion;
  if (maxVersion !== undefined) {
    if ((minVersion ?? 'TLSv1.3') === 'TLSv1.3' && maxVersion === 'TLSv1.2') {
      throw optionError(wrapper, 'maxVersion', "maxVersion 'TLSv1.2' is below minVersion 'TLSv1.3' (the default): no version would be left; set minVersion: 'TLSv1.2' too");
    }
    policy.maxVersion = maxVersion as SecureVersion;
  }
  for (const [field, value] of [['ciphers', ciphers], ['ecdhCurve', ecdhCurve]] as const) {
    if (value !== undefined && (typeof value !== 'string' || value.length === 0)) {
      throw optionError(wrapper, field, `${field} must be a non-empty OpenSSL list string, got ${shown(value)}`);
    }
  }
  if (ciphers !== undefined) policy.ciphers = ciphers as string;
  if (ecdhCurve !== undefined) policy.ecdhCurve = ecdhCurve as string;
  if (sessionTimeout !== undefined) {
    if (typeof sessionTimeout !== 'number' || !Number.isInteger(sessionTimeout) || sessionTimeout < 0 || sessionTimeout > 2 ** 31 - 1) {
      throw optionError(wrapper, 'sessionTimeout', `sessionTimeout must be a whole number of seconds ≥ 0, got ${shown(sessionTimeout)}`);
    }
    policy.sessionTimeout = sessionTimeout;
  }
  return policy;
}
