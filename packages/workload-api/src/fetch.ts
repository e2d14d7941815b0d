import type { X509Certificate } from 'node:crypto';
import { MeshlessError, codes, isMeshlessError, type Credential } from '@meshless/core';
import { parseAddress } from './address.js';
import { DerError, parseDerCertificates } from './der.js';
import { ProtoError, decodeX509SvidResponse, type X509SvidResponseMessage } from './proto.js';
import { openX509SvidStream, type CallEnd } from './stream.js';
import { buildCredential } from './svid.js';

/** One SVID of a fetched message, as `meshless inspect --workload-api` shows it. */
export interface FetchedSvid {
  readonly index: number;
  readonly spiffeId: string;
  readonly hint: string;
  /** The chain (leaf first); empty when it does not parse (see `problem`). */
  readonly chain: readonly X509Certificate[];
  /** The credential the source would build from this SVID, when it validates. */
  readonly credential?: Credential;
  /** Why a source would refuse this SVID (coded), when it would. */
  readonly problem?: MeshlessError;
}

/** What one `FetchX509SVID` message holds. */
export interface FetchedSvids {
  readonly address: string;
  readonly svids: readonly FetchedSvid[];
  /** Trust domain (as keyed on the wire: `spiffe://partner.example`) → CA certificates, or the parse problem. */
  readonly federatedBundles: ReadonlyMap<string, readonly X509Certificate[] | MeshlessError>;
  readonly crlCount: number;
}

/**
 * Reads the first `FetchX509SVID` message of the Workload API and closes the stream: every SVID
 * with its validation result (as `workloadApiSource` would judge it), and the federated bundles.
 * Rejects with a coded error after `timeoutMs` (default 10 s) or when the call fails.
 */
export function fetchX509Svids(options: { address?: string; timeoutMs?: number } = {}): Promise<FetchedSvids> {
  const where = parseAddress(options.address);
  const timeoutMs = options.timeoutMs ?? 10_000;
  const label = `the Workload API at ${where.address}`;
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (fn: () => void): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      stream.cancel();
      fn();
    };
    let lastEnd: CallEnd | undefined;
    const timer = setTimeout(
      () =>
        finish(() =>
          reject(new MeshlessError(codes.WORKLOAD_API_TIMEOUT, `no message from ${label} within ${timeoutMs} ms; is the agent running and its socket mounted, and is this workload registered?`, { field: 'address' })),
        ),
      timeoutMs,
    );
    const stream = openX509SvidStream(where.target, {
      onConnected: () => undefined,
      onMessage: (bytes) =>
        finish(() => {
          try {
            resolve(describeMessage(decodeX509SvidResponse(bytes), where.address, label));
          } catch (err) {
            reject(err instanceof ProtoError ? new MeshlessError(codes.WORKLOAD_API_MESSAGE_INVALID, `a message from ${label} is not a valid X509SVIDResponse (${err.message})`) : err);
          }
        }),
      onEnd: (end) => {
        lastEnd = end;
        const code = end.code === 7 ? codes.WORKLOAD_API_PERMISSION_DENIED : end.code === 3 || end.code === 12 ? codes.WORKLOAD_API_CALL_REFUSED : codes.WORKLOAD_API_UNAVAILABLE;
        const hint = end.code === 7 ? 'the agent has no identity for this workload: check its registration entries (spire-server entry show)' : 'is the agent running and its socket mounted here?';
        finish(() => reject(new MeshlessError(code, `${label} answered ${lastEnd!.codeName}${end.details ? ` (${end.details})` : ''}; ${hint}`, { field: 'address' })));
      },
    });
  });
}

function describeMessage(message: X509SvidResponseMessage, address: string, label: string): FetchedSvids {
  const svids = message.svids.map((s, index): FetchedSvid => {
    let chain: X509Certificate[] = [];
    try {
      chain = parseDerCertificates(s.x509Svid);
    } catch {
      chain = [];
    }
    try {
      const built = buildCredential(message, { label, hint: undefined, pick: () => index, expectIdentity: undefined, clockSkewMs: 0, generation: 1 });
      return { index, spiffeId: s.spiffeId, hint: s.hint, chain, credential: built.credential };
    } catch (err) {
      if (!isMeshlessError(err)) throw err;
      return { index, spiffeId: s.spiffeId, hint: s.hint, chain, problem: err };
    }
  });
  const federatedBundles = new Map<string, readonly X509Certificate[] | MeshlessError>();
  for (const [td, der] of message.federatedBundles) {
    try {
      federatedBundles.set(td, parseDerCertificates(der));
    } catch (err) {
      federatedBundles.set(td, new MeshlessError(codes.WORKLOAD_API_MESSAGE_INVALID, `federated bundle ${td} is not DER certificates: ${err instanceof DerError ? err.message : String(err)}`));
    }
  }
  return { address, svids, federatedBundles, crlCount: message.crl.length };
}
