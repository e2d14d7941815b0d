// The migration scene: one port serving mTLS and plaintext (mode: 'permissive'), the plaintext
// caller seen (counted, with its address), then setMode('strict') and the same caller refused.
import http from 'node:http';
import { once } from 'node:events';
import { fileSource } from '@meshless/core';
import { createServer, peerOf } from '@meshless/http';
import { request } from 'undici';

function plainGet(port) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('error', (err) => resolve({ error: err.code ?? err.message }));
    req.setTimeout(5_000, () => req.destroy(new Error('timeout')));
  });
}

/** Runs the scene with the orders identity; returns { ok, line } for the summary. */
export async function migrationScene({ ordersDir, agent, ID, pass, fail, say }) {
  const source = await fileSource({ dir: ordersDir });
  const plaintextSeen = [];
  const quiet = { error() {}, warn() {}, info() {}, debug() {} };
  const server = createServer({ source, allow: ID.web, mode: 'permissive', logger: quiet }, (req, res) => res.end(peerOf(req) ? `hello ${peerOf(req)}` : 'hello plaintext caller'));
  server.on('plaintextRequest', (r) => plaintextSeen.push(r));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  try {
    say(`a legacy orders instance on :${port} in mode 'permissive': mTLS and plain HTTP on one port`);
    const tls = await request(`https://127.0.0.1:${port}/`, { dispatcher: agent });
    const tlsBody = await tls.body.text();
    const plain = await plainGet(port);
    const seen = plaintextSeen.length === 1 && plain.status === 200;
    if (tlsBody === `hello ${ID.web}` && seen) pass(`mTLS caller answered with its peer (${ID.web}); plaintext caller answered with no peer, and seen: 1 plaintext request from ${plaintextSeen[0].remoteAddress}`);
    else fail(`permissive mode: mTLS ${tlsBody}, plaintext ${JSON.stringify(plain)}, seen ${plaintextSeen.length}`);
    server.setMode('strict');
    const after = await plainGet(port);
    const tlsAfter = await request(`https://127.0.0.1:${port}/`, { dispatcher: agent });
    const tlsAfterBody = await tlsAfter.body.text();
    const refused = after.status === undefined && tlsAfterBody === `hello ${ID.web}`;
    if (refused) pass(`setMode('strict'): the plaintext caller is now refused (${after.error}), mTLS still answered`);
    else fail(`strict mode: plaintext ${JSON.stringify(after)}, mTLS ${tlsAfterBody}`);
    return { ok: seen && refused, line: `permissive: 1 plaintext request seen from ${plaintextSeen[0]?.remoteAddress}; strict: plaintext ${refused ? 'refused' : 'NOT refused'}, mTLS answered` };
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await source.close();
  }
}
