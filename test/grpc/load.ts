import type grpc from '@grpc/grpc-js';
import { unary, type Echo } from '@meshless/fixtures/grpc-harness';
import type { Reply } from '@meshless/fixtures/grpc-echo';

export interface LoadResult {
  ok: number;
  failed: number;
  errors: string[];
  /** Client serials the server saw, in order of replies. */
  serials: Set<string>;
}

/**
 * Unary calls with `concurrency` in flight until `stop()` says so, bounded by `maxCalls` and
 * `maxMs`. Counts every failure (nothing is retried by the test).
 */
export function unaryLoad(client: Echo, options: { concurrency: number; stop: () => boolean; maxCalls?: number; maxMs?: number; onReply?: (r: Reply) => void }): Promise<LoadResult> {
  const result: LoadResult = { ok: 0, failed: 0, errors: [], serials: new Set() };
  const maxCalls = options.maxCalls ?? 50_000;
  const deadline = Date.now() + (options.maxMs ?? 20_000);
  let started = 0;
  const worker = async (): Promise<void> => {
    while (!options.stop() && started < maxCalls && Date.now() < deadline) {
      started++;
      try {
        const reply = await unary(client, 'unary', { text: 'load' });
        result.ok++;
        if (reply.serial) result.serials.add(reply.serial);
        options.onReply?.(reply);
      } catch (err) {
        result.failed++;
        if (result.errors.length < 10) result.errors.push((err as grpc.ServiceError).message);
      }
    }
  };
  return Promise.all(Array.from({ length: options.concurrency }, worker)).then(() => result);
}
