// The Go peer of the interop tests (test/interop/go/*.go, standard library only): built once per
// test file with Debian's golang-go, then started as a client (JSON commands on stdin, one JSON
// result line each) or as a server (JSON lines per handshake and per request).
import { execFile, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { IssuedCertificate } from '@meshless/testing';
import { createPki, type Pki } from '@meshless/fixtures/grpc-pki';
import { JsonChild } from '../helpers/child.js';

const here = dirname(fileURLToPath(import.meta.url));

type Event = Record<string, unknown>;

/** The `go` command, or undefined (with the reason printed) when it is not installed. */
function goCommand(): string | undefined {
  const probe = spawnSync('go', ['version'], { encoding: 'utf8' });
  if (probe.status === 0) return 'go';
  const fallback = '/usr/lib/go/bin/go';
  if (spawnSync(fallback, ['version']).status === 0) return fallback;
  return undefined;
}

/**
 * Builds the Go peer into `outDir` (once per test file). Skips the suite, with a printed reason,
 * when Go is not installed. No module is downloaded: GOPROXY=off, and the program has no
 * dependency outside the standard library.
 */
export async function buildGoPeer(ctx: Mocha.Context, outDir: string): Promise<string> {
  const go = goCommand();
  if (go === undefined) {
    console.log('      skipped: go is not installed (scripts/setup-system.sh installs golang-go)');
    ctx.skip();
  }
  const cache = join(process.env.XDG_CACHE_HOME ?? join(homedir() || tmpdir(), '.cache'), 'meshless-go');
  const bin = join(outDir, 'meshless-go-peer');
  const env = { ...process.env, GOPROXY: 'off', GOFLAGS: '-mod=mod', GOCACHE: join(cache, 'build'), GOPATH: join(cache, 'path'), GOTOOLCHAIN: 'local', CGO_ENABLED: '0' };
  await new Promise<void>((resolve, reject) => {
    execFile(go!, ['build', '-o', bin, '.'], { cwd: join(here, 'go'), env, timeout: 120_000 }, (err, _stdout, stderr) =>
      err ? reject(new Error(`go build failed: ${err.message}\n${stderr}`)) : resolve(),
    );
  });
  return bin;
}

export interface PeerFiles {
  cert: string;
  key: string;
  ca: string;
}

/** Writes a certificate, its key (0600) and a trust bundle under `dir/name` for the Go peer. */
export async function writePeerFiles(dir: string, name: string, issued: IssuedCertificate, bundle = issued.ca): Promise<PeerFiles> {
  const at = join(dir, name);
  await mkdir(at, { recursive: true });
  const files = { cert: join(at, 'tls.crt'), key: join(at, 'tls.key'), ca: join(at, 'ca.crt') };
  await writeFile(files.cert, issued.cert);
  await writeFile(files.key, issued.key, { mode: 0o600 });
  await writeFile(files.ca, bundle);
  return files;
}

/** A bundle-only file set: a Go client that presents no certificate. */
export async function writeBundleOnly(dir: string, name: string, bundle: string): Promise<PeerFiles> {
  const at = join(dir, name);
  await mkdir(at, { recursive: true });
  await writeFile(join(at, 'ca.crt'), bundle);
  return { cert: '', key: '', ca: join(at, 'ca.crt') };
}

export const tempDir = (prefix: string): Promise<string> => mkdtemp(join(tmpdir(), prefix));

/** What every Go interop suite sets up once: the built peer, a temp dir, a PKI, and what to stop after each test. */
export interface GoSuite {
  bin: string;
  tmp: string;
  pki: Pki;
  /** Run in reverse order after each test. */
  readonly stops: (() => Promise<unknown> | void)[];
}

/**
 * Registers, in the calling `describe`, the hooks every Go interop suite needs: build the Go peer
 * into a fresh temp dir (skipping the suite when Go is missing) and mint a PKI with an
 * intermediate CA before; run `stops` after each test; remove the temp dir after.
 */
export function goSuite(prefix: string): GoSuite {
  const suite = { stops: [] } as unknown as GoSuite;
  before(async function () {
    this.timeout(150_000);
    suite.tmp = await tempDir(prefix);
    suite.bin = await buildGoPeer(this, suite.tmp);
    suite.pki = await createPki({ intermediate: true });
  });
  after(async () => {
    if (suite.tmp) await rm(suite.tmp, { recursive: true, force: true });
  });
  afterEach(async () => {
    for (const stop of suite.stops.splice(0).reverse()) await stop();
  });
  return suite;
}

/** What the Go client answers for one command. */
export interface GoResult {
  id: number;
  ok: boolean;
  error?: string;
  status?: number;
  body?: string;
  proto?: string;
  alpn?: string;
  didResume?: boolean;
  version?: string;
  /** The server's SPIFFE ID as the Go client saw it. */
  peer?: string;
  grpcStatus?: number;
  grpcMessage?: string;
  contentType?: string;
  messages?: Record<string, unknown>[];
}

/** A Go client process (go-spiffe style TLS); one session cache for all its connections. */
export class GoClient {
  #next = 1;
  private constructor(readonly child: JsonChild) {}

  static async start(bin: string, files: PeerFiles, allow: string, options: { h2?: boolean; maxTls?: '1.2' | '1.3' } = {}): Promise<GoClient> {
    const args = ['client', '-cert', files.cert, '-key', files.key, '-ca', files.ca, '-allow', allow, '-max-tls', options.maxTls ?? '1.3'];
    if (options.h2) args.push('-h2');
    const child = new JsonChild(bin, args, process.env, { stdin: true });
    await child.waitFor((e) => e.ready === true, 10_000, 'the Go client to start');
    return new GoClient(child);
  }

  #send(command: Event): Promise<GoResult> {
    const id = this.#next++;
    this.child.send({ ...command, id });
    return this.child.waitFor((e) => e.id === id, 15_000, `the Go client's answer to ${String(command.op)} ${String(command.url)}`) as Promise<unknown> as Promise<GoResult>;
  }

  /** GET on a new connection (keep-alive off), resuming a cached TLS session when it has one. */
  get(url: string): Promise<GoResult> {
    return this.#send({ op: 'get', url });
  }

  /**
   * One unary gRPC call over HTTP/2, JSON messages. `fresh`: on a new connection, closed after the
   * call, resuming a cached TLS session when there is one.
   */
  grpc(base: string, method: string, message: unknown, options: { fresh?: boolean } = {}): Promise<GoResult> {
    return this.#send({ op: 'grpc', url: base, method, message, fresh: options.fresh ?? false });
  }

  /** The handshakes this client completed (full and resumed), as Go's VerifyConnection saw them. */
  handshakes(): Event[] {
    return this.child.events.filter((e) => e.handshake === 'client');
  }

  stop(): Promise<void> {
    return this.child.stop();
  }
}

