import { BoundedMap } from '@meshless/core/internal';
import type http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type https from 'node:https';
import type { Socket } from 'node:net';
import { MeshlessError, channels, codes, type Logger, type MeshlessMetrics } from '@meshless/core';

/**
 * `strict` (the default): mutual TLS only. `permissive`: mutual TLS and plaintext HTTP on one
 * port, for a migration — plaintext callers reach the app with no peer and are counted.
 */
export type ServerMode = 'strict' | 'permissive';

/** The payload of a server's `'plaintextRequest'` event (permissive mode). */
export interface PlaintextRequest {
  readonly remoteAddress?: string;
  readonly method?: string;
  readonly url?: string;
}

/** The first byte of a TLS record carrying a handshake message (a ClientHello starts with it). */
const TLS_HANDSHAKE = 0x16;
/** HTTP/1.x request lines start with an uppercase method name. */
const isMethodByte = (b: number): boolean => b >= 0x41 && b <= 0x5a;
/** At most one plaintext log line per remote address in this window. */
const LOG_INTERVAL_MS = 60_000;
const MAX_LOGGED_ADDRESSES = 1024;

export function parseMode(value: unknown, field = 'mode'): ServerMode {
  if (value === undefined) return 'strict';
  if (value === 'strict' || value === 'permissive') return value;
  throw new MeshlessError(codes.INVALID_OPTION, `createServer: ${field} must be 'strict' (mutual TLS only, the default) or 'permissive' (mutual TLS and plaintext HTTP on one port, for a migration), got ${JSON.stringify(value)}`, { field });
}

interface PlainConnection {
  readonly socket: Socket;
  inFlight: number;
  lastResponse: ServerResponse | undefined;
  closing: boolean;
}

type ConnectionListener = (this: https.Server, socket: Socket) => void;

/**
 * Serves plaintext HTTP next to mutual TLS on one https.Server, telling them apart by the first
 * byte of each connection (0x16 opens a TLS handshake; an HTTP request line starts with a
 * method). Installed only when a server is, or becomes, permissive; in strict mode every
 * connection goes straight to TLS, unread (nothing is added per request either way).
 *
 * TLS connections are handed to the server's own TLS listener unchanged: they are checked
 * exactly as in strict mode. Plaintext ones go to an internal `http.Server` whose requests are
 * emitted as the https server's own `'request'` events (so the app, Express and meshless's
 * listeners see them); they have no peer (`peerOf(req)` is undefined). Each is counted
 * (`meshless.http.plaintext_requests`), published (`channels.plaintextRequest`), emitted as
 * `'plaintextRequest'`, and logged at most once a minute per remote address.
 */
export class PermissiveListener {
  #mode: ServerMode = 'strict';
  #tlsListener: ConnectionListener | undefined;
  #plain: http.Server | undefined;
  readonly #connections = new Set<PlainConnection>();
  readonly #logged = new BoundedMap<string, number>(MAX_LOGGED_ADDRESSES);
  readonly #counter;

  constructor(
    private readonly server: https.Server,
    private readonly logger: Logger,
    metrics: MeshlessMetrics,
    /** How long a new connection may stay silent before its first byte (the handshake timeout). */
    private readonly firstByteTimeoutMs: number,
  ) {
    this.#counter = metrics.meter.createCounter('meshless.http.plaintext_requests', { description: 'Plaintext HTTP requests served by a permissive server (or sent to a plaintextOrigins origin by a client), by side' });
  }

  get mode(): ServerMode {
    return this.#mode;
  }

