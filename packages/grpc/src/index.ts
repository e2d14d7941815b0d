/**
 * @meshless/grpc — mutual TLS for @grpc/grpc-js (a peer dependency): rotating server and channel
 * credentials, identity checks on every call, per-method allow-lists, the caller's Peer in
 * handlers.
 */
export { serverCredentials, type ServerCredentialsOptions } from './server-credentials.js';
export { channelCredentials, type ChannelCredentialsOptions } from './channel-credentials.js';
export { authorizeMethods, type MethodRules, type AuthorizeMethodsOptions } from './authorize-methods.js';
export { peerOf, type CallWithAuthContext } from './peer-of.js';
export { serverOptions, DEFAULT_MAX_CONNECTION_AGE_MS } from './server-options.js';
export { SourceCertificateProvider } from './certificate-provider.js';
