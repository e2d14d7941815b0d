import type { IncomingMessage, ServerResponse } from 'node:http';
import { type CredentialProvider, type HealthState } from '@meshless/core';
import { toSource } from '@meshless/core/internal';

/** The JSON body of {@link healthHandler}. */
export interface HealthBody {
  /** `ok` (200) or `unavailable` (503). */
  readonly status: 'ok' | 'unavailable';
  readonly state: HealthState;
  /** Own identity (SPIFFE ID, DNS name or `cn:`). */
  readonly identity: string;
  readonly generation: number;
  readonly notAfter: string;
  readonly lastReloadAt: string;
  /** Code of the last failed reload, while the source is stale. */
  readonly lastError?: string;
}

/**
 * A readiness handler for a credential source: `200` while the credential is fresh or expiring
 * (or stale but still valid), `503` once the served certificate has expired (stale with an expired
 * certificate, or expired). Works as a plain `(req, res)` handler and as Express middleware.
 * Serve it where the prober can reach it (a kubelet probe presents no client certificate, so
 * use a separate plain-HTTP port or `healthHandler` on a non-mTLS listener).
 */
export function healthHandler(provider: CredentialProvider): (req: IncomingMessage, res: ServerResponse, next?: unknown) => void {
  const source = toSource(provider);
  return (req, res) => {
    const health = source.health();
    const ready = health.state !== 'expired' && health.notAfter.getTime() > Date.now();
    const body: HealthBody = {
      status: ready ? 'ok' : 'unavailable',
      state: health.state,
      identity: String(source.current().identity),
      generation: health.generation,
      notAfter: health.notAfter.toISOString(),
      lastReloadAt: health.lastReloadAt.toISOString(),
      ...(health.lastError === undefined ? {} : { lastError: health.lastError.code }),
    };
    const text = JSON.stringify(body);
    res.statusCode = ready ? 200 : 503;
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Content-Length', Buffer.byteLength(text));
    res.end(req.method === 'HEAD' ? undefined : text);
  };
}