  setMode(mode: ServerMode): void {
    if (mode === this.#mode) return;
    this.#mode = mode;
    if (mode === 'permissive') {
      this.#install();
      this.logger.warn({ mode }, 'meshless server: permissive mode — plaintext HTTP is served next to mutual TLS on this port (migration only; switch to strict when the plaintext counter stays at zero)');
      return;
    }
    const live = this.#connections.size;
    this.logger.info({ mode, plaintextConnections: live }, 'meshless server: strict mode — new plaintext connections are refused; live ones close after their in-flight request');
    for (const connection of this.#connections) this.#close(connection);
  }

  /** Replaces the server's TLS connection listener with the first-byte sniffer (once). */
  #install(): void {
    if (this.#tlsListener !== undefined) return;
    const listeners = this.server.listeners('connection') as ConnectionListener[];
    const tlsListener = listeners.find((l) => l.name === 'tlsConnectionListener') ?? listeners[0];
    if (tlsListener === undefined) throw new MeshlessError(codes.INVALID_OPTION, 'createServer: permissive mode needs the TLS connection listener of https.Server, and found none');
    this.server.removeListener('connection', tlsListener);
    this.#tlsListener = tlsListener;
    this.server.on('connection', (socket: Socket) => this.#onConnection(socket));
    // Same connection checks as the https server (headersTimeout, requestTimeout): Node runs them
    // from an interval it starts on 'listening'; this internal server never listens itself.
    const interval = (this.server as { connectionsCheckingInterval?: number }).connectionsCheckingInterval;
    // node:http through process.getBuiltinModule, not an ESM import: on Node 22 and later `import … from
    // 'node:http'` builds a namespace from every export, and reading its WebSocket getter loads Node's
    // bundled undici (~7 MB RSS) in every process that imports @meshless/http (test/release/footprint).
    const plain = process.getBuiltinModule('node:http').createServer(interval === undefined ? {} : { connectionsCheckingInterval: interval });
    plain.emit('listening');
    this.server.once('close', () => plain.close());
    plain.on('request', (req: IncomingMessage, res: ServerResponse) => this.#onRequest(req, res));
    plain.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      if (this.#mode === 'strict' || this.server.listenerCount('upgrade') === 0) socket.destroy();
      else this.server.emit('upgrade', req, socket, head);
    });
    this.#plain = plain;
    // server.close() ends idle keep-alive connections it knows about; plaintext ones too.
    const closeIdle = this.server.closeIdleConnections.bind(this.server);
    this.server.closeIdleConnections = () => {
      closeIdle();
      for (const c of this.#connections) if (c.inFlight === 0) c.socket.destroySoon();
    };
    const closeAll = this.server.closeAllConnections.bind(this.server);
    this.server.closeAllConnections = () => {
      closeAll();
      for (const c of this.#connections) c.socket.destroy();
    };
  }

  #onConnection(socket: Socket): void {
    const tls = this.#tlsListener!;
    if (this.#mode === 'strict') {
      tls.call(this.server, socket);
      return;
    }
    const timer = setTimeout(() => socket.destroy(), this.firstByteTimeoutMs);
    timer.unref();
    const done = (): void => {
      clearTimeout(timer);
      socket.removeListener('readable', onReadable);
      socket.removeListener('error', onError);
      socket.removeListener('close', done);
    };
    const onError = (): void => {
      done();
      socket.destroy();
    };
    const onReadable = (): void => {
      const chunk = socket.read() as Buffer | null;
      if (chunk === null || chunk.length === 0) return;
      done();
      socket.unshift(chunk);
      const first = chunk[0]!;
      if (first !== TLS_HANDSHAKE && isMethodByte(first) && this.#mode === 'permissive') this.#plaintext(socket);
      // Anything else goes to TLS, which refuses what is not a ClientHello (reported as a handshake refusal).
      else tls.call(this.server, socket);
    };
    socket.on('readable', onReadable);
    socket.on('error', onError);
    socket.on('close', done);
  }

  #plaintext(socket: Socket): void {
    const plain = this.#plain!;
    // Follow the https server's HTTP settings, which the application may have changed since.
    plain.keepAliveTimeout = this.server.keepAliveTimeout;
    plain.headersTimeout = this.server.headersTimeout;
    plain.requestTimeout = this.server.requestTimeout;
    plain.maxHeadersCount = this.server.maxHeadersCount;
    plain.timeout = this.server.timeout;
    const connection: PlainConnection = { socket, inFlight: 0, lastResponse: undefined, closing: false };
    this.#connections.add(connection);
    socket.once('close', () => this.#connections.delete(connection));
    (socket as SocketWithPlain)[kPlain] = connection;
    plain.emit('connection', socket);
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    const connection = (req.socket as SocketWithPlain)[kPlain];
    const remoteAddress = req.socket.remoteAddress;
    if (this.#mode === 'strict' || connection === undefined || connection.closing) {
      // Parsed on a plaintext connection after the switch to strict: refused, and the connection ends.
      const text = JSON.stringify({ error: 'plaintext refused: this server requires mutual TLS', code: codes.PLAINTEXT_REFUSED });
      res.writeHead(426, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text), Connection: 'close', Upgrade: 'TLS/1.3' });
      res.end(req.method === 'HEAD' ? undefined : text);
      this.#counter.add(1, { side: 'server', outcome: 'refused' });
      return;
    }
    connection.inFlight++;
    connection.lastResponse = res;
    res.once('close', () => {
      connection.inFlight--;
      if (connection.lastResponse === res) connection.lastResponse = undefined;
      if (connection.closing && connection.inFlight === 0) connection.socket.destroySoon();
    });
    this.#counter.add(1, { side: 'server', outcome: 'served' });
    const event: PlaintextRequest = { ...(remoteAddress === undefined ? {} : { remoteAddress }), ...(req.method === undefined ? {} : { method: req.method }), ...(req.url === undefined ? {} : { url: req.url }) };
    if (channels.plaintextRequest.hasSubscribers) channels.plaintextRequest.publish({ side: 'server', ...event });
    this.#log(event);
    this.server.emit('plaintextRequest', event);
    this.server.emit('request', req, res);
  }

  /** Graceful close after the in-flight request: `Connection: close` on it, or at once when idle. */
  #close(connection: PlainConnection): void {
    connection.closing = true;
    if (connection.inFlight === 0) {
      connection.socket.destroySoon();
      return;
    }
    const res = connection.lastResponse;
    if (res !== undefined && !res.headersSent) res.setHeader('Connection', 'close');
  }

  #log(event: PlaintextRequest): void {
    const address = event.remoteAddress ?? 'unknown';
    const now = Date.now();
    const last = this.#logged.get(address);
    if (last !== undefined && now - last < LOG_INTERVAL_MS) return;
    this.#logged.set(address, now);
    this.logger.warn(
      { plaintext: true, remoteAddress: event.remoteAddress, method: event.method, url: event.url },
      `meshless server: plaintext request from ${address} (permissive mode); it has no peer. Move this caller to mTLS before switching to strict (at most one line per address per minute; every request is counted)`,
    );
  }
}

const kPlain = Symbol('meshless.plaintextConnection');
type SocketWithPlain = Socket & { [kPlain]?: PlainConnection };
