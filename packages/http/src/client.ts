/**
 * The meshless HTTP client: an undici Dispatcher that proves who it is (our credential, rotated
 * live) and checks who answers (allow rules per origin, on every connection, resumed ones too).
 */
import { MeshlessAgent } from './agent-dispatcher.js';
import type { CreateAgentOptions } from './agent-options.js';

export { MeshlessAgent, type ServerAllowed, type ServerRefused } from './agent-dispatcher.js';
export type { CreateAgentOptions } from './agent-options.js';
export type { AllowFor } from './agent-allow.js';
export { peerOfResponse, PEER_CONTEXT_KEY, type PeerContext, type PeerContextCarrier } from './agent-peer-context.js';

/**
 * Creates an undici Dispatcher for mutual TLS: every connection presents the source's current
 * credential and is handed to undici only after the server's identity passes `allow` (the SPIFFE
 * check replaces the host-name check; `dns:` rules give the classic one). Rotations and
 * `agent.setAllow(…)` take effect for new requests at once; requests in flight finish on their
 * connections, which then close.
 *
 * @example
 * import { request, fetch } from 'undici';
 * const agent = createAgent({ source, allow: 'spiffe://prod.example/ns/pay/sa/api' });
 * const res = await request('https://payments.internal:8443/charge', { dispatcher: agent });
 * const res2 = await fetch('https://payments.internal:8443/health', { dispatcher: agent });
 */
export function createAgent(options: CreateAgentOptions): MeshlessAgent {
  return new MeshlessAgent(options);
}
