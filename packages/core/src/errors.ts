/**
 * Every error meshless throws or emits is a `MeshlessError` with a stable `code`.
 * Messages say what failed and what to do; they name the file or peer concerned and never
 * contain private key bytes.
 */

export const codes = {
  /** A string is not a valid SPIFFE ID (the message names the rule it breaks). */
  INVALID_SPIFFE_ID: 'MESHLESS_ERR_INVALID_SPIFFE_ID',
  /** An allow-list rule cannot be parsed. */
  INVALID_RULE: 'MESHLESS_ERR_INVALID_RULE',
  /** An allow-list has no rules: nothing would be allowed, so it is refused at construction. */
  EMPTY_ALLOW_LIST: 'MESHLESS_ERR_EMPTY_ALLOW_LIST',
  /** An option is missing or has the wrong type or value. */
  INVALID_OPTION: 'MESHLESS_ERR_INVALID_OPTION',
  /** A PEM input (cert, key or bundle) is empty. */
  PEM_EMPTY: 'MESHLESS_ERR_PEM_EMPTY',
  /** A PEM input has no parsable block of the expected type. */
  PEM_INVALID: 'MESHLESS_ERR_PEM_INVALID',
  /** The private key cannot be parsed (or its passphrase is wrong). */
  KEY_INVALID: 'MESHLESS_ERR_KEY_INVALID',
  /** The private key is encrypted and no passphrase was given. */
  KEY_ENCRYPTED: 'MESHLESS_ERR_KEY_ENCRYPTED',
  /** The private key does not belong to the leaf certificate. */
  KEY_MISMATCH: 'MESHLESS_ERR_KEY_MISMATCH',
  /** The leaf certificate is a CA certificate: a CA is never a workload identity. */
  LEAF_IS_CA: 'MESHLESS_ERR_LEAF_IS_CA',
  /** The certificate chain does not verify to the trust bundle. */
  CHAIN_UNTRUSTED: 'MESHLESS_ERR_CHAIN_UNTRUSTED',
  /** The certificate's notBefore is in the future. */
  CERT_NOT_YET_VALID: 'MESHLESS_ERR_CERT_NOT_YET_VALID',
  /** The certificate's notAfter has passed. */
  CERT_EXPIRED: 'MESHLESS_ERR_CERT_EXPIRED',
  /** Our own identity is not the one expected (`expectIdentity`). */
  IDENTITY_MISMATCH: 'MESHLESS_ERR_IDENTITY_MISMATCH',
  /** A certificate has no usable identity (no valid SPIFFE ID, DNS name or CN). */
  NO_IDENTITY: 'MESHLESS_ERR_NO_IDENTITY',
  /** No known credential layout was found in a directory. */
  LAYOUT_NOT_FOUND: 'MESHLESS_ERR_LAYOUT_NOT_FOUND',
  /** A credential file cannot be read (missing, a directory, permission denied…). */
  FILE_UNREADABLE: 'MESHLESS_ERR_FILE_UNREADABLE',
  /** The mounted files kept changing while being read; no consistent generation was found. */
  GENERATION_UNSTABLE: 'MESHLESS_ERR_GENERATION_UNSTABLE',
  /** The source was closed. */
  SOURCE_CLOSED: 'MESHLESS_ERR_SOURCE_CLOSED',
  /** The peer presented a verified certificate whose identity is not allowed. */
  PEER_DENIED: 'MESHLESS_ERR_PEER_DENIED',
  /** The peer presented no certificate, or one that does not verify to the trust bundle. */
  PEER_UNVERIFIED: 'MESHLESS_ERR_PEER_UNVERIFIED',
  /** A trust bundle (SPIFFE bundle, bundle map, federated PEM) is malformed or names a bad trust domain. */
  BUNDLE_INVALID: 'MESHLESS_ERR_BUNDLE_INVALID',
  /** A peer's SPIFFE ID names a trust domain for which no bundle is configured. */
  NO_BUNDLE: 'MESHLESS_ERR_NO_BUNDLE',
  /** The TLS handshake did not complete in time. */
  HANDSHAKE_TIMEOUT: 'MESHLESS_ERR_HANDSHAKE_TIMEOUT',
  /** A policy file (`policyFile`) cannot be read, parsed or compiled; the last good policy stays. */
  POLICY_INVALID: 'MESHLESS_ERR_POLICY_INVALID',
  /** A plaintext (`http://`) request or connection was refused: mTLS is required (see `plaintextOrigins`, `mode`). */
  PLAINTEXT_REFUSED: 'MESHLESS_ERR_PLAINTEXT_REFUSED',
  /** A SPIFFE Workload API address is missing or not `unix:///abs/path`, `unix:/abs/path` or `tcp://<ip>:<port>`. */
  WORKLOAD_API_ADDRESS_INVALID: 'MESHLESS_ERR_WORKLOAD_API_ADDRESS_INVALID',
  /** No valid X.509-SVID arrived from the Workload API within `firstUpdateTimeoutMs`. */
  WORKLOAD_API_TIMEOUT: 'MESHLESS_ERR_WORKLOAD_API_TIMEOUT',
  /** The Workload API refused the call for good (InvalidArgument, Unimplemented…): not retried. */
  WORKLOAD_API_CALL_REFUSED: 'MESHLESS_ERR_WORKLOAD_API_CALL_REFUSED',
  /** The Workload API stream broke or cannot be reached; the last SVID keeps serving while it reconnects. */
  WORKLOAD_API_UNAVAILABLE: 'MESHLESS_ERR_WORKLOAD_API_UNAVAILABLE',
  /** A Workload API message is malformed (no SVID, a missing field, DER that does not parse, an SVID ID that differs from its certificate's). */
  WORKLOAD_API_MESSAGE_INVALID: 'MESHLESS_ERR_WORKLOAD_API_MESSAGE_INVALID',
  /** No SVID of a Workload API message matches `hint` (or `pick` chose none). */
  WORKLOAD_API_SVID_NOT_FOUND: 'MESHLESS_ERR_WORKLOAD_API_SVID_NOT_FOUND',
  /** The Workload API answered PermissionDenied to a one-shot fetch (`meshless inspect --workload-api`): no identity for this workload. */
  WORKLOAD_API_PERMISSION_DENIED: 'MESHLESS_ERR_WORKLOAD_API_PERMISSION_DENIED',
  /** The Workload API withdrew our identity (PermissionDenied after an SVID was served). */
  IDENTITY_WITHDRAWN: 'MESHLESS_ERR_IDENTITY_WITHDRAWN',
} as const;

