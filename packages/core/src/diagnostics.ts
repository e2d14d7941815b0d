import diagnostics_channel from 'node:diagnostics_channel';

/**
 * `node:diagnostics_channel` channels meshless publishes to. Messages never carry key bytes.
 * Subscribe with `diagnostics_channel.subscribe(channels.sourceUpdate.name, fn)`.
 */
export const channels = {
  /** `{ source, credential, previous }` — a new generation is served. */
  sourceUpdate: diagnostics_channel.channel('meshless:source:update'),
  /** `{ source, error }` — a reload failed; the previous generation stays. */
  sourceError: diagnostics_channel.channel('meshless:source:error'),
  /** `{ source, health }` — the health state changed. */
  sourceHealth: diagnostics_channel.channel('meshless:source:health'),
  /**
   * `{ side: 'server'|'client', peer?, decision?, failure, reason, remoteAddress? }` — a peer was
   * refused. `failure`: `unverified` (no certificate, or one that does not verify), `denied` (the
   * allow-list refuses it), `handshake` (the TLS handshake failed), `handshake-timeout`.
   * gRPC events also carry `protocol: 'grpc'`; the HTTP client's carry `origin` and `resumed`.
   */
  peerRefused: diagnostics_channel.channel('meshless:peer:refused'),
  /** `{ side, peer, resumed, protocol?, origin? }` — a peer was verified and allowed on a new connection. */
  peerAllowed: diagnostics_channel.channel('meshless:peer:allowed'),
  /** `{ scope, peer, decision, rule?, reason }` — a dry-run policy would have denied this peer (it was let through). */
  policyWouldDeny: diagnostics_channel.channel('meshless:policy:would-deny'),
  /** `{ file, generation, allow, deny, dryRun }` — a policy file change was applied. */
  policyUpdate: diagnostics_channel.channel('meshless:policy:update'),
  /** `{ file, error }` — a policy file change was refused; the last good policy stays. */
  policyError: diagnostics_channel.channel('meshless:policy:error'),
  /** `{ side, remoteAddress?, method?, origin? }` — a plaintext request (permissive server, or a client's `plaintextOrigins`). */
  plaintextRequest: diagnostics_channel.channel('meshless:plaintext:request'),
  /**
   * `{ side, protocol?, generation, connections, retired, slices, maxSliceMs, maxSliceCpuMs, busyMs, durationMs, superseded }`
   * — a server finished re-checking its live connections after a trust or policy change (in
   * slices across event-loop turns: `maxSliceMs` is the longest the review held the event loop).
   */
  connectionsReviewed: diagnostics_channel.channel('meshless:connections:reviewed'),
} as const;
