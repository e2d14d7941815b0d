import type { IncomingMessage, ServerResponse } from 'node:http';
import type https from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { ConnectionRegistry } from './server-connections.js';

/**
 * Puts the registry in front of every listener of the server's request events: a request on a
 * revoked connection is answered by meshless and never reaches a listener — those added later
 * (Express, `server.on('request')`) included, which `prependListener` alone cannot promise since
 * an EventEmitter has no way to stop propagation. The cost per request is a few string
 * comparisons on the event name, one WeakMap lookup on the socket and one clock read; other
 * events pass straight through (fixed parameters and `arguments`: no array per emit).
 *
 * Gated: `request`, `checkContinue`, `checkExpectation` (a request and its response) and
 * `upgrade`, `connect` (the raw socket).
 */
export function gateRequests(server: https.Server, connections: ConnectionRegistry): void {
  const emit = server.emit;
  Object.defineProperty(server, 'emit', {
    configurable: true,
    writable: true,
    enumerable: false,
    value: function gatedEmit(this: https.Server, event: string | symbol, first?: unknown, second?: unknown): boolean {
      if (event === 'request' || event === 'checkContinue' || event === 'checkExpectation') {
        if (!connections.admit(first as IncomingMessage, second as ServerResponse)) return true;
      } else if (event === 'upgrade' || event === 'connect') {
        if (!connections.admitSocket((first as IncomingMessage).socket as TLSSocket)) return true;
      }
      // eslint-disable-next-line prefer-rest-params
      return (emit as (...args: unknown[]) => boolean).apply(this, arguments as unknown as unknown[]);
    },
  });
}
