import { MeshlessError, codes, type CredentialProvider, type Logger, type TlsPolicy } from '@meshless/core';
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

function nonNegativeInteger(value: unknown, field: string): void {
  if (value !== undefined && (typeof value !== 'number' || !Number.isInteger(value) || value < 0)) {
    throw new MeshlessError(codes.INVALID_OPTION, `${field} must be a non-negative integer, not ${JSON.stringify(value)}`, { field });
  }
}

function positiveNumber(value: unknown, field: string): void {
  if (value !== undefined && (typeof value !== 'number' || !Number.isFinite(value) || value <= 0)) {
    throw new MeshlessError(codes.INVALID_OPTION, `${field} must be a positive number of milliseconds, not ${JSON.stringify(value)}`, { field });
  }
}

/**
 * Splits createAgent's options into ours, the TLS policy and the rest for undici's Agent,
 * refusing options meshless owns (its connector makes every socket).
 */
export function splitAgentOptions(options: CreateAgentOptions): {
  settings: ConnectorSettings;
  policy: TlsPolicy;
  undiciOptions: Agent.Options;
} {
  if (typeof options !== 'object' || options === null) {
    throw new MeshlessError(codes.INVALID_OPTION, 'createAgent needs { source, allow }', { field: 'options' });
  }
  if (options.source === undefined || options.source === null) {
    throw new MeshlessError(codes.INVALID_OPTION, 'createAgent needs { source }: a Source (fileSource, staticSource) or a Credential (loadCredential)', { field: 'source' });
  }
  for (const name of OWNED) {
    if ((options as unknown as Record<string, unknown>)[name] !== undefined) {
      throw new MeshlessError(
        codes.INVALID_OPTION,
        `createAgent does not take "${name}": meshless makes every TLS socket itself from { source, allow, minVersion, ciphers, ecdhCurve }`,
        { field: name },
      );
    }
  }
  const {
    source: _source,
    allow: _allow,
    logger: _logger,
    dryRun: _dryRun,
    plaintextOrigins: _plaintextOrigins,
    maxConnectionAgeMs,
    maxCachedSessions,
    connectTimeout,
    minVersion,
    ciphers,
    ecdhCurve,
    peerContext,
    ...undiciOptions
  } = options;
  if (peerContext !== undefined && typeof peerContext !== 'boolean') {
    throw new MeshlessError(codes.INVALID_OPTION, `peerContext must be true or false, not ${JSON.stringify(peerContext)}`, { field: 'peerContext' });
  }
  positiveNumber(maxConnectionAgeMs, 'maxConnectionAgeMs');
  positiveNumber(connectTimeout, 'connectTimeout');
  nonNegativeInteger(maxCachedSessions, 'maxCachedSessions');
  const policy: TlsPolicy = {};
  if (minVersion !== undefined) policy.minVersion = minVersion;
  if (ciphers !== undefined) policy.ciphers = ciphers;
  if (ecdhCurve !== undefined) policy.ecdhCurve = ecdhCurve;
  const settings: ConnectorSettings = {
    allowH2: undiciOptions.allowH2 === true,
    maxConnectionAgeMs,
    maxCachedSessions: maxCachedSessions ?? 100,
    connectTimeout: connectTimeout ?? 10_000,
    autoSelectFamily: undiciOptions.autoSelectFamily,
    autoSelectFamilyAttemptTimeout: undiciOptions.autoSelectFamilyAttemptTimeout,
    peerContext: peerContext === true,
  };
  return { settings, policy, undiciOptions };
}
