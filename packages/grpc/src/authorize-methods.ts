import { TLSSocket } from 'node:tls';
import { MeshlessError, allowList, channels, codes, isMeshlessError, loggerOf, meshlessMetrics, type Authorizer, type DryRunOptions, type Logger, type Peer, type Rules } from '@meshless/core';
import { onPolicyChange } from '@meshless/core/internal';
import { BoundedMap } from '@meshless/core/internal';
import { grpc } from './grpc-js.js';
import { refusedCall, sessionOf } from './intercepting-call.js';
import { peerOf } from './peer-of.js';

/**
 * Per-method rules: keys are a full method path (`'/pkg.Service/Method'`), every method of a
 * service (`'/pkg.Service/*'`), or `'*'` for every method not listed otherwise. An exact path
 * wins over its service's `*`, which wins over `'*'`.
 */
export type MethodRules = Readonly<Record<string, Rules>>;

export interface AuthorizeMethodsOptions {
  /** pino-compatible logger; default: a shared pino logger at level warn. */
  logger?: Logger;
  /**
   * Dry run: a verified caller the method's rules would refuse is let through, and the would-be
   * refusal is logged ("dry run: would deny"), counted and published. Callers without a verified
   * certificate are still refused (`UNAUTHENTICATED`), and unlisted methods stay closed.
   */
  dryRun?: boolean;
  /**
   * Migration (two ports on one `grpc.Server`, a plaintext one and a meshless one): the methods
   * (same keys: `'/pkg.Service/Method'`, `'/pkg.Service/*'`, `'*'`) that callers on a plaintext
   * connection may still call. Every other plaintext call is refused with `UNAUTHENTICATED`. Each
   * plaintext call let through is counted, published and logged (once a minute per method).
   */
  plaintext?: readonly string[];
}

interface Entry {
  readonly key: string;
  readonly authorize: Authorizer;
}

