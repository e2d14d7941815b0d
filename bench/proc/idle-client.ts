// A client process for the scale rows: holds many keep-alive mTLS connections to one server.
//   --port N --certs DIR
// Requests over IPC:
//   open { count, concurrency }   opens `count` connections (TLS 1.3, our client certificate, one
//                                 resumed session shared by all after the first), sends one
//                                 HTTP/1.1 keep-alive request on each and keeps it open, idle
//   traffic { durationMs, connections }  that many loops, each sending requests one after another
//                                 on its own open connection, until the duration is over
//   probe {}                      a fresh connection (full handshake): the serial of the server's
//                                 certificate, then closes it
//   state {}                      connections open, closed since `open`, failures
//   close {}                      closes every connection
import { readFileSync } from 'node:fs';
import tls, { type TLSSocket } from 'node:tls';
import { parseArgs } from 'node:util';
import { SERVER_NAME, certFiles } from '../lib/certs.js';
import { handle, onExit, ready } from './ipc.js';

const { values } = parseArgs({ options: { port: { type: 'string' }, certs: { type: 'string' } } });
const port = Number(values.port);
const files = certFiles(values.certs!);
const base = {
  host: '127.0.0.1',
  port,
  servername: SERVER_NAME,
  ca: readFileSync(files.ca),
  cert: readFileSync(files.clientCert()),
  key: readFileSync(files.clientKey()),
  minVersion: 'TLSv1.3' as const,
};
const REQUEST = Buffer.from(`GET / HTTP/1.1\r\nhost: ${SERVER_NAME}\r\n\r\n`);
const BODY = 'hello, world\n';
const TIMEOUT_MS = 20_000;

interface Conn {
  socket: TLSSocket;
  received: string;
  waiting: ((err?: Error) => void) | undefined;
}

const open: Conn[] = [];
let closedSinceOpen = 0;
let session: Buffer | undefined;
let resumed = 0;

/** Sends one request on the connection and resolves when its whole response has arrived. */
function roundTrip(conn: Conn): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      conn.waiting = undefined;
      reject(new Error('no response within 20 s'));
    }, TIMEOUT_MS);
    conn.waiting = (err) => {
      clearTimeout(timer);
      conn.waiting = undefined;
      if (err) reject(err);
      else resolve();
    };
    conn.socket.write(REQUEST);
  });
}

function connect(useSession: boolean): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ ...base, ...(useSession && session ? { session } : {}) });
    const conn: Conn = { socket, received: '', waiting: undefined };
    const timer = setTimeout(() => socket.destroy(new Error('handshake timed out')), TIMEOUT_MS);
    socket.on('session', (s: Buffer) => {
      session ??= s;
    });
    socket.on('data', (chunk: Buffer) => {
      conn.received += chunk.toString('latin1');
      if (conn.waiting && conn.received.endsWith(BODY)) {
        conn.received = '';
        conn.waiting();
      }
    });
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      if (socket.isSessionReused()) resumed++;
      resolve(conn);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      conn.waiting?.(err);
      reject(err);
    });
    socket.once('close', () => {
      clearTimeout(timer);
      conn.waiting?.(new Error('connection closed'));
    });
  });
}

handle('open', async (m) => {
  const count = Number(m.count);
  const concurrency = Number(m.concurrency ?? 32);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let failed = 0;
  let firstError: string | undefined;
  resumed = 0;
  closedSinceOpen = 0;
  // The first connection makes the session the others resume.
  let next = 0;
  const one = async (): Promise<void> => {
    const conn = await connect(true);
    await roundTrip(conn);
    open.push(conn);
    conn.socket.once('close', () => {
      closedSinceOpen++;
      const i = open.indexOf(conn);
      if (i >= 0) open.splice(i, 1);
    });
  };
  try {
    next++;
    await one();
  } catch (err) {
    failed++;
    firstError = (err as Error).message;
  }
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count && failed < 100) {
        next++;
        try {
          await one();
        } catch (err) {
          failed++;
          firstError ??= (err as Error).message;
        }
      }
    }),
  );
  const cpu = process.cpuUsage(cpu0);
  return { opened: open.length, failed, firstError, resumed, elapsedMs: performance.now() - t0, clientCpuSeconds: (cpu.user + cpu.system) / 1e6 };
});

handle('traffic', async (m) => {
  const until = performance.now() + Number(m.durationMs);
  const loops = Math.min(Number(m.connections ?? 32), open.length);
  let requests = 0;
  let failed = 0;
  let firstError: string | undefined;
  await Promise.all(
    open.slice(0, loops).map(async (conn) => {
      while (performance.now() < until && !conn.socket.destroyed) {
        try {
          await roundTrip(conn);
          requests++;
        } catch (err) {
          failed++;
          firstError ??= (err as Error).message;
          return;
        }
      }
    }),
  );
  return { requests, failed, firstError };
});

handle('probe', async () => {
  const t0 = performance.now();
  const conn = await connect(false);
  const serial = conn.socket.getPeerCertificate().serialNumber;
  await roundTrip(conn);
  conn.socket.destroy();
  return { serial, ms: performance.now() - t0 };
});

handle('state', () => ({ open: open.length, closedSinceOpen }));

function closeAll(): void {
  for (const conn of open.splice(0)) conn.socket.destroy();
}
handle('close', () => {
  closeAll();
  return {};
});
onExit(closeAll);

ready({ port });