export type MeshlessErrorCode = (typeof codes)[keyof typeof codes];

export interface MeshlessErrorDetails {
  /** The underlying error, kept for debugging. */
  cause?: unknown;
  /** The file concerned, when there is one. */
  file?: string;
  /** The field concerned (`cert`, `key`, `ca`, an option name…). */
  field?: string;
  /** The peer concerned: its identity as a string (SPIFFE ID, DNS name or `cn:…`). */
  peer?: string;
  /** The allow-list rule concerned. */
  rule?: string;
}

const brand = Symbol.for('meshless.MeshlessError');

/**
 * The one error class of meshless. `instanceof MeshlessError` works across two copies of the
 * package (the check looks for a global symbol brand, not the prototype chain).
 */
export class MeshlessError extends Error {
  readonly code: MeshlessErrorCode;
  readonly file?: string;
  readonly field?: string;
  readonly peer?: string;
  readonly rule?: string;

  constructor(code: MeshlessErrorCode, message: string, details: MeshlessErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    if (details.file !== undefined) this.file = details.file;
    if (details.field !== undefined) this.field = details.field;
    if (details.peer !== undefined) this.peer = details.peer;
    if (details.rule !== undefined) this.rule = details.rule;
    Object.defineProperty(this, brand, { value: true });
  }

  override get name(): string {
    return 'MeshlessError';
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[brand] === true;
  }
}

/** True when `err` is a MeshlessError (optionally with the given code). */
export function isMeshlessError(err: unknown, code?: MeshlessErrorCode): err is MeshlessError {
  return err instanceof MeshlessError && (code === undefined || err.code === code);
}
