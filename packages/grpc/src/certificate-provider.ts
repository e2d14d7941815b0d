import { createSecureContext } from 'node:tls';
import { MeshlessError, codes, privateKeyPem, type Credential, type Logger, type Source } from '@meshless/core';
import { hideSecretProperties } from '@meshless/core/internal';
import { grpc } from './grpc-js.js';

type CaListener = grpc.experimental.CaCertificateUpdateListener;
type IdentityListener = grpc.experimental.IdentityCertificateUpdateListener;

interface Updates {
  credential: Credential;
  ca: grpc.experimental.CaCertificateUpdate;
  identity: grpc.experimental.IdentityCertificateUpdate;
}

/** The grpc-js updates for one generation, checked by building a SecureContext from them. */
function updatesFor(credential: Credential): Updates {
  const ca = { caCertificate: Buffer.from(credential.trustPem) };
  const identity = { certificate: Buffer.from(credential.certPem), privateKey: Buffer.from(privateKeyPem(credential)) };
  // grpc-js keeps the latest update on the channel credentials: the key must not print with them.
  hideSecretProperties(identity, ['privateKey']);
  try {
    createSecureContext({ ca: ca.caCertificate, cert: identity.certificate, key: identity.privateKey });
  } catch (cause) {
    throw new MeshlessError(codes.INVALID_OPTION, `Node's TLS refused generation ${credential.generation} (${String(credential.identity)}): ${(cause as Error).message}`, { cause, peer: String(credential.identity) });
  }
  return { credential, ca, identity };
}

/**
 * A grpc-js `CertificateProvider` fed by a Source. It answers both roles (trust bundle and
 * identity) from one validated generation, so it can be passed for both arguments of grpc-js's
 * certificate-provider functions whatever order they really use. It never sends `null` nor a
 * generation Node's TLS refuses; a new listener gets the current generation after the current
 * tick (grpc-js registers some of its own watchers only after subscribing); it listens to the
 * source only while someone listens to it.
 */
export class SourceCertificateProvider implements grpc.experimental.CertificateProvider {
  readonly #source: Source;
  readonly #logger: Logger;
  readonly #caListeners = new Set<CaListener>();
  readonly #identityListeners = new Set<IdentityListener>();
  #updates: Updates;
  readonly #onUpdate = (credential: Credential): void => this.#apply(credential);

  constructor(source: Source, logger: Logger) {
    this.#source = source;
    this.#logger = logger;
    this.#updates = updatesFor(source.current());
  }

  /** The generation grpc-js receives now. */
  get credential(): Credential {
    return this.#updates.credential;
  }

  addCaCertificateListener(listener: CaListener): void {
    this.#caListeners.add(listener);
    this.#retain();
    process.nextTick(() => {
      if (this.#caListeners.has(listener)) listener(this.#updates.ca);
    });
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.#caListeners.delete(listener);
    this.#release();
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.#identityListeners.add(listener);
    this.#retain();
    process.nextTick(() => {
      if (this.#identityListeners.has(listener)) listener(this.#updates.identity);
    });
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.#identityListeners.delete(listener);
    this.#release();
  }

  #listenerCount(): number {
    return this.#caListeners.size + this.#identityListeners.size;
  }

  #retain(): void {
    if (this.#listenerCount() !== 1) return;
    this.#source.on('update', this.#onUpdate);
    // The source may have moved on while nobody listened.
    const current = this.#source.current();
    if (current !== this.#updates.credential) this.#apply(current);
  }

  #release(): void {
    if (this.#listenerCount() === 0) this.#source.off('update', this.#onUpdate);
  }

  #apply(credential: Credential): void {
    const previous = this.#updates.credential;
    if (credential.contentHash === previous.contentHash) {
      this.#updates = { ...this.#updates, credential };
      return;
    }
    let updates: Updates;
    try {
      updates = updatesFor(credential);
    } catch (err) {
      this.#logger.error({ err, code: (err as MeshlessError).code, generation: credential.generation, keptGeneration: previous.generation }, `meshless grpc client: ${(err as Error).message}; still using generation ${previous.generation}`);
      return;
    }
    this.#updates = updates;
    // Trust first: between the two calls a context holds the new bundle with the old leaf,
    // never a leaf its bundle cannot verify (during a CA rotation the new bundle holds both roots).
    for (const listener of [...this.#caListeners]) listener(updates.ca);
    for (const listener of [...this.#identityListeners]) listener(updates.identity);
    this.#logger.info({ generation: credential.generation, identity: String(credential.identity), serialNumber: credential.identity.serialNumber }, `meshless grpc client: using generation ${credential.generation} for new connections`);
  }
}
