import type { ServerOptions as HttpsServerOptions } from 'node:https';
import type { SecureVersion, TlsOptions } from 'node:tls';
import { parseMode, type ServerMode } from './server-permissive.js';
import { DEFAULT_RETIRE_GRACE_MS } from './server-connections.js';
import { MeshlessError, codes, serverTlsOptions, type Credential, type CredentialProvider, type Logger, type Rules, type DenyRules } from '@meshless/core';

/**
 * https options meshless owns: own material comes from `source`, client certificates are always
 * requested and checked by the server, and nothing may bypass that check.
 */
const OWNED_OPTIONS = {
  cert: 'the certificate comes from `source`',
  key: 'the private key comes from `source`',
  ca: 'the trust bundle comes from `source`',
  pfx: 'own material comes from `source`',
  passphrase: 'own material comes from `source` (decrypt the key when loading the credential)',
  secureContext: 'the secure context is built from `source` and rebuilt on every rotation',
  requestCert: 'client certificates are always requested',
  rejectUnauthorized: 'every client is checked (chain, then identity and allow-list) before a request is parsed',
  ticketKeys: 'session ticket keys are managed by meshless and renewed whenever trust changes',
  SNICallback: 'a per-name secure context would bypass the client certificate check',
  pskCallback: 'pre-shared keys bypass the client certificate check',
  pskIdentityHint: 'pre-shared keys bypass the client certificate check',
  clientCertEngine: 'own material comes from `source`',
  privateKeyEngine: 'own material comes from `source`',
  privateKeyIdentifier: 'own material comes from `source`',
  secureProtocol: 'use `minVersion` (TLS 1.3 by default, TLS 1.2 allowed)',
} as const;

type OwnedOption = keyof typeof OWNED_OPTIONS;

/** Options of {@link createServer}: meshless options, plus any `https.createServer` option it does not own. */
export interface ServerOptions extends Omit<HttpsServerOptions, OwnedOption | 'minVersion'> {
  /** Own certificate, key and trust bundle: a Source (rotates) or a Credential (static). */
  source: CredentialProvider;
  /** Which clients may connect: rule strings, functions, or a compiled Authorizer. Required. */
  allow: Rules;
  /** Rules that refuse a client even when an allow rule matches. */
  deny?: DenyRules;
  /**
   * Dry run of `allow`/`deny`: a verified client the rules would refuse is let in, and the
   * would-be refusal is logged ("dry run: would deny"), counted and published. A client whose
   * chain does not verify is still refused: a dry run relaxes policy, never authentication.
   */
  dryRun?: boolean;
  /**
   * `'strict'` (default): mutual TLS only. `'permissive'`: mutual TLS and plaintext HTTP on the
   * same port, for a migration (plaintext requests have no peer and are counted; switch with
   * `server.setMode('strict')`). See docs/migration.md.
   */
  mode?: ServerMode;
  /** Lowest TLS version: `'TLSv1.3'` (default) or `'TLSv1.2'` (renegotiation stays off). */
  minVersion?: SecureVersion;
  /**
   * Retire a connection this long after it opened (jittered ±10 %), gracefully: an in-flight
   * response completes with `Connection: close`. Default: no limit besides the client
   * certificate's `notAfter`.
   */
  maxConnectionAgeMs?: number;
  /** Cut a TLS handshake that has not finished after this long. Default 10 000 ms. */
  handshakeTimeoutMs?: number;
  /**
   * How long the in-flight responses of a connection retired because its peer is no longer
   * trusted (`trust-changed`, `policy-changed`, `certificate-expired` at `notAfter`) may still
   * run before the connection is destroyed. No further request on it is handled meanwhile.
   * Default 5 000 ms; 0 destroys a busy connection at once.
   */
  retireGraceMs?: number;
  /** pino-compatible logger; default: meshless's shared logger (level `warn`). */
  logger?: Logger;
}

/** The split of {@link ServerOptions}: what meshless uses, and what goes to `https.createServer`. */
export interface ParsedServerOptions {
  provider: CredentialProvider;
  allow: Rules;
  deny: DenyRules | undefined;
  dryRun: boolean;
  mode: ServerMode;
  maxConnectionAgeMs: number | undefined;
  handshakeTimeoutMs: number;
  retireGraceMs: number;
  logger: Logger | undefined;
  /** TLS policy for `serverTlsOptions`. */
  policy: { minVersion?: SecureVersion; ciphers?: string; ecdhCurve?: string; sessionTimeout?: number };
  /** Every other option, passed to `https.createServer` and again to every `setSecureContext`. */
  passthrough: HttpsServerOptions;
}

