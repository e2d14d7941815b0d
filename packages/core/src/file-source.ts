import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import path from 'node:path';
import { loadCredential, type Credential } from './credential.js';
import { MeshlessError, codes, isMeshlessError } from './errors.js';
import { checkLocation, resolveFileSourceOptions, type FileSourceLocation, type FileSourceOptions, type ResolvedFileSourceOptions } from './file-source-options.js';
import { readGeneration, type GenerationBytes } from './file-source-read.js';
import { hasTrustFiles, noTrust, readTrustSet, resolveTrustFiles, trustFileList, trustSummary, type TrustFiles, type TrustSet } from './file-source-trust.js';
import type { SpiffeBundle } from './spiffe-bundle.js';
import { MountWatcher } from './file-source-watch.js';
import { resolveFiles, type CredentialFiles, type CredentialLayout } from './layout.js';
import { loggerOf, type Logger } from './logger.js';
import { findFrozenMounts } from './mount-info.js';
import type { Health, Source, SourceEvents } from './source.js';
import { SourceReporter } from './source-reporter.js';

export type { FileSourceLocation, FileSourceOptions, FederationFiles } from './file-source-options.js';
export type { TrustFiles } from './file-source-trust.js';

/** A Source backed by mounted files; also tells where it reads from. */
export interface FileSource extends Source {
  /** The three files read (absolute paths, as configured or detected). */
  readonly files: Readonly<CredentialFiles>;
  /** The layout detected in `dir`, when one was used. */
  readonly layout: CredentialLayout | undefined;
  /** The federated bundle files read with the credential (absolute paths). */
  readonly trustFiles: TrustFiles;
  /**
   * The federated bundles of the current generation as read (format, sequence, ignored keys),
   * keyed by trust domain; `current().bundles` holds what is used to verify.
   */
  federatedBundles(): ReadonlyMap<string, SpiffeBundle>;
}

/** The credential trio of the last good generation, as read. */
interface TrioRead {
  bytes: GenerationBytes;
  raw: string;
}

/** Why a read was started; decides whether a failure is reported at once. */
type Trigger = 'event' | 'confirm' | 'recheck' | 'manual';

/** The kubelet's symlink to the current generation directory. */
const DATA_LINK = '..data';

/** Upper bound of the debounce under a continuous stream of events, as a multiple of debounceMs. */
const MAX_DEBOUNCE_FACTOR = 5;

function rawHashOf(bytes: GenerationBytes): string {
  return createHash('sha256').update(bytes.cert).update('\0').update(bytes.key).update('\0').update(bytes.ca).digest('hex');
}

function asMeshlessError(err: unknown, files: CredentialFiles): MeshlessError {
  if (isMeshlessError(err)) return err;
  // Not expected: every reader and validator throws coded errors. Keep only the message.
  return new MeshlessError(codes.FILE_UNREADABLE, `reading the credential from ${path.dirname(files.cert)} failed unexpectedly: ${(err as Error)?.message ?? String(err)}`, { file: files.cert, cause: err });
}

function errorFields(err: MeshlessError): Record<string, unknown> {
  return { code: err.code, message: err.message, ...(err.file ? { file: err.file } : {}) };
}

function credentialFields(c: Credential): Record<string, unknown> {
  return { generation: c.generation, identity: String(c.identity), serialNumber: c.leaf.serialNumber, notAfter: c.notAfter.toISOString() };
}

class FileSourceImpl extends EventEmitter<SourceEvents> implements FileSource {
  readonly files: Readonly<CredentialFiles>;
  readonly layout: CredentialLayout | undefined;
  readonly trustFiles: TrustFiles;
  readonly #options: ResolvedFileSourceOptions;
  readonly #log: Logger;
  readonly #label: string;
  readonly #watcher: MountWatcher;
  /** Watches the federated bundle files: another mount, which may vanish without stopping the credential's watch. */
  readonly #trustWatcher: MountWatcher | undefined;
  readonly #report: SourceReporter;
  #current!: Credential;
  /** The trio and the federated bundles come from different mounts and change independently: each keeps its own last good. */
  #goodTrio!: TrioRead;
  #trust: TrustSet = noTrust;
  #noticesLogged = new Set<string>();
  #anchorIdentity = '';
  #closed = false;
  /** False until the first generation is loaded; events seen before are replayed once after. */
  #started = false;
  #changedDuringStart = false;
  #debounceTimer: NodeJS.Timeout | undefined;
  #debounceStartedAt = 0;
  #debouncePrompt = false;
  #confirmTimer: NodeJS.Timeout | undefined;
  #recheckTimer: NodeJS.Timeout | undefined;
  #inFlight: Promise<void> | undefined;
  #queued: { trigger: Trigger; promise: Promise<void>; resolve: () => void } | undefined;

