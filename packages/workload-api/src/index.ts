/**
 * @meshless/workload-api — X.509-SVIDs and trust bundles straight from the SPIFFE Workload API
 * (SPIRE's agent socket) as a rotating meshless `Source`.
 */
import { parseAddress } from './address.js';
import { resolveOptions, type WorkloadApiSourceOptions } from './options.js';
import { WorkloadApiSourceImpl, type WorkloadApiSource } from './source.js';

export { parseAddress, SOCKET_ENV, type WorkloadApiAddress } from './address.js';
export type { WorkloadApiSourceOptions, WithdrawnBehaviour } from './options.js';
export type { WorkloadApiSource } from './source.js';
export type { SvidChoice, PickSvid } from './svid.js';
export { workloadApiChannels } from './diagnostics.js';
export { FETCH_X509_SVID, SECURITY_HEADER } from './stream.js';
export { fetchX509Svids, type FetchedSvids, type FetchedSvid } from './fetch.js';

/**
 * A Source served by the SPIFFE Workload API (`FetchX509SVID` stream): resolves on the first
 * valid SVID, rejects after `firstUpdateTimeoutMs` (default 30 s) with
 * `MESHLESS_ERR_WORKLOAD_API_TIMEOUT` naming the address, the last gRPC status and what to check.
 *
 * Every message is validated as a file generation is (DER parses, key matches the leaf, chain
 * verifies to the SVID's own bundle, validity, identity rules); a bad one is refused whole and the
 * last good SVID keeps serving. `federated_bundles` become `credential.bundles` (a trust domain
 * missing from a later message is dropped). The stream reconnects with capped exponential
 * backoff with full jitter; InvalidArgument and Unimplemented are not retried.
 */
export async function workloadApiSource(options: WorkloadApiSourceOptions = {}): Promise<WorkloadApiSource> {
  const resolved = resolveOptions(options);
  const where = parseAddress(options.address);
  const source = new WorkloadApiSourceImpl(where, resolved);
  await source.start();
  return source;
}
