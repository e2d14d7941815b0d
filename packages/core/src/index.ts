export { MeshlessError, codes, isMeshlessError, type MeshlessErrorCode, type MeshlessErrorDetails } from './errors.js';
export { SpiffeId, spiffeIdProblem, trustDomainProblem } from './spiffe-id.js';
export { createPeer, type Peer, type PeerFields } from './peer.js';
export { identityOf, parseSubjectAltName, commonNameOf, type SubjectAltNames } from './identity.js';
export { allowList, isAuthorizer, type Authorizer, type Decision, type Rule, type RuleFunction, type Rules, type DenyFunction, type DenyRules, type AllowListOptions } from './allow-list.js';
export { loadCredential, privateKeyPem, trustDomainKey, type Credential, type CredentialInput, type FederatedBundles, type LoadCredentialOptions } from './credential.js';
export { verifyChain } from './chain.js';
export { parseCertificates, certificatesToPem } from './pem.js';
export { parseSpiffeBundle, type SpiffeBundle, type ParseSpiffeBundleOptions } from './spiffe-bundle.js';
export { parseBundleMap, type ParseBundleMapOptions } from './bundle-map.js';
export { formatSpiffeBundle, formatBundleMap, type FormatSpiffeBundleOptions } from './spiffe-bundle-format.js';
export { readTrustSet, resolveTrustFiles, type TrustSet } from './file-source-trust.js';
export {
  serverTlsOptions,
  clientTlsOptions,
  clientSecureContextOptions,
  serverIdentityCheck,
  peerOfCertificate,
  peerDeniedError,
  type TlsPolicy,
  type ServerTlsPolicy,
  type ClientTlsPolicy,
} from './tls-options.js';
export { staticSource, toSource, isSource, healthStateOf, type Source, type SourceEvents, type Health, type HealthState, type CredentialProvider } from './source.js';
export { loggerOf, silentLogger, type Logger } from './logger.js';
export { channels } from './diagnostics.js';
export { meshlessMetrics, type MeshlessMetrics } from './metrics.js';
export { checkConnection, peerCertificateOf, presentedChainOf, sentChainOf, socketPeer, rememberSocketPeer, cachedSocketPeer, type ConnectionCheck, type CheckConnectionOptions } from './connection.js';
export { verifyPeer, refusal, type PeerCheck, type PresentedChain, type VerifyOptions, type RefusalClass } from './verifier.js';
export { fileSource, type FileSource, type FileSourceLocation, type FileSourceOptions, type FederationFiles, type TrustFiles } from './file-source.js';
export { credentialLayouts, resolveFiles, type CredentialLayout, type CredentialFiles, type FileLocation, type ResolvedFiles } from './layout.js';
export { parseMountInfo, frozenMounts, findFrozenMounts, type MountInfoEntry, type FrozenMountWarning } from './mount-info.js';
export { policyFile, type PolicyFile, type PolicyFileOptions, type PolicyFileState, type PolicyFileEvents } from './policy-file.js';
export { parsePolicy, type ParsedPolicy, type PolicyRule } from './policy-parse.js';
export { describeRule } from './policy-describe.js';
export { onPolicyChange, isLivePolicy, forwardPolicyChanges, POLICY_CHANGES, type PolicyChange, type PolicyChangeListener } from './policy-changes.js';
export { dryRunAuthorizer, isDryRunDecision, type DryRunDecision, type DryRunOptions } from './dry-run.js';
export { SourceMetrics, type ReloadOutcome } from './file-source-metrics.js';
export { HealthTimer, sourceHealthState, nextHealthChangeAt } from './health-timer.js';
export { hideSecretProperties, TLS_SERVER_SECRET_PROPERTIES } from './hide-secrets.js';