/** A Go HTTPS (HTTP/1.1 and HTTP/2) server; with `grpc`, it also answers /meshless.test.Echo/Unary. */
export class GoServer {
  private constructor(
    readonly child: JsonChild,
    readonly port: number,
  ) {}

  static async start(bin: string, files: PeerFiles, options: { allow?: string; style?: 'spiffe' | 'clientcas'; grpc?: boolean }): Promise<GoServer> {
    const args = ['server', '-cert', files.cert, '-key', files.key, '-ca', files.ca, '-style', options.style ?? 'spiffe'];
    if (options.allow !== undefined) args.push('-allow', options.allow);
    if (options.grpc) args.push('-grpc');
    const child = new JsonChild(bin, args);
    const listening = await child.waitFor((e) => typeof e.listening === 'number', 10_000, 'the Go server to listen');
    return new GoServer(child, listening.listening as number);
  }

  get origin(): string {
    return `https://localhost:${this.port}`;
  }

  requests(): Event[] {
    return this.child.events.filter((e) => typeof e.request === 'string');
  }

  handshakes(): Event[] {
    return this.child.events.filter((e) => e.handshake === 'server');
  }

  /** Waits until the server has logged `n` handshakes (its output arrives after our socket events). */
  async waitForHandshakes(n: number): Promise<Event[]> {
    await this.child.waitFor(() => this.handshakes().length >= n, 5000, `${n} handshakes logged by the Go server`);
    return this.handshakes();
  }

  async waitForRequests(n: number): Promise<Event[]> {
    await this.child.waitFor(() => this.requests().length >= n, 5000, `${n} requests logged by the Go server`);
    return this.requests();
  }

  errors(): string[] {
    return this.child.events.filter((e) => typeof e.serverError === 'string').map((e) => e.serverError as string);
  }

  stop(): Promise<void> {
    return this.child.stop();
  }
}
