// The child side of the bench's IPC: request handlers, `ready`, and the rules that make every
// child stop by itself (parent gone, lifetime over, SIGTERM).

type Handler = (message: Record<string, unknown>) => Promise<Record<string, unknown>> | Record<string, unknown>;

const handlers = new Map<string, Handler>();
const cleanups: (() => Promise<void> | void)[] = [];

/** Registers the handler for requests of `type`; its result is sent back as the reply. */
export function handle(type: string, handler: Handler): void {
  handlers.set(type, handler);
}

/** Registers something to close before the process exits. */
export function onExit(cleanup: () => Promise<void> | void): void {
  cleanups.push(cleanup);
}

function send(message: Record<string, unknown>): void {
  if (process.send && process.connected) process.send(message);
}

/** Tells the parent this child is ready (with details such as the port). */
export function ready(details: Record<string, unknown> = {}): void {
  send({ type: 'ready', ...details });
}

let exiting = false;
/** Closes what was registered with onExit, then exits. */
export async function exit(code = 0): Promise<never> {
  if (!exiting) {
    exiting = true;
    const force = setTimeout(() => process.exit(code), 3000);
    force.unref();
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch {
        /* exiting anyway */
      }
    }
  }
  process.exit(code);
}

process.on('message', (m: Record<string, unknown>) => {
  const id = m.id;
  const handler = handlers.get(String(m.type));
  if (!handler) {
    send({ type: 'error', id, message: `no handler for "${String(m.type)}"` });
    return;
  }
  Promise.resolve()
    .then(() => handler(m))
    .then(
      (reply) => send({ type: 'reply', id, ...reply }),
      (err: unknown) => send({ type: 'error', id, message: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
    );
});

// Heap and RSS after full garbage collections (children started with `--expose-gc`).
handle('memory', () => {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  return { heapUsed: m.heapUsed, rss: m.rss, external: m.external, gc: gc !== undefined };
});
handle('exit', () => {
  setImmediate(() => void exit(0));
  return {};
});

process.on('disconnect', () => void exit(0));
process.on('SIGTERM', () => void exit(0));
process.on('SIGINT', () => void exit(0));
const lifetime = Number(process.env.BENCH_MAX_LIFETIME_MS) || 15 * 60_000;
setTimeout(() => {
  console.error(`lifetime of ${lifetime} ms is over: exiting`);
  void exit(1);
}, lifetime).unref();
