import { createRequire } from 'node:module';
import type * as Undici from 'undici';

let loaded: typeof Undici | undefined;

/**
 * undici, loaded on first use (the first `createAgent`), not when `@meshless/http` is imported:
 * a service that only serves HTTP never pays for the client's dependency (~20 MB RSS, ~0.1 s).
 * undici is CommonJS without an exports map, so `require` returns the very module instance an
 * application's `import … from 'undici'` gets (same classes, same global dispatcher).
 */
export function undici(): typeof Undici {
  loaded ??= createRequire(import.meta.url)('undici') as typeof Undici;
  return loaded;
}
