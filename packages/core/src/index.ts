// @meshless/core's public API: the domain objects and entry points an application uses, each
// documented in docs/. What meshless's own packages share besides is in ./internal.ts
// (`@meshless/core/internal`, unstable).
export { MeshlessError, codes, isMeshlessError, type MeshlessErrorCode, type MeshlessErrorDetails } from './errors.js';
export { SpiffeId } from './spiffe-id.js';
export { createPeer, type Peer, type PeerFields } from './peer.js';
export { identityOf } from './identity.js';
export { allowList, type Authorizer, type Decision, type Rule, type RuleFunction, type Rules, type DenyFunction, type DenyRules, type AllowListOptions } from './allow-list.js';
export { policyFile, type PolicyFile, type PolicyFileOptions, type PolicyFileState, type PolicyFileEvents } from './policy-file.js';
export { isDryRunDecision, type DryRunDecision, type DryRunOptions } from './dry-run.js';
export { loadCredential, privateKeyPem, type Credential, type CredentialInput, type FederatedBundles, type LoadCredentialOptions } from './credential.js';
export { fileSource, type FileSource, type FileSourceLocation, type FileSourceOptions, type FederationFiles, type TrustFiles } from './file-source.js';
export { staticSource, type Source, type SourceEvents, type Health, type HealthState, type CredentialProvider } from './source.js';
export { serverTlsOptions, clientTlsOptions, type TlsPolicy, type ServerTlsPolicy, type ClientTlsPolicy } from './tls-options.js';
export { checkConnection, type ConnectionCheck, type CheckConnectionOptions } from './connection.js';
export { verifyPeer, type PeerCheck, type PresentedChain, type VerifyOptions, type RefusalClass } from './verifier.js';
export { parseSpiffeBundle, type SpiffeBundle, type ParseSpiffeBundleOptions } from './spiffe-bundle.js';
export { parseBundleMap, type ParseBundleMapOptions } from './bundle-map.js';
export { formatSpiffeBundle, formatBundleMap, type FormatSpiffeBundleOptions } from './spiffe-bundle-format.js';
export { channels } from './diagnostics.js';
export { meshlessMetrics, type MeshlessMetrics } from './metrics.js';
export { loggerOf, silentLogger, type Logger } from './logger.js';
