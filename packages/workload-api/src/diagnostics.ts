import diagnostics_channel from 'node:diagnostics_channel';

/**
 * `node:diagnostics_channel` channels of the Workload API source, besides core's
 * `meshless:source:update|error|health` (which it publishes too, like `fileSource`). Messages
 * never carry key bytes.
 */
export const workloadApiChannels = {
  /** `{ source, address, attempt }` — the server accepted a `FetchX509SVID` stream. */
  connected: diagnostics_channel.channel('meshless:workload-api:connected'),
  /**
   * `{ source, address, code, details, retry, retryInMs? }` — a stream ended or could not be
   * opened. `code` is the gRPC status name (`UNAVAILABLE`, `PERMISSION_DENIED`, `OK` for a stream
   * the server closed); `retry` false for InvalidArgument and Unimplemented.
   */
  disconnected: diagnostics_channel.channel('meshless:workload-api:disconnected'),
  /**
   * `{ source, address, outcome, generation, spiffeId?, code? }` — one message was handled:
   * `outcome` is `update` (a new generation is served), `unchanged` or `refused` (`code` says why:
   * `MESHLESS_ERR_KEY_MISMATCH`, `MESHLESS_ERR_CHAIN_UNTRUSTED`, `MESHLESS_ERR_WORKLOAD_API_MESSAGE_INVALID`…).
   */
  message: diagnostics_channel.channel('meshless:workload-api:message'),
} as const;
