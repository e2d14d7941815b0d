import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { randomBytes } from 'node:crypto';
import {
  MeshlessError,
  codes,
  serverTlsOptions,
  type Credential,
  type CredentialProvider,
  type Logger,
  type Rules,
  type DenyRules,
  type ServerTlsPolicy,
  type Source,
} from '@meshless/core';
import {
  compilePolicy,
  hideSecretProperties,
  onPolicyChange,
  optionError,
  resolveOptions,
  type WrapperSpec,
} from '@meshless/core/internal';
import { CallGuard } from './call-guard.js';
import { grpc, type SecureContextWatcher } from './grpc-js.js';

/** Options of {@link serverCredentials}. */
export interface ServerCredentialsOptions extends Omit<ServerTlsPolicy, 'ticketKeys'> {
  /** Where our certificate, key and trust bundle come from: a Source (rotating) or one Credential. */
  source: CredentialProvider;
  /** Which clients may call this server (rules or a compiled Authorizer). Required; `'*'` allows any verified client. */
  allow: Rules;
  /** Clients refused even when an allow rule matches. */
  deny?: DenyRules;
  /**
   * Dry run of `allow`/`deny`: a verified client the rules would refuse may call, and the
   * would-be refusal is logged ("dry run: would deny"), counted and published. A client whose
   * chain does not verify is still refused: a dry run relaxes policy, never authentication.
   */
  dryRun?: boolean;
  /** pino-compatible logger; default: a shared pino logger at level warn. */
  logger?: Logger;
  /**
   * After a trust-bundle change, open connections whose client no longer verifies are retired
   * (GOAWAY); their open streams may run this long before the connection is closed. Default 30 s.
   */
  retireGraceMs?: number;
  /**
   * Cut a TLS handshake that has not finished after this long (Node's own default is 120 s: a
   * client that opens connections and never completes them would hold them that long).
   * Default 10 000 ms, as `createServer` of `@meshless/http`.
   */
  handshakeTimeoutMs?: number;
}

const DEFAULT_RETIRE_GRACE_MS = 30_000;
const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

const SERVER_SPEC: WrapperSpec = {
  wrapper: 'serverCredentials',
  peers: 'clients',
  scope: 'grpc-server',
  tls: ['minVersion', 'maxVersion', 'ciphers', 'ecdhCurve', 'sessionTimeout'],
  names: new Set(['retireGraceMs', 'handshakeTimeoutMs']),
};

/**
 * Complete TLS options for one generation, with fresh session-ticket keys (tickets issued under
 * an older generation are not resumed). Built once per generation and checked by building a
 * SecureContext from them, so grpc-js never receives material Node would refuse: grpc-js drops
 * every new connection while it holds options that failed.
 */
function contextOptionsFor(credential: Credential, policy: Omit<ServerTlsPolicy, 'ticketKeys'>): SecureContextOptions {
  const options = serverTlsOptions(credential, { ...policy, ticketKeys: randomBytes(48) });
  createSecureContext(options);
  return options;
}

function tlsRefused(credential: Credential, cause: unknown): MeshlessError {
  const why = cause instanceof Error ? cause.message : String(cause);
  return new MeshlessError(
    codes.INVALID_OPTION,
    `Node's TLS refused generation ${credential.generation} (${String(credential.identity)}, serial ${credential.identity.serialNumber}): ${why}; check the TLS options (minVersion, ciphers, ecdhCurve) and the key type`,
    { cause, peer: String(credential.identity) },
  );
}

interface Parts {
  source: Source;
  policy: Omit<ServerTlsPolicy, 'ticketKeys'>;
  guard: CallGuard;
  logger: Logger;
  served: Credential;
  /** allow and deny as given: a live policy among them is followed while the credentials are in use. */
  rules: (Rules | undefined)[];
}

/**
 * grpc-js server credentials that serve the source's current generation and follow its updates.
 *
 * Built directly on grpc-js's `ServerCredentials` base class rather than on
 * `experimental.createCertificateProviderServerCredentials`: that API passes only `{ ca, cert, key }`
 * to `setSecureContext`, which resets every other TLS option (minVersion, secureOptions, ticket
 * keys) on the first rotation. Here the whole TLS policy is applied at start and on every
 * update; the first generation is present before grpc-js reads the options (no "unloaded
 * credentials" window), and grpc-js only ever receives complete, validated options — never null.
 */
class MeshlessServerCredentials extends grpc.ServerCredentials {
  readonly #parts: Parts;
  readonly #onUpdate = (credential: Credential): void => this.#apply(credential);
  #stopPolicy: () => void = () => undefined;

  constructor(parts: Parts, initialOptions: SecureContextOptions, handshakeTimeoutMs: number) {
    // Client certificates required: OpenSSL refuses clients without a certificate that verifies
    // to the bundle during the handshake; the interceptor then checks identity per connection.
    // grpc-js passes these constructor options to http2.createSecureServer, handshakeTimeout too.
    super({ requestCert: true, rejectUnauthorized: true, handshakeTimeout: handshakeTimeoutMs }, initialOptions);
    this.#parts = parts;
    // grpc-js keeps the last context options (with the private key) on the credentials object.
    hideSecretProperties(this, ['latestContextOptions']);
  }

