import type { Source, SourceEvents } from '@meshless/core';

/** Resolves with the next event `name` of `source`, or rejects after `timeoutMs` (never a fixed sleep). */
export function nextEvent<K extends keyof SourceEvents>(source: Source, name: K, timeoutMs = 5000): Promise<SourceEvents[K]> {
  return new Promise((resolve, reject) => {
    const emitter = source as unknown as NodeJS.EventEmitter;
    const on = (...args: unknown[]) => {
      clearTimeout(timer);
      resolve(args as SourceEvents[K]);
    };
    const timer = setTimeout(() => {
      emitter.off(name, on);
      reject(new Error(`no '${name}' event within ${timeoutMs} ms`));
    }, timeoutMs);
    emitter.once(name, on);
  });
}

export const silent = { error() {}, warn() {}, info() {}, debug() {} };
