import type { ServerOptions as HttpsServerOptions } from 'node:https';
import type { SecureVersion, TlsOptions } from 'node:tls';
import { parseMode, type ServerMode } from './server-permissive.js';
import { DEFAULT_RETIRE_GRACE_MS } from './server-connections.js';
import { checkAlpnProtocols } from './server-alpn.js';
import { serverTlsOptions, type Credential, type CredentialProvider, type Logger, type MeshlessError, type Rules, type DenyRules, type ServerTlsPolicy } from '@meshless/core';
import { optionError, resolveOptions, type ResolvedOptions, type TlsPolicyField, type WrapperSpec } from '@meshless/core/internal';

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
export interface ServerOptions extends Omit<HttpsServerOptions, OwnedOption | 'minVersion' | 'maxVersion'> {
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
  /** Highest TLS version: `'TLSv1.3'` (default) or `'TLSv1.2'` (with `minVersion: 'TLSv1.2'`). */
  maxVersion?: SecureVersion;
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
export interface ParsedServerOptions extends ResolvedOptions {
  mode: ServerMode;
  maxConnectionAgeMs: number | undefined;
  handshakeTimeoutMs: number;
  retireGraceMs: number;
  /** TLS policy for `serverTlsOptions`. */
  policy: Omit<ServerTlsPolicy, 'ticketKeys'>;
  /** Every other option, passed to `https.createServer` and again to every `setSecureContext`. */
  passthrough: HttpsServerOptions;
}

export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

/** createServer's own options, besides the common ones (docs/options.md). */
const OWN_OPTIONS = ['mode', 'maxConnectionAgeMs', 'handshakeTimeoutMs', 'retireGraceMs'] as const;

/**
 * Every `https.createServer` option createServer passes through (type-checked against Node's
 * types: a name missing or extra fails the build), then names later Node releases added.
 */
const HTTPS_OPTIONS = {
  ALPNCallback: true, ALPNProtocols: true, IncomingMessage: true, ServerResponse: true, allowHalfOpen: true, allowPartialTrustChain: true,
  connectionsCheckingInterval: true, crl: true, dhparam: true, enableTrace: true, handshakeTimeout: true, headersTimeout: true,
  highWaterMark: true, honorCipherOrder: true, insecureHTTPParser: true, joinDuplicateHeaders: true, keepAlive: true,
  keepAliveInitialDelay: true, keepAliveTimeout: true, maxHeaderSize: true, noDelay: true, pauseOnConnect: true,
  rejectNonStandardBodyWrites: true, requestTimeout: true, requireHostHeader: true, secureOptions: true, sessionIdContext: true,
  sigalgs: true, uniqueHeaders: true,
} satisfies Record<Exclude<keyof HttpsServerOptions, OwnedOption | TlsPolicyField>, true>;
const LATER_NODE_OPTIONS = ['blockList', 'shouldUpgradeCallback', 'optimizeEmptyRequests', 'keepAliveTimeoutBuffer'];

const SERVER_SPEC: WrapperSpec = {
  wrapper: 'createServer',
  peers: 'clients',
  scope: 'server',
  tls: ['minVersion', 'maxVersion', 'ciphers', 'ecdhCurve', 'sessionTimeout'],
  names: new Set([...OWN_OPTIONS, ...Object.keys(HTTPS_OPTIONS), ...LATER_NODE_OPTIONS]),
  refused: OWNED_OPTIONS,
};

function invalid(field: string, message: string): MeshlessError {
  return optionError('createServer', field, message);
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

/**
 * Validates createServer options and splits them (core's resolver reads the common ones: source,
 * allow, deny, dryRun, TLS policy, logger); throws a MeshlessError naming the option.
 */
export function parseServerOptions(options: ServerOptions): ParsedServerOptions {
  const common = resolveOptions(options, SERVER_SPEC);
  const { mode, maxConnectionAgeMs, handshakeTimeoutMs, retireGraceMs, ...rest } = common.rest as Partial<ServerOptions>;
  const passthrough = rest as HttpsServerOptions;
  checkAlpnProtocols(passthrough.ALPNProtocols, invalid);
  return {
    ...common,
    mode: parseMode(mode),
    maxConnectionAgeMs: positiveMs(maxConnectionAgeMs, 'maxConnectionAgeMs'),
    handshakeTimeoutMs: positiveMs(handshakeTimeoutMs, 'handshakeTimeoutMs') ?? positiveMs(passthrough.handshakeTimeout, 'handshakeTimeout') ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
    retireGraceMs: nonNegativeMs(retireGraceMs, 'retireGraceMs') ?? DEFAULT_RETIRE_GRACE_MS,
    policy: common.tlsPolicy,
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
