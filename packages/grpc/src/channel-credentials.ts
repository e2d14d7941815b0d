import type { DetailedPeerCertificate, PeerCertificate } from 'node:tls';
import { verifyPeer, channels, type CredentialProvider, type Logger, type Rules, type DenyRules } from '@meshless/core';
import { compilePolicy, presentedChainOf, refusal, resolveOptions, type WrapperSpec } from '@meshless/core/internal';
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
  /**
   * Dry run of `allow`/`deny`: a verified server the rules would refuse is accepted, and the
   * would-be refusal is logged ("dry run: would deny"), counted and published. A server whose
   * chain does not verify is still refused.
   */
  dryRun?: boolean;
  /** pino-compatible logger; default: a shared pino logger at level warn. */
  logger?: Logger;
}

const CHANNEL_SPEC: WrapperSpec = {
  wrapper: 'channelCredentials',
  peers: 'servers',
  scope: 'grpc-client',
  tls: [],
  tlsRefusal: "grpc-js builds the client's TLS context itself from the certificates (TLS 1.2 and 1.3, grpc-js's cipher list), so channelCredentials cannot apply a TLS policy; set it on the server (serverCredentials({ minVersion }), createServer({ minVersion }))",
  names: new Set(),
};

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
  const { source, allow, deny, dryRunOptions, logger, metrics } = resolveOptions(options, CHANNEL_SPEC);
  const authorize = compilePolicy('channelCredentials', allow, deny, dryRunOptions);
  const provider = new SourceCertificateProvider(source, logger);

  // Node calls this on every full handshake (grpc-js keeps no TLS sessions, so on every
  // connection) once OpenSSL verified the chain to some root we hold: core's verifier then checks
  // it against the bundle of the server's own trust domain, its validity, identity and `allow`.
  const checkServerIdentity = (host: string, certificate: PeerCertificate): Error | undefined => {
    const presented = certificate && certificate.raw ? presentedChainOf(certificate as DetailedPeerCertificate) : undefined;
    const check = presented === undefined ? refusal(`server ${host}`, 'unverified', `server ${host} presented no certificate`) : verifyPeer(presented, { credential: source.current(), authorize, who: `server ${host}` });
    if (check.ok) return undefined;
    const peer = check.peer;
    logger.warn(
      { host, failure: check.failure, code: check.error.code, peer: peer === undefined ? undefined : String(peer), serialNumber: peer?.serialNumber, rule: check.decision?.rule, reason: check.reason },
      `meshless grpc client: refusing server ${host}${peer === undefined ? '' : `, which presented ${String(peer)}`}: ${check.reason}`,
    );
    metrics.refusals.add(1, { side: 'client', protocol: 'grpc', failure: check.failure });
    if (channels.peerRefused.hasSubscribers) channels.peerRefused.publish({ side: 'client', protocol: 'grpc', peer, decision: check.decision, failure: check.failure, reason: check.reason });
    return check.error;
  };
  // One provider for both roles: grpc-js's argument order (documented as (ca, identity)) cannot
  // mix them up.
  return grpc.experimental.createCertificateProviderChannelCredentials(provider, provider, { checkServerIdentity });
}
