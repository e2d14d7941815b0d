import type { CredentialProvider, DenyRules, Logger, TlsPolicy } from '@meshless/core';
import { optionError, resolveOptions, type ResolvedOptions, type WrapperSpec } from '@meshless/core/internal';
import type { Agent } from 'undici';
import type { AllowFor } from './agent-allow.js';

/** undici Agent options that meshless owns, and so refuses from the caller. */
const OWNED = ['connect', 'factory', 'socketPath', 'tls', 'clientTtl'] as const;

/** Options of {@link createAgent}: ours, the TLS policy, and undici's Agent options. */
export interface CreateAgentOptions extends Omit<Agent.Options, (typeof OWNED)[number] | 'maxCachedSessions' | 'connectTimeout'>, TlsPolicy {
  /** Our own certificate, key and trust bundle: a Source (rotates) or a Credential. */
  source: CredentialProvider;
  /** Which servers to accept: rules, a map from origin to rules, or `(origin) => rules`. */
  allow: AllowFor;
  /**
   * Servers refused even when an allow rule matches, for every origin (whatever shape `allow`
   * has): `deny: 'spiffe://prod.example/ns/batch/**'`. A denied server is refused before a
   * request is sent (`MESHLESS_ERR_PEER_DENIED`).
   */
  deny?: DenyRules;
  /**
   * Longest life of a connection, in ms from its handshake. At that point the connection takes
   * no new request and closes once idle. Connections also end at their server certificate's
   * `notAfter` and at our own. Default: no age limit.
   */
  maxConnectionAgeMs?: number;
  /** TLS sessions kept for resumption, per credential generation and policy. Default 100; 0 turns resumption off. */
  maxCachedSessions?: number;
  /** Time allowed for TCP connect plus TLS handshake, in ms. Default 10 000. */
  connectTimeout?: number;
  /** pino-compatible logger. Default: meshless's shared logger (level `warn`). */
  logger?: Logger;
  /**
   * Put the verified server Peer in every request's undici `context`, so that
   * `peerOfResponse(res)` answers who served it. This costs one small handler object per
   * request, so it is off by default (then nothing is allocated per request);
   * `agent.peerOf(origin)` and the `peerAllowed` event work either way.
   */
  peerContext?: boolean;
  /**
   * Dry run of `allow`: a server the rules would refuse is accepted, and the would-be refusal is
   * logged ("dry run: would deny"), counted and published. A server whose chain does not verify
   * is still refused: a dry run relaxes policy, never authentication.
   */
  dryRun?: boolean;
  /**
   * `http://` origins this client may still call in plaintext while they migrate
   * (`['http://legacy.ns.svc:8080']`), through the same dispatcher; every such request is counted.
   * Any other `http://` origin is refused with `MESHLESS_ERR_PLAINTEXT_REFUSED`.
   */
  plaintextOrigins?: readonly string[];
}

/** What the connector needs to know from the options, validated. */
export interface ConnectorSettings {
  readonly allowH2: boolean;
  readonly maxConnectionAgeMs: number | undefined;
  readonly maxCachedSessions: number;
  readonly connectTimeout: number;
  readonly autoSelectFamily: boolean | undefined;
  readonly autoSelectFamilyAttemptTimeout: number | undefined;
  /** Wrap each request's handler so that `peerOfResponse` works (the `peerContext` option). */
  readonly peerContext: boolean;
}

const NOT_TAKEN = 'meshless makes every TLS socket itself from { source, allow, minVersion, maxVersion, ciphers, ecdhCurve }';
/** What a hand-written https/undici client sets and meshless owns: refused with the reason, not as unknown names. */
const TLS_BY_HAND = 'meshless verifies every server itself (chain against the bundle of its trust domain, then `allow`) from { source, allow }';
const REFUSED: Record<(typeof OWNED)[number] | 'rejectUnauthorized' | 'checkServerIdentity' | 'ca' | 'cert' | 'key' | 'servername', string> = {
  connect: NOT_TAKEN,
  factory: NOT_TAKEN,
  socketPath: NOT_TAKEN,
  tls: NOT_TAKEN,
  clientTtl: NOT_TAKEN,
  rejectUnauthorized: TLS_BY_HAND,
  checkServerIdentity: TLS_BY_HAND,
  ca: TLS_BY_HAND,
  cert: NOT_TAKEN,
  key: NOT_TAKEN,
  servername: TLS_BY_HAND,
};

