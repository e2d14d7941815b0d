/**
 * @meshless/testing — test fixtures for meshless: an in-memory CA that mints SPIFFE
 * certificates, and directory writers that update files the way the kubelet (or a careless
 * script) does.
 */
export { createTestCA } from './test-ca.js';
export { loadTestCA, type LoadTestCAOptions } from './load-test-ca.js';
export type { TestCA } from './minting-ca.js';
export type { TestCAOptions, IssueOptions, IssuedCertificate, ExtendedKeyUsageName } from './options.js';
export { keyTypes, type KeyType } from './key-types.js';
export { kubernetesVolume, type KubernetesVolume, type KubernetesVolumeOptions } from './kubernetes-volume.js';
export { inPlaceWriter, type InPlaceWriter, type InPlaceWriteOptions } from './in-place-writer.js';
export type { FileSet } from './file-set.js';
export type { FileModeOptions } from './file-mode.js';
export { manualSource, type ManualSource } from './manual-source.js';
export { waitFor } from './wait-for.js';
export { recordingLogger, type RecordingLogger, type LogEntry } from './recording-logger.js';
export { twoTrustDomains, type TwoTrustDomains } from './two-trust-domains.js';