function parseDryRun(value: unknown): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw invalid('dryRun', `dryRun must be true or false, got ${JSON.stringify(value)}`);
  return value;
}

export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

function invalid(field: string, message: string): MeshlessError {
  return new MeshlessError(codes.INVALID_OPTION, `createServer: ${message}`, { field });
}

function positiveMs(value: unknown, field: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw invalid(field, `${field} must be a positive number of milliseconds, got ${JSON.stringify(value)}`);
  }
  return value;
}

function nonNegativeMs(value: unknown, field: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw invalid(field, `${field} must be a number of milliseconds ≥ 0, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** Validates createServer options and splits them; throws MESHLESS_ERR_INVALID_OPTION naming the option. */
export function parseServerOptions(options: ServerOptions): ParsedServerOptions {
  if (typeof options !== 'object' || options === null) {
    throw invalid('options', 'needs an options object: createServer({ source, allow }, listener)');
  }
  const { source, allow, deny, minVersion, ciphers, ecdhCurve, sessionTimeout, maxConnectionAgeMs, handshakeTimeoutMs, retireGraceMs, logger, dryRun, mode, ...rest } = options;
  if (source === undefined || source === null || typeof source !== 'object') {
    throw invalid('source', 'needs `source`: a Source (fileSource, staticSource) or a Credential (loadCredential)');
  }
  if (allow === undefined || allow === null) {
    throw invalid('allow', "needs `allow`: the rules that say which clients may connect, e.g. 'spiffe://prod.example/ns/*/sa/api' (use '*' for any verified client)");
  }
  for (const name of Object.keys(rest)) {
    if (Object.hasOwn(OWNED_OPTIONS, name) && (rest as Record<string, unknown>)[name] !== undefined) {
      throw invalid(name, `option \`${name}\` is not accepted: ${OWNED_OPTIONS[name as OwnedOption]}`);
    }
  }
  const passthrough = rest as HttpsServerOptions;
  const policy: ParsedServerOptions['policy'] = {};
  if (minVersion !== undefined) policy.minVersion = minVersion;
  if (ciphers !== undefined) policy.ciphers = ciphers;
  if (ecdhCurve !== undefined) policy.ecdhCurve = ecdhCurve;
  if (sessionTimeout !== undefined) policy.sessionTimeout = sessionTimeout;
  return {
    provider: source,
    allow,
    deny,
    dryRun: parseDryRun(dryRun),
    mode: parseMode(mode),
    maxConnectionAgeMs: positiveMs(maxConnectionAgeMs, 'maxConnectionAgeMs'),
    handshakeTimeoutMs: positiveMs(handshakeTimeoutMs, 'handshakeTimeoutMs') ?? positiveMs(passthrough.handshakeTimeout, 'handshakeTimeout') ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
    retireGraceMs: nonNegativeMs(retireGraceMs, 'retireGraceMs') ?? DEFAULT_RETIRE_GRACE_MS,
    logger,
    policy,
    passthrough,
  };
}

/**
 * The complete options for one credential generation: the user's https options, then
 * `serverTlsOptions` (own chain, key, bundle, TLS policy, renegotiation off), then the ticket
 * keys we hold. The one function used by the constructor and by every `setSecureContext`, so a
 * reload never drops a setting (DESIGN.md rule 5).
 *
 * `rejectUnauthorized` is false on purpose: OpenSSL still verifies the chain, and the server's
 * first `secureConnection` listener refuses any client whose verdict is not `authorized`, so a
 * refused client's presented identity and reason are known and logged (with `true`, Node drops
 * an untrusted client before any event that still carries its certificate or address).
 */
export function secureOptionsFor(credential: Credential, parsed: ParsedServerOptions, ticketKeys: Buffer): TlsOptions {
  const tls = serverTlsOptions(credential, { ...parsed.policy, ticketKeys });
  const userSecureOptions = parsed.passthrough.secureOptions ?? 0;
  return {
    ...parsed.passthrough,
    ...tls,
    secureOptions: (tls.secureOptions ?? 0) | userSecureOptions,
    handshakeTimeout: parsed.handshakeTimeoutMs,
    requestCert: true,
    rejectUnauthorized: false,
  };
}