/** createAgent's own options, besides the common ones (docs/options.md). */
const OWN_OPTIONS = ['maxConnectionAgeMs', 'maxCachedSessions', 'connectTimeout', 'peerContext', 'plaintextOrigins'] as const;

/** Every undici Agent option createAgent passes through (type-checked against undici's types: a name missing or extra fails the build). */
const UNDICI_OPTIONS = {
  allowH2: true, autoSelectFamily: true, autoSelectFamilyAttemptTimeout: true, bodyTimeout: true, connectionWindowSize: true, connections: true,
  eventSource: true, headersTimeout: true, idleTimeout: true, initialWindowSize: true, interceptors: true, keepAlive: true, keepAliveMaxTimeout: true,
  keepAliveTimeout: true, keepAliveTimeoutThreshold: true, localAddress: true, maxConcurrentStreams: true, maxHeaderSize: true, maxKeepAliveTimeout: true,
  maxOrigins: true, maxRequestsPerClient: true, maxResponseSize: true, pingInterval: true, pipelining: true, requestTimeout: true, socketTimeout: true,
  strictContentLength: true, webSocket: true,
} satisfies Record<Exclude<keyof Agent.Options, (typeof OWNED)[number] | (typeof OWN_OPTIONS)[number]>, true>;

const AGENT_SPEC: WrapperSpec = {
  wrapper: 'createAgent',
  peers: 'servers',
  scope: 'client',
  tls: ['minVersion', 'maxVersion', 'ciphers', 'ecdhCurve'],
  tlsRefusal: 'a client keeps TLS sessions for resumption per `maxCachedSessions`; their lifetime is the server\'s `sessionTimeout`',
  names: new Set([...OWN_OPTIONS, ...Object.keys(UNDICI_OPTIONS)]),
  refused: REFUSED,
};

function nonNegativeInteger(value: unknown, field: string): void {
  if (value !== undefined && (typeof value !== 'number' || !Number.isInteger(value) || value < 0)) {
    throw optionError('createAgent', field, `${field} must be a non-negative integer, not ${JSON.stringify(value)}`);
  }
}

function positiveNumber(value: unknown, field: string): void {
  if (value !== undefined && (typeof value !== 'number' || !Number.isFinite(value) || value <= 0)) {
    throw optionError('createAgent', field, `${field} must be a positive number of milliseconds, not ${JSON.stringify(value)}`);
  }
}

/**
 * Splits createAgent's options into the common ones (core's resolver: source, allow, deny,
 * dryRun, TLS policy, logger), the connector's settings and the rest for undici's Agent,
 * refusing options meshless owns (its connector makes every socket).
 */
export function splitAgentOptions(options: CreateAgentOptions): {
  common: ResolvedOptions<AllowFor>;
  settings: ConnectorSettings;
  policy: TlsPolicy;
  undiciOptions: Agent.Options;
  plaintextOrigins: readonly string[] | undefined;
} {
  const common = resolveOptions<AllowFor>(options, AGENT_SPEC);
  const { maxConnectionAgeMs, maxCachedSessions, connectTimeout, peerContext, plaintextOrigins, ...undiciOptions } = common.rest as Partial<CreateAgentOptions>;
  if (peerContext !== undefined && typeof peerContext !== 'boolean') {
    throw optionError('createAgent', 'peerContext', `peerContext must be true or false, not ${JSON.stringify(peerContext)}`);
  }
  positiveNumber(maxConnectionAgeMs, 'maxConnectionAgeMs');
  positiveNumber(connectTimeout, 'connectTimeout');
  nonNegativeInteger(maxCachedSessions, 'maxCachedSessions');
  const settings: ConnectorSettings = {
    allowH2: undiciOptions.allowH2 === true,
    maxConnectionAgeMs,
    maxCachedSessions: maxCachedSessions ?? 100,
    connectTimeout: connectTimeout ?? 10_000,
    autoSelectFamily: undiciOptions.autoSelectFamily,
    autoSelectFamilyAttemptTimeout: undiciOptions.autoSelectFamilyAttemptTimeout,
    peerContext: peerContext === true,
  };
  return { common, settings, policy: common.tlsPolicy, undiciOptions: undiciOptions as Agent.Options, plaintextOrigins };
}
