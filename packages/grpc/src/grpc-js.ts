/**
 * The application's own copy of @grpc/grpc-js (a peer dependency, never bundled): grpc-js checks
 * credentials and interceptors with `instanceof`, so they must come from the copy the
 * application builds its `Server` and `Client` with.
 */
import grpc from '@grpc/grpc-js';

export { grpc };

/** grpc-js's `AuthContext` (not exported by name from its index). */
export type AuthContext = ReturnType<grpc.ServerInterceptingCallInterface['getAuthContext']>;

/** What grpc-js hands to `ServerCredentials#_addWatcher`. */
export type SecureContextWatcher = Parameters<grpc.ServerCredentials['_addWatcher']>[0];
