/**
 * `@meshless/core/internal`: helpers meshless's own packages (@meshless/http, @meshless/grpc,
 * @meshless/workload-api, the CLI) share. Unstable: not part of the public API, and any release,
 * patch releases included, may change or remove what is here. Applications import `@meshless/core`.
 */
export { BoundedMap } from './bounded-map.js';
export { setLongTimeout, MAX_TIMER_MS, type LongTimeout } from './long-timeout.js';