  override _addWatcher(watcher: SecureContextWatcher): void {
    super._addWatcher(watcher);
    if (this.getWatcherCount() === 1) {
      this.#parts.source.on('update', this.#onUpdate);
      this.#stopPolicy = onPolicyChange(this.#parts.rules, () => this.#parts.guard.policyChanged());
    }
    this.#catchUp();
  }

  override _removeWatcher(watcher: SecureContextWatcher): void {
    super._removeWatcher(watcher);
    if (this.getWatcherCount() === 0) {
      this.#parts.source.off('update', this.#onUpdate);
      this.#stopPolicy();
    }
  }

  override _getSecureContextOptions(): SecureContextOptions | null {
    this.#catchUp();
    return super._getSecureContextOptions();
  }

  override _getInterceptors(): grpc.ServerInterceptor[] {
    return [this.#parts.guard.interceptor];
  }

  override _equals(other: grpc.ServerCredentials): boolean {
    return other === this;
  }

  /** While no server listened, the source may have moved on without us. */
  #catchUp(): void {
    const current = this.#parts.source.current();
    if (current !== this.#parts.served) this.#apply(current);
  }

  #apply(credential: Credential): void {
    const parts = this.#parts;
    const previous = parts.served;
    if (credential.contentHash === previous.contentHash) {
      parts.served = credential;
      return;
    }
    let options: SecureContextOptions;
    try {
      options = contextOptionsFor(credential, parts.policy);
    } catch (cause) {
      const error = tlsRefused(credential, cause);
      parts.logger.error({ err: error, code: error.code, generation: credential.generation, keptGeneration: previous.generation }, `meshless grpc server: ${error.message}; still serving generation ${previous.generation}`);
      return;
    }
    parts.served = credential;
    this.updateSecureContextOptions(options);
    parts.guard.update(credential);
    parts.logger.info(
      { generation: credential.generation, identity: String(credential.identity), serialNumber: credential.identity.serialNumber, notAfter: credential.notAfter.toISOString(), trustChanged: credential.bundleHash !== previous.bundleHash },
      `meshless grpc server: serving generation ${credential.generation}`,
    );
  }
}

/**
 * Server credentials for `server.bindAsync(address, serverCredentials({ source, allow }))`:
 * mutual TLS with the source's certificate (rotating with it), client certificates required, and
 * every call authorized before its handler runs — by an interceptor the credentials carry, so a
 * server bound with them cannot forget the check. Refused calls end with `UNAUTHENTICATED` (no
 * verifiable identity) or `PERMISSION_DENIED` (identity not allowed), with a log line naming the
 * presented identity and the rule.
 *
 * @example
 * const server = new grpc.Server(serverOptions());
 * server.addService(service, impl);
 * server.bindAsync('0.0.0.0:8443', serverCredentials({ source, allow: ['spiffe://prod.example/ns/web/**'] }), cb);
 */
export function serverCredentials(options: ServerCredentialsOptions): grpc.ServerCredentials {
  const { source, allow, deny, dryRunOptions, logger, metrics, tlsPolicy: policy, rest } = resolveOptions(options, SERVER_SPEC);
  const retireGraceMs = rest.retireGraceMs ?? DEFAULT_RETIRE_GRACE_MS;
  if (typeof retireGraceMs !== 'number' || !Number.isFinite(retireGraceMs) || !(retireGraceMs >= 0)) {
    throw optionError('serverCredentials', 'retireGraceMs', `retireGraceMs must be a number of milliseconds ≥ 0, got ${JSON.stringify(retireGraceMs)}`);
  }
  const handshakeTimeoutMs = rest.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
  if (typeof handshakeTimeoutMs !== 'number' || !Number.isFinite(handshakeTimeoutMs) || !(handshakeTimeoutMs > 0)) {
    throw optionError('serverCredentials', 'handshakeTimeoutMs', `handshakeTimeoutMs must be a positive number of milliseconds, got ${JSON.stringify(handshakeTimeoutMs)}`);
  }
  const authorize = compilePolicy('serverCredentials', allow, deny, dryRunOptions);
  const first = source.current();
  let initialOptions: SecureContextOptions;
  try {
    initialOptions = contextOptionsFor(first, policy);
  } catch (cause) {
    if (cause instanceof MeshlessError) throw cause;
    throw tlsRefused(first, cause);
  }
  const guard = new CallGuard({ authorize, credential: first, logger, metrics, retireGraceMs });
  return new MeshlessServerCredentials({ source, policy, guard, logger, served: first, rules: [allow, deny as Rules | undefined] }, initialOptions, handshakeTimeoutMs);
}
