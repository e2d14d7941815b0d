// The same service in CommonJS: require() of every package (Node's require(esm)).
const { once } = require('node:events');
const { request } = require('undici');
const { loadCredential, staticSource, silentLogger } = require('@meshless/core');
const { createAgent, createServer, peerOf } = require('@meshless/http');
const { mtls } = require('@meshless/http/express');
const { serverCredentials } = require('@meshless/grpc');
const { createTestCA } = require('@meshless/testing');

const SERVER = 'spiffe://consumer.example/ns/shop/sa/payments';
const CLIENT = 'spiffe://consumer.example/ns/shop/sa/orders';

async function main() {
  const ca = await createTestCA({ trustDomain: 'consumer.example' });
  const server = staticSource(loadCredential(await ca.issue(SERVER)));
  const client = staticSource(loadCredential(await ca.issue(CLIENT)));
  const https = createServer({ source: server, allow: CLIENT, logger: silentLogger }, (req, res) => res.end(String(peerOf(req)?.spiffeId)));
  https.listen(0, '127.0.0.1');
  await once(https, 'listening');
  const agent = createAgent({ source: client, allow: SERVER, logger: silentLogger });
  const res = await request(`https://localhost:${https.address().port}/`, { dispatcher: agent });
  const body = await res.body.text();
  console.log(JSON.stringify({ body, middleware: typeof mtls(), grpc: typeof serverCredentials }));
  await agent.close();
  https.close();
  https.closeAllConnections();
}
main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