  constructor(files: CredentialFiles, layout: CredentialLayout | undefined, trustFiles: TrustFiles, label: string, options: ResolvedFileSourceOptions) {
    super();
    this.files = Object.freeze({ ...files });
    this.layout = layout;
    this.trustFiles = trustFiles;
    this.#label = label;
    this.#options = options;
    this.#log = loggerOf(options.logger);
    this.#report = new SourceReporter({
      source: this,
      current: () => this.#current,
      log: this.#log,
      label,
      kind: 'file source',
      renewAtShare: options.renewAtShare,
      credentialFields,
      errorFields,
    });
    const names = new Set([files.cert, files.key, files.ca].map((f) => path.basename(f)));
    this.#watcher = new MountWatcher({
      dirs: [...new Set([files.cert, files.key, files.ca].map((f) => path.dirname(f)))],
      relevant: (name) => names.has(name) || name.startsWith('..'),
      ...(options.pollIntervalMs === undefined ? {} : { pollIntervalMs: options.pollIntervalMs }),
      onChange: (why, name) => this.#onFileEvent(why, name),
      onTrouble: (why, cause) =>
        this.#log.warn({ source: this.#label, reason: why, ...(cause ? { cause: String((cause as Error).message ?? cause) } : {}) }, 'meshless: credential directory watch interrupted; polling until it is back'),
    });
    if (hasTrustFiles(trustFiles)) {
      const trustList = trustFileList(trustFiles);
      const trustNames = new Set(trustList.map((f) => path.basename(f)));
      this.#trustWatcher = new MountWatcher({
        dirs: [...new Set(trustList.map((f) => path.dirname(f)))],
        relevant: (name) => trustNames.has(name) || name.startsWith('..'),
        ...(options.pollIntervalMs === undefined ? {} : { pollIntervalMs: options.pollIntervalMs }),
        onChange: (why, name) => this.#onFileEvent(why, name),
        onTrouble: (why, cause) =>
          this.#log.warn({ source: this.#label, reason: why, ...(cause ? { cause: String((cause as Error).message ?? cause) } : {}) }, 'meshless: federated bundle directory watch interrupted; polling until it is back'),
      });
    }
  }

  /** Starts the watcher, then loads the first generation; throws (and cleans up) when it is bad. */
  async start(): Promise<void> {
    try {
      await this.#watcher.start();
      await this.#trustWatcher?.start();
      const [bytes, trust] = await Promise.all([readGeneration(this.files), readTrustSet(this.trustFiles)]);
      this.#current = this.#load(bytes, trust, 1);
      this.#goodTrio = { bytes, raw: rawHashOf(bytes) };
      this.#trust = trust;
      this.#anchorIdentity = String(this.#current.identity);
      this.#report.lastReloadAt = new Date();
    } catch (err) {
      await this.#stop();
      throw asMeshlessError(err, this.files);
    }
    this.#report.started();
    if (this.#options.recheckIntervalMs > 0) {
      this.#recheckTimer = setInterval(() => void this.#recheck(), this.#options.recheckIntervalMs).unref();
    }
    this.#log.info({ source: this.#label, files: this.files, ...(this.layout ? { layout: this.layout.name } : {}), ...credentialFields(this.#current), ...this.#trustFields() }, 'meshless: credential loaded');
    this.#logNotices(this.#current, this.#trust);
    this.#report.logStartHealth();
    this.#started = true;
    if (this.#changedDuringStart) this.#onFileEvent('changed while the first generation was loading');
    void this.#warnAboutFrozenMounts().catch(() => undefined);
  }

  current(): Credential {
    return this.#current;
  }

  federatedBundles(): ReadonlyMap<string, SpiffeBundle> {
    return this.#trust.bundles;
  }

  health(): Health {
    return this.#report.health(this.#current);
  }

  async reload(): Promise<Credential> {
    if (this.#closed) throw new MeshlessError(codes.SOURCE_CLOSED, `the file source for ${this.#label} is closed; create a new one to read the files again`);
    await this.#request('manual');
    return this.#current;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#stop();
    this.#log.debug({ source: this.#label }, 'meshless: file source closed');
  }

  async #stop(): Promise<void> {
    this.#closed = true;
    for (const t of [this.#debounceTimer, this.#confirmTimer]) if (t !== undefined) clearTimeout(t);
    if (this.#recheckTimer !== undefined) clearInterval(this.#recheckTimer);
    this.#debounceTimer = this.#confirmTimer = this.#recheckTimer = undefined;
    this.#report.close();
    const queued = this.#queued;
    this.#queued = undefined;
    queued?.resolve();
    await this.#watcher.close();
    await this.#trustWatcher?.close();
    await this.#inFlight;
  }

  // ---- triggers -------------------------------------------------------------------------

  /**
   * A file event. The `..data` rename publishes a whole generation at once (the kubelet wrote
   * it completely beforehand), so it is read at once; any other change may be one file of a
   * writer still busy with the next, so it is debounced. Either way a confirming read follows.
   */
  #onFileEvent(why: string, name?: string): void {
    if (this.#closed) return;
    if (!this.#started) {
      this.#changedDuringStart = true;
      return;
    }
    this.#log.debug({ source: this.#label, event: why }, 'meshless: credential files changed');
    if (this.#confirmTimer !== undefined) clearTimeout(this.#confirmTimer);
    this.#confirmTimer = undefined;
    const now = Date.now();
    const prompt = name === DATA_LINK;
    if (this.#debounceTimer === undefined) {
      this.#debounceStartedAt = now;
    } else {
      // A prompt read already due is never postponed by the events that trail the swap.
      if (this.#debouncePrompt) return;
      clearTimeout(this.#debounceTimer);
    }
    const { debounceMs } = this.#options;
    const wait = prompt ? 0 : Math.max(0, Math.min(debounceMs, this.#debounceStartedAt + debounceMs * MAX_DEBOUNCE_FACTOR - now));
    this.#debouncePrompt = prompt;
    this.#debounceTimer = setTimeout(() => {
      this.#debounceTimer = undefined;
      this.#debouncePrompt = false;
      void this.#request('event').then(() => this.#scheduleConfirm());
    }, wait).unref();
  }

  /** One more read `settleMs` after an event-driven read: catches a second swap whose event was dropped. */
  #scheduleConfirm(): void {
    if (this.#closed || this.#debounceTimer !== undefined) return;
    if (this.#confirmTimer !== undefined) clearTimeout(this.#confirmTimer);
    this.#confirmTimer = setTimeout(() => {
      this.#confirmTimer = undefined;
      void this.#request('confirm');
    }, this.#options.settleMs).unref();
  }

  async #recheck(): Promise<void> {
    if (this.#closed) return;
    await this.#watcher.verifyRoots();
    await this.#trustWatcher?.verifyRoots();
    await this.#request('recheck');
  }

  /** Runs one read at a time; requests made meanwhile are merged into a single next read. */
  #request(trigger: Trigger): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (this.#inFlight === undefined) return this.#run(trigger);
    if (this.#queued === undefined) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.#queued = { trigger, promise, resolve };
    } else if (this.#queued.trigger === 'event') {
      this.#queued.trigger = trigger;
    }
    return this.#queued.promise;
  }

  #run(trigger: Trigger): Promise<void> {
    const run = this.#attempt(trigger).finally(() => {
      this.#inFlight = undefined;
      const next = this.#queued;
      this.#queued = undefined;
      if (next !== undefined && !this.#closed) void this.#run(next.trigger).then(next.resolve);
      else next?.resolve();
    });
    this.#inFlight = run;
    return run;
  }

  // ---- one read -------------------------------------------------------------------------

  /**
   * One read of everything. The credential trio and the federated bundles are read and
   * validated separately, each keeping its own last good: a broken partner bundle never blocks
   * our own certificate's rotation, and a broken own mount never blocks a partner's new CA.
   */
  async #attempt(trigger: Trigger): Promise<void> {
    const startedAt = performance.now();
    const failures: MeshlessError[] = [];
    let attempts = 0;
    let trio = this.#goodTrio;
    let trust = this.#trust;
    await Promise.all([
      readGeneration(this.files).then(
        (bytes) => {
          attempts = bytes.attempts;
          const raw = rawHashOf(bytes);
          if (raw !== this.#goodTrio.raw) trio = { bytes, raw };
        },
        (err: unknown) => void failures.push(asMeshlessError(err, this.files)),
      ),
      readTrustSet(this.trustFiles, this.#trust).then(
        (set) => void (trust = set),
        (err: unknown) => void failures.push(asMeshlessError(err, this.files)),
      ),
    ]);
    if (this.#closed) return;
    const generation = this.#current.generation + 1;
    let next: Credential | undefined;
    let trioAccepted = false;
    let trustAccepted = false;
    if (trio !== this.#goodTrio) {
      try {
        const candidate = this.#load(trio.bytes, trust, generation);
        if (candidate.contentHash !== this.#current.contentHash) this.#checkIdentity(candidate);
        next = candidate;
        trioAccepted = trustAccepted = true;
      } catch (err) {
        failures.push(asMeshlessError(err, this.files));
      }
    }
    if (!trustAccepted && trust !== this.#trust) {
      // The trust changed alone, or with a trio that was refused: the last good trio with the new bundles.
      try {
        next = this.#load(this.#goodTrio.bytes, trust, generation);
        trustAccepted = true;
      } catch (err) {
        failures.push(asMeshlessError(err, this.files));
      }
    }
    if (failures.length > 0) {
      // chokidar does not always report its root vanishing: a failed read is the moment to look.
      await this.#watcher.verifyRoots();
      await this.#trustWatcher?.verifyRoots();
      if (this.#closed) return;
    }
    if (trioAccepted) this.#goodTrio = trio;
    if (trustAccepted) this.#trust = trust;
    if (next !== undefined && next.contentHash === this.#current.contentHash) next = undefined;
    if (failures.length === 0 || next !== undefined) this.#report.lastReloadAt = new Date();
    const recovered = this.#report.failure;
    if (failures.length === 0) this.#report.failure = undefined;
    if (next === undefined) {
      if (failures.length === 0) {
        this.#report.metrics?.reload('unchanged');
        if (recovered) this.#log.info({ source: this.#label, ...credentialFields(this.#current) }, 'meshless: credential files readable again (unchanged)');
      }
    } else {
      const previous = this.#current;
      this.#current = next;
      this.#report.metrics?.reload('success');
      const what = trioAccepted ? 'credential rotated' : 'federated trust bundles changed';
      this.#log.info(
        { source: this.#label, ...credentialFields(next), previousGeneration: previous.generation, trigger, readAttempts: attempts, readMs: Math.round((performance.now() - startedAt) * 10) / 10, ...(next.bundleHash === previous.bundleHash ? {} : { trustChanged: true }), ...this.#trustFields() },
        `meshless: ${what}`,
      );
      this.#logNotices(next, this.#trust);
      this.#report.updated(next, previous);
    }
    for (const err of failures) this.#fail(err, trigger);
    this.#report.updateHealth();
  }

  #load(bytes: GenerationBytes, trust: TrustSet, generation: number): Credential {
    const { expectIdentity, clockSkewMs, passphrase } = this.#options;
    return loadCredential(
      { cert: bytes.cert, key: bytes.key, ca: bytes.ca, ...(passphrase === undefined ? {} : { passphrase }), ...(trust.federation.size === 0 ? {} : { federation: trust.federation }) },
      { generation, clockSkewMs, files: { ...this.files, federation: trust.files }, ...(expectIdentity === undefined ? {} : { expectIdentity }) },
    );
  }

  #trustFields(): Record<string, unknown> {
    return hasTrustFiles(this.trustFiles) ? { federated: trustSummary(this.#trust) } : {};
  }

  /** Logs what loading said worth saying (a bundle for our own trust domain ignored, a trust domain in two files), once each. */
  #logNotices(credential: Credential, trust: TrustSet): void {
    const all = [...credential.notices, ...trust.notices];
    for (const notice of all) if (!this.#noticesLogged.has(notice)) this.#log.warn({ source: this.#label }, `meshless: ${notice}`);
    this.#noticesLogged = new Set(all);
  }

  #checkIdentity(candidate: Credential): void {
    const { expectIdentity, allowIdentityChange } = this.#options;
    if (expectIdentity !== undefined || allowIdentityChange) return;
    const identity = String(candidate.identity);
    if (identity === this.#anchorIdentity) return;
    throw new MeshlessError(
      codes.IDENTITY_MISMATCH,
      `cert file ${this.files.cert}: the new certificate's identity ${identity} differs from ${this.#anchorIdentity}, the identity this source started with; the rotation is refused. Pass expectIdentity (the rules a new identity must match) or allowIdentityChange: true to accept it`,
      { file: this.files.cert, field: 'cert', peer: identity },
    );
  }

  /**
   * A failed read. Reads started by a file event are not reported: a writer may still be busy
   * (in-place writes, a second swap); the confirming read `settleMs` later reports if the files
   * are still bad. Every other trigger reports at once.
   */
  #fail(err: MeshlessError, trigger: Trigger): void {
    if (trigger === 'event') {
      this.#log.debug({ source: this.#label, err: errorFields(err) }, 'meshless: credential read failed while files were changing; confirming shortly');
      return;
    }
    this.#report.fail(err, { servingGeneration: this.#current.generation, trigger }, `meshless: credential reload failed; still serving generation ${this.#current.generation}`);
  }

  async #warnAboutFrozenMounts(): Promise<void> {
    const all = [this.files.cert, this.files.key, this.files.ca, ...trustFileList(this.trustFiles)];
    const dirs = [...new Set(all.map((f) => path.dirname(f)))];
    const frozen = await findFrozenMounts(all, dirs);
    for (const f of frozen) {
      this.#log.warn(
        { source: this.#label, path: f.path, mountRoot: f.entry.root, mountPoint: f.entry.mountPoint },
        f.kind === 'file'
          ? `meshless: ${f.path} is a single-file mount (a Kubernetes subPath or a file bind mount): rotations are never seen through it. Mount the whole volume as a directory and point fileSource at it`
          : `meshless: ${f.path} is mounted from inside a kubelet generation directory (${f.entry.root}), as a subPath mount does: rotations are never seen through it. Mount the whole volume instead`,
      );
    }
  }
}

/**
 * A Source that serves the credential mounted in `dir` (layout detected: Kubernetes TLS Secret,
 * Istio, spiffe-helper, GKE) or in three explicit files, and rotates it live. Resolves after the
 * first valid load; rejects with the coded MeshlessError when the first load is bad.
 *
 * Every generation is read whole (cert, key and bundle from one `..data` target, re-read if it
 * moved), validated by `loadCredential` (plus: identity unchanged unless `expectIdentity` or
 * `allowIdentityChange` allows it) and only then served. A bad generation keeps the previous one
 * serving, emits `error` (to listeners only) and turns health `stale` until the next good read.
 *
 * Federated bundles (`federation: { td: file }`, `bundleMap: file`; see docs/federation.md) are
 * read, validated and watched the same way, on a watch of their own (they usually come from
 * another mount). They keep their own last good: a broken bundle file is reported (error,
 * health `stale`, the file and trust domain named) while our own certificate still rotates, and
 * a refused own generation does not hold back a partner's new CA. A trust domain in both takes
 * its `federation` file; a bundle for our own trust domain is ignored (our `ca` wins); both are
 * logged once.
 *
 * Triggers: chokidar events (debounced, then one confirming re-read), a periodic re-check by
 * content hash, and `reload()`. Timers and watchers never keep the process alive.
 */
export async function fileSource(location: FileSourceLocation, options: FileSourceOptions = {}): Promise<FileSource> {
  checkLocation(location);
  const resolved = resolveFileSourceOptions(options);
  const trustFiles = resolveTrustFiles(location);
  const { files, layout } = await resolveFiles(location);
  const label = location.dir !== undefined ? path.resolve(location.dir) : files.cert;
  const source = new FileSourceImpl(files, layout, trustFiles, label, resolved);
  await source.start();
  return source;
}
