/**
 * meshless — the command line of the meshless SDK (`meshless ca`, `inspect`, `probe`, `serve`).
 * The functions below are what the commands run, for programs that want them without a shell.
 */
export { main, commands } from './main.js';
export type { Command } from './command.js';
export { inspectDirectory, inspectExitCode, RENEW_AT_SHARE, type InspectReport, type InspectWarning, type CertificateSummary } from './inspect/report.js';
export { detectLayout, type DetectedLayout } from './inspect/detect.js';
export { initCA, loadCA, type StoredCA, type InitOptions } from './ca/store.js';
export { writeLayout, type CredentialPem } from './ca/write-layout.js';
export { knownLayouts, issueLayouts, type IssueLayout, type LayoutFiles } from './layouts.js';
