// Compiled with tsc --noEmit under nodenext, bundler and commonjs resolution: the public types
// resolve from the installed packages, subpath included.
import { allowList, fileSource, loadCredential, MeshlessError, staticSource, type Peer, type Source } from '@meshless/core';
import { createAgent, createServer, peerOf } from '@meshless/http';
import { mtls, requirePeer } from '@meshless/http/express';
import { channelCredentials, serverCredentials } from '@meshless/grpc';
import { createTestCA } from '@meshless/testing';
import { workloadApiSource } from '@meshless/workload-api';

export async function service(dir: string): Promise<Source> {
  const source: Source = await fileSource({ dir });
  const server = createServer({ source, allow: 'spiffe://prod.example/ns/web/**' }, (req, res) => {
    const peer: Peer | undefined = peerOf(req);
    res.end(peer?.spiffeId ?? 'nobody');
  });
  server.listen(0);
  const agent = createAgent({ source, allow: 'spiffe://prod.example/ns/shop/sa/payments' });
  await agent.close();
  const middleware = [mtls(), requirePeer('spiffe://prod.example/ns/ops/**')];
  const decision = allowList(['spiffe://prod.example/**'])(peerOf(req0())!);
  const creds = [serverCredentials({ source, allow: '*' }), channelCredentials({ source, allow: '*' })];
  const ca = await createTestCA({ trustDomain: 'prod.example' });
  const other = staticSource(loadCredential(await ca.issue('spiffe://prod.example/a')));
  const err: MeshlessError | undefined = undefined;
  const fromAgent: Promise<Source> = workloadApiSource({ address: 'unix:///run/spire/agent.sock' });
  void [middleware, decision.allowed, creds, other, err, fromAgent];
  return source;
}
declare function req0(): import('node:http').IncomingMessage;
