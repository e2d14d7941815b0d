/**
 * `@meshless/core/internal`: helpers meshless's own packages (@meshless/http, @meshless/grpc,
 * @meshless/workload-api, @meshless/nest, @meshless/testing, the CLI) share. Unstable: not part of
 * the public API, and any release, patch releases included, may change or remove what is here.
 * Applications import `@meshless/core`.
 */
export { BoundedMap } from './bounded-map.js';
export { setLongTimeout, MAX_TIMER_MS, type LongTimeout } from './long-timeout.js';
export { spiffeIdProblem, trustDomainProblem } from './spiffe-id.js';
export { parseSubjectAltName, commonNameOf, type SubjectAltNames } from './identity.js';
export { isAuthorizer } from './allow-list.js';
export { trustDomainKey } from './credential.js';
export { verifyChain } from './chain.js';
export { parseCertificates, certificatesToPem } from './pem.js';
export { readTrustSet, resolveTrustFiles, type TrustSet } from './file-source-trust.js';
export { clientSecureContextOptions, serverIdentityCheck, peerOfCertificate, peerDeniedError } from './tls-options.js';
export { toSource, isSource, healthStateOf } from './source.js';
export { peerCertificateOf, acceptedPeerCertificateOf, checkAcceptedConnection, presentedChainOf, sentChainOf, socketPeer, rememberSocketPeer, cachedSocketPeer } from './connection.js';
export { refusal } from './verifier.js';
export { sessionPeerCertificate, withoutPeerCertificate } from './tls-session.js';
export { credentialLayouts, resolveFiles, type CredentialLayout, type CredentialFiles, type FileLocation, type ResolvedFiles } from './layout.js';
export { parseMountInfo, frozenMounts, findFrozenMounts, type MountInfoEntry, type FrozenMountWarning } from './mount-info.js';
export { parsePolicy, type ParsedPolicy, type PolicyRule } from './policy-parse.js';
export { describeRule } from './policy-describe.js';
export { onPolicyChange, isLivePolicy, forwardPolicyChanges, POLICY_CHANGES, type PolicyChange, type PolicyChangeListener } from './policy-changes.js';
export { dryRunAuthorizer } from './dry-run.js';
export { SourceMetrics, type ReloadOutcome } from './file-source-metrics.js';
export { HealthTimer, sourceHealthState, nextHealthChangeAt } from './health-timer.js';
export { SourceReporter, type SourceReporterOptions } from './source-reporter.js';
export { hideSecretProperties, TLS_SERVER_SECRET_PROPERTIES } from './hide-secrets.js';
export { SlicedSweep, DEFAULT_SLICE_MS, type SweepStats } from './sliced-sweep.js';
export { resolveOptions, compilePolicy, compileRules, optionError, type WrapperName, type WrapperSpec, type ResolvedOptions, type TlsPolicyField } from './wrapper-options.js';