const METHOD_KEY = /^\/[^/*\s]+\/(?:[^/*\s]+|\*)$/;
const MAX_PATHS = 10_000;

function compile(methods: MethodRules, dryRun?: DryRunOptions): { exact: Map<string, Entry>; services: Map<string, Entry>; fallback?: Entry } {
  if (typeof methods !== 'object' || methods === null || Array.isArray(methods)) {
    throw new MeshlessError(codes.INVALID_OPTION, "authorizeMethods needs an object: { '/pkg.Service/Method': rules, '/pkg.Service/*': rules }");
  }
  const keys = Object.keys(methods);
  if (keys.length === 0) {
    throw new MeshlessError(codes.INVALID_OPTION, 'authorizeMethods got no methods: every call would be refused. List methods, services (/pkg.Service/*) or "*"');
  }
  const exact = new Map<string, Entry>();
  const services = new Map<string, Entry>();
  let fallback: Entry | undefined;
  for (const key of keys) {
    if (key !== '*' && !METHOD_KEY.test(key)) {
      throw new MeshlessError(codes.INVALID_OPTION, `authorizeMethods: ${JSON.stringify(key)} is not a method key; write '/pkg.Service/Method', '/pkg.Service/*' or '*'`, { field: key });
    }
    let authorize: Authorizer;
    try {
      authorize = allowList(methods[key]!, dryRun === undefined ? {} : { dryRun });
    } catch (err) {
      if (isMeshlessError(err)) throw new MeshlessError(err.code, `authorizeMethods[${JSON.stringify(key)}]: ${err.message}`, { cause: err, field: key, ...(err.rule ? { rule: err.rule } : {}) });
      throw err;
    }
    const entry = { key, authorize };
    if (key === '*') fallback = entry;
    else if (key.endsWith('/*')) services.set(key.slice(0, -2), entry);
    else exact.set(key, entry);
  }
  return fallback === undefined ? { exact, services } : { exact, services, fallback };
}

/**
 * A grpc-js server interceptor enforcing per-method allow-lists on top of the server-wide one:
 * `new grpc.Server({ interceptors: [authorizeMethods({ '/pay.Ledger/Refund': 'spiffe://prod.example/ns/pay/sa/admin', '/pay.Ledger/*': 'spiffe://prod.example/ns/pay/**' })] })`.
 *
 * Methods that no key covers are refused (`PERMISSION_DENIED`): deny by default, so a method
 * added later is closed until it is listed (add `'*': rules` to open the rest explicitly). A
 * caller without a verified identity gets `UNAUTHENTICATED`. The rules are asked on every call:
 * an allow-list of strings only decides once per Peer (core's `allowList` caches pure decisions,
 * a WeakMap lookup), while a function rule runs on every call — a function that starts returning
 * false refuses the very next call, on live connections too. A refusal is logged once per peer
 * and method.
 */
export function authorizeMethods(methods: MethodRules, options: AuthorizeMethodsOptions = {}): grpc.ServerInterceptor {
  const logger = loggerOf(options.logger);
  const { exact, services, fallback } = compile(methods, options.dryRun === true ? { scope: 'method', logger } : undefined);
  const resolved = new BoundedMap<string, Entry | null>(MAX_PATHS);
  // Refusals already logged, per peer and method key (log once; never used to decide). A live
  // policy (policyFile) among the rules starts the log-once memory afresh when it changes.
  let logged = new WeakMap<Peer, Set<string>>();
  onPolicyChange(Object.values(methods), () => {
    logged = new WeakMap();
  });
  const plaintext = plaintextMethods(options.plaintext, logger);

  // Per call: one Map lookup (peek: a hit does not reorder the map; the paths a server routes are
  // its registered methods, far fewer than the bound).
  const resolve = (path: string): Entry | null => {
    let entry = resolved.peek(path);
    if (entry === undefined) {
      entry = exact.get(path) ?? services.get(path.slice(0, path.lastIndexOf('/'))) ?? fallback ?? null;
      resolved.set(path, entry);
      if (entry === null) logger.warn({ method: path }, `meshless grpc: ${path} is not listed in authorizeMethods; every call to it is refused with PERMISSION_DENIED`);
    }
    return entry;
  };

  return (method, call) => {
    const path = method.path;
    const entry = resolve(path);
    if (entry === null) return refusedCall(call, grpc.status.PERMISSION_DENIED, `meshless: ${path} is not open to any caller`);
    const peer = peerOf(call);
    if (peer === undefined && plaintext !== undefined && isPlaintextCall(call) && plaintext(path, call)) return call as grpc.ServerInterceptingCall;
    if (peer === undefined) {
      logger.warn({ method: path, status: 'UNAUTHENTICATED' }, `meshless grpc: refused a call to ${path}: the caller presented no verified certificate`);
      return refusedCall(call, grpc.status.UNAUTHENTICATED, `meshless: ${path} needs a verified client certificate`);
    }
    // Never remember a decision here: function rules must be asked on every call (and Peers
    // are shared across connections on servers that are not built with serverCredentials).
    const decision = entry.authorize(peer);
    if (!decision.allowed) {
      let keys = logged.get(peer);
      if (keys === undefined) logged.set(peer, (keys = new Set()));
      if (!keys.has(entry.key)) {
        keys.add(entry.key);
        logger.warn(
          { peer: String(peer), serialNumber: peer.serialNumber, method: path, methodRule: entry.key, rule: decision.rule, reason: decision.reason, status: 'PERMISSION_DENIED' },
          `meshless grpc: refusing ${String(peer)} on ${path} (rules of ${JSON.stringify(entry.key)}): ${decision.reason}`,
        );
      }
    }
    if (decision.allowed) return call as grpc.ServerInterceptingCall;
    return refusedCall(call, grpc.status.PERMISSION_DENIED, `meshless: ${String(peer)} is not allowed to call ${path}`);
  };
}

/** True for a call on a connection that is not TLS at all (a plaintext port), as opposed to an unverified TLS one. */
function isPlaintextCall(call: grpc.ServerInterceptingCallInterface): boolean {
  const socket = sessionOf(call)?.socket;
  return socket !== undefined && !(socket instanceof TLSSocket);
}

/**
 * The `plaintext` option: `(path, call) => boolean` for the methods plaintext callers may still
 * call (counted, published, logged once a minute per method), or undefined when none may.
 */
function plaintextMethods(keys: readonly string[] | undefined, logger: Logger): ((path: string, call: grpc.ServerInterceptingCallInterface) => boolean) | undefined {
  if (keys === undefined || keys.length === 0) return undefined;
  const exact = new Set<string>();
  const services = new Set<string>();
  let any = false;
  for (const key of keys) {
    if (key === '*') any = true;
    else if (typeof key === 'string' && METHOD_KEY.test(key)) (key.endsWith('/*') ? services.add(key.slice(0, -2)) : exact.add(key));
    else throw new MeshlessError(codes.INVALID_OPTION, `authorizeMethods plaintext: ${JSON.stringify(key)} is not a method key; write '/pkg.Service/Method', '/pkg.Service/*' or '*'`, { field: 'plaintext' });
  }
  const counter = meshlessMetrics().meter.createCounter('meshless.grpc.plaintext_calls', { description: 'gRPC calls served on a plaintext connection (migration), by outcome' });
  const logged = new Map<string, number>();
  return (path, call) => {
    const open = any || exact.has(path) || services.has(path.slice(0, path.lastIndexOf('/')));
    counter.add(1, { outcome: open ? 'served' : 'refused' });
    if (!open) return false;
    const remoteAddress = sessionOf(call)?.socket?.remoteAddress;
    if (channels.plaintextRequest.hasSubscribers) channels.plaintextRequest.publish({ side: 'server', protocol: 'grpc', method: path, remoteAddress });
    const now = Date.now();
    const last = logged.get(path);
    if ((last === undefined || now - last >= 60_000) && logged.size < 10_000) {
      logged.set(path, now);
      logger.warn({ plaintext: true, method: path, remoteAddress }, `meshless grpc: plaintext call to ${path} (listed in authorizeMethods plaintext); move its callers to mTLS (at most one line per method per minute; every call is counted)`);
    }
    return true;
  };
}
