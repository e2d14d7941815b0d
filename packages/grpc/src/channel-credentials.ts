import type { PeerCertificate } from 'node:tls';
import { MeshlessError, allowList, codes, loggerOf, meshlessMetrics, peerDeniedError, peerOfCertificate, toSource, channels, type CredentialProvider, type Logger, type Rules, type DenyRules } from '@meshless/core';
import { SourceCertificateProvider } from './certificate-provider.js';
import { grpc } from './grpc-js.js';

/** Options of {@link channelCredentials}. */
export interface ChannelCredentialsOptions {
  /** Where our client certificate, key and trust bundle come from: a Source (rotating) or one Credential. */
  source: CredentialProvider;
  /** Which servers we accept (checked instead of the host name): rules or a compiled Authorizer. Required. */
  allow: Rules;
  /** Servers refused even when an allow rule matches. */
  deny?: DenyRules;
  /** pino-compatible logger; default: a shared pino logger at level warn. */
  logger?: Logger;
}

/**
 * grpc-js channel credentials: our certificate from the source as the client certificate (new
 * connections use the newest generation), the source's bundle as the only trusted roots, and the
 * server's identity checked against `allow` in place of the host name (a `dns:` rule gives the
 * classic host-name check). A refused server fails the connection (calls end `UNAVAILABLE`)
 * and is logged with the identity it presented and the reason.
 *
 * @example
 * const client = new Ledger('ledger.pay.svc:8443', channelCredentials({ source, allow: 'spiffe://prod.example/ns/pay/sa/ledger' }));
 */
export function channelCredentials(options: ChannelCredentialsOptions): grpc.ChannelCredentials {
  if (typeof options !== 'object' || options === null) {
    throw new MeshlessError(codes.INVALID_OPTION, 'channelCredentials needs { source, allow }');
  }
  if (options.source === undefined || options.source === null) {
    throw new MeshlessError(codes.INVALID_OPTION, 'channelCredentials needs { source }: a Source (fileSource, staticSource) or a Credential', { field: 'source' });
  }
  if (options.allow === undefined) {
    throw new MeshlessError(codes.INVALID_OPTION, 'channelCredentials needs { allow }: the rules that say which servers to accept', { field: 'allow' });
  }
  const authorize = allowList(options.allow, options.deny === undefined ? {} : { deny: options.deny });
  const logger = loggerOf(options.logger);
  const metrics = meshlessMetrics();
  const provider = new SourceCertificateProvider(toSource(options.source), logger);

  // Node calls this on every full handshake; grpc-js keeps no TLS sessions, so every connection.
  const checkServerIdentity = (host: string, certificate: PeerCertificate): Error | undefined => {
    const peer = peerOfCertificate(certificate);
    if (peer === undefined) {
      logger.warn({ host, failure: 'unverified' }, `meshless grpc client: server ${host} presented no certificate`);
      return new MeshlessError(codes.PEER_UNVERIFIED, `server ${host} presented no certificate`);
    }
    const decision = authorize(peer);
    if (decision.allowed) return undefined;
    logger.warn(
      { host, failure: 'denied', peer: String(peer), serialNumber: peer.serialNumber, rule: decision.rule, reason: decision.reason },
      `meshless grpc client: refusing server ${host}, which presented ${String(peer)}: ${decision.reason}`,
    );
    metrics.refusals.add(1, { side: 'client', protocol: 'grpc', failure: 'denied' });
    if (channels.peerRefused.hasSubscribers) channels.peerRefused.publish({ side: 'client', protocol: 'grpc', peer, decision, failure: 'denied', reason: decision.reason });
    return peerDeniedError(peer, decision.reason, host);
  };
  // One provider for both roles: grpc-js's argument order (documented as (ca, identity)) cannot
  // mix them up.
  return grpc.experimental.createCertificateProviderChannelCredentials(provider, provider, { checkServerIdentity });
}
