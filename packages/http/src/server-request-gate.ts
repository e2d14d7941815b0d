import type { IncomingMessage, ServerResponse } from 'node:http';
import type https from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { ConnectionRegistry } from './server-connections.js';

/** Events that hand a request and its response to application code. */
const REQUEST_EVENTS = new Set(['request', 'checkContinue', 'checkExpectation']);
/** Events that hand the raw socket to application code. */
const SOCKET_EVENTS = new Set(['upgrade', 'connect']);

/**
 * Puts the registry in front of every listener of the server's request events: a request on a
 * revoked connection is answered by meshless and never reaches a listener — those added later
 * (Express, `server.on('request')`) included, which `prependListener` alone cannot promise since
 * an EventEmitter has no way to stop propagation. The cost per request is one Set lookup on the
 * event name and one WeakMap lookup on the socket.
 */
export function gateRequests(server: https.Server, connections: ConnectionRegistry): void {
  const emit = server.emit;
  Object.defineProperty(server, 'emit', {
    configurable: true,
    writable: true,
    enumerable: false,
    value: function gatedEmit(this: https.Server, event: string | symbol, ...args: unknown[]): boolean {
      if (typeof event === 'string') {
        if (REQUEST_EVENTS.has(event)) {
          if (!connections.admit(args[0] as IncomingMessage, args[1] as ServerResponse)) return true;
        } else if (SOCKET_EVENTS.has(event)) {
          if (!connections.admitSocket((args[0] as IncomingMessage).socket as TLSSocket)) return true;
        }
      }
      return (emit as (event: string | symbol, ...args: unknown[]) => boolean).call(this, event, ...args);
    },
  });
}
