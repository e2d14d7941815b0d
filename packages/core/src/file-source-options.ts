import { MAX_TIMER_MS } from './long-timeout.js';
import type { Rules } from './allow-list.js';
import { MeshlessError, codes } from './errors.js';
import type { Logger } from './logger.js';

/**
 * Federated trust bundles a file source reads and watches with the credential, usually from
 * another mount (a trust-manager ConfigMap, a SPIRE bundle publisher). See docs/federation.md.
 */
export interface FederationFiles {
  /**
   * Trust domain (`partner.example` or `spiffe://partner.example`) → a file holding its bundle:
   * PEM CA certificates or a SPIFFE bundle (JWK Set), told apart by content.
   */
  federation?: Readonly<Record<string, string>>;
  /**
   * A bundle map file, as grpc-go reads it: `{ "trust_domains": { "partner.example": <SPIFFE
   * bundle>, … } }`. With `federation` too, a trust domain in both takes its `federation` file.
   */
  bundleMap?: string;
}

/** Where `fileSource` reads from: a mounted directory (layout detected) or three explicit files, plus federated bundles. */
export type FileSourceLocation = (
  | { dir: string; certFile?: string; keyFile?: string; caFile?: string }
  | { dir?: undefined; certFile: string; keyFile: string; caFile: string }
) &
  FederationFiles;

/** Options of `fileSource`. Every duration is in milliseconds. */
export interface FileSourceOptions {
  /**
   * Rules our own identity must pass, at the first load and at every rotation (e.g.
   * `'spiffe://prod.example/ns/pay/sa/api'`). When given, any identity these rules allow may
   * replace the current one.
   */
  expectIdentity?: Rules;
  /**
   * Without `expectIdentity`, a rotation must keep the identity of the first generation (its
   * SPIFFE ID, else DNS name, else CN); a different one is refused with IDENTITY_MISMATCH.
   * `true` accepts any identity. Default `false`.
   */
  allowIdentityChange?: boolean;
  /** Wait after the last file event before reading. Default 20. */
  debounceMs?: number;
  /**
   * Delay of the confirming re-read after a burst of events (chokidar drops a second change
   * within 50 ms), and the quiet period before a failed event-driven read is reported. Default 100.
   */
  settleMs?: number;
  /** Periodic safety re-read (compared by content hash). Default 60 000; 0 turns it off. */
  recheckIntervalMs?: number;
  /** Poll the files with stat at this interval instead of inotify (NFS, SMB, FUSE). Default: inotify. */
  pollIntervalMs?: number;
  /** Share of the lifetime after which health is `expiring`. Default 2/3. */
  renewAtShare?: number;
  /** Tolerance for notBefore / notAfter checks at load time. Default 0. */
  clockSkewMs?: number;
  /** Passphrase of an encrypted private key. */
  passphrase?: string;
  /** pino-compatible logger; default pino at level `warn` to stderr. */
  logger?: Logger;
}

/** Options with every default filled in. */
export interface ResolvedFileSourceOptions {
  expectIdentity: Rules | undefined;
  allowIdentityChange: boolean;
  debounceMs: number;
  settleMs: number;
  recheckIntervalMs: number;
  pollIntervalMs: number | undefined;
  renewAtShare: number;
  clockSkewMs: number;
  passphrase: string | undefined;
  logger: Logger | undefined;
}

function invalid(field: string, why: string): MeshlessError {
  return new MeshlessError(codes.INVALID_OPTION, `fileSource option ${field} ${why}`, { field });
}

function duration(options: FileSourceOptions, field: keyof FileSourceOptions, fallback: number, { min = 0, max = MAX_TIMER_MS } = {}): number {
  const value = options[field];
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw invalid(field, `must be a number of milliseconds between ${min} and ${max} (got ${String(value)})`);
  }
  return value;
}

/** Validates the options and fills in defaults; throws INVALID_OPTION naming the option. */
export function resolveFileSourceOptions(options: FileSourceOptions = {}): ResolvedFileSourceOptions {
  if (typeof options !== 'object' || options === null) throw invalid('options', 'must be an object');
  const renewAtShare = options.renewAtShare ?? 2 / 3;
  if (typeof renewAtShare !== 'number' || !(renewAtShare > 0 && renewAtShare <= 1)) {
    throw invalid('renewAtShare', `must be a share of the lifetime in (0, 1] (got ${String(renewAtShare)})`);
  }
  if (options.passphrase !== undefined && typeof options.passphrase !== 'string') throw invalid('passphrase', 'must be a string');
  if (options.allowIdentityChange !== undefined && typeof options.allowIdentityChange !== 'boolean') throw invalid('allowIdentityChange', 'must be a boolean');
  return {
    expectIdentity: options.expectIdentity,
    allowIdentityChange: options.allowIdentityChange ?? false,
    debounceMs: duration(options, 'debounceMs', 20, { max: 60_000 }),
    settleMs: duration(options, 'settleMs', 100, { max: 60_000 }),
    recheckIntervalMs: duration(options, 'recheckIntervalMs', 60_000),
    pollIntervalMs: options.pollIntervalMs === undefined ? undefined : duration(options, 'pollIntervalMs', 0, { min: 1 }),
    renewAtShare,
    clockSkewMs: duration(options, 'clockSkewMs', 0),
    passphrase: options.passphrase,
    logger: options.logger,
  };
}

/** Checks the location argument's shape; throws INVALID_OPTION. */
export function checkLocation(location: unknown): asserts location is FileSourceLocation {
  if (typeof location !== 'object' || location === null) {
    throw invalid('location', 'must be { dir } or { certFile, keyFile, caFile }');
  }
  const l = location as Record<string, unknown>;
  for (const field of ['dir', 'certFile', 'keyFile', 'caFile']) {
    if (l[field] !== undefined && (typeof l[field] !== 'string' || (l[field] as string).length === 0)) {
      throw invalid(field, 'must be a non-empty path string');
    }
  }
  if (l.dir === undefined && (l.certFile === undefined || l.keyFile === undefined || l.caFile === undefined)) {
    throw invalid('location', 'must be { dir } or all of { certFile, keyFile, caFile }');
  }
}
