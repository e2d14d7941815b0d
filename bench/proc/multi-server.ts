// Many hand-written mTLS servers in one process, for the "one agent, many origins" scale row
// (idle connections are kept until `drop` closes them all):
//   --count N --certs DIR
// Server i listens on 127.1.<i / 200>.<1 + i % 200> (all of 127.0.0.0/8 is loopback on Linux), port 0,
// requires our client certificate and answers GET / with 13 bytes. `ready` lists the origins.
import { readFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { certFiles } from '../lib/certs.js';
import { handle, onExit, ready } from './ipc.js';

const { values } = parseArgs({ options: { count: { type: 'string' }, certs: { type: 'string' } } });
const count = Number(values.count);
const files = certFiles(values.certs!);
const options = {
  cert: readFileSync(files.serverCert()),
  key: readFileSync(files.serverKey()),
  ca: readFileSync(files.ca),
  requestCert: true,
  rejectUnauthorized: true,
  minVersion: 'TLSv1.3' as const,
};
const small = Buffer.from('hello, world\n');
const servers: https.Server[] = [];
const origins: string[] = [];
for (let i = 0; i < count; i++) {
  const server = https.createServer(options, (_req, res) => {
    res.writeHead(200, { 'content-length': small.length });
    res.end(small);
  });
  // Idle connections stay until `drop` (Node's default would close them after 5 s).
  server.keepAliveTimeout = 0;
  const host = `127.1.${Math.floor(i / 200)}.${1 + (i % 200)}`;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  servers.push(server);
  origins.push(`https://${host}:${(server.address() as AddressInfo).port}`);
}
onExit(async () => {
  for (const s of servers) {
    s.close();
    s.closeAllConnections();
  }
});
handle('origins', () => ({ origins }));
// Closes every accepted connection (the listeners stay): the client's pools lose their sockets.
handle('drop', () => {
  for (const s of servers) s.closeAllConnections();
  return {};
});
ready({ count: servers.length });
