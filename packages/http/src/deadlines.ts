import { setLongTimeout, type LongTimeout } from '@meshless/core/internal';
/** A scheduled call; pass it to `cancel`. */
export interface Deadline {
  readonly when: number;
  /** Position in the heap; -1 once fired or cancelled. */
  index: number;
  readonly fire: (arg: any) => void;
  /** Passed to `fire` (lets every entry share one function instead of a closure each). */
  readonly arg: unknown;
}


/**
 * Many deadlines on one timer: a binary min-heap by time and a single unref'd `setTimeout` for
 * the earliest. A server with 10,000 connections keeps 10,000 small entries instead of 10,000
 * Node timers (each connection's deadline is distinct — certificate notAfter, jittered max age —
 * so Node would keep a timer list per connection: ~470 bytes of heap each, against ~80 here).
 * Adding and cancelling are O(log n); cancelled entries leave the heap at once.
 */
export class Deadlines {
  readonly #heap: Deadline[] = [];
  #timer: LongTimeout | undefined;
  #armedFor = Infinity;

  get size(): number {
    return this.#heap.length;
  }

  /** Calls `fire(arg)` at `when` (ms since the epoch; a time past fires on the next timer turn). */
  add<A>(when: number, fire: (arg: A) => void, arg?: A): Deadline {
    const entry: Deadline = { when, index: this.#heap.length, fire, arg };
    this.#heap.push(entry);
    this.#up(entry.index);
    if (when < this.#armedFor) this.#arm();
    return entry;
  }

  /** Cancels a deadline that has not fired (no-op otherwise). */
  cancel(entry: Deadline | undefined): void {
    if (entry === undefined || entry.index < 0) return;
    const i = entry.index;
    const last = this.#heap.pop()!;
    entry.index = -1;
    if (last !== entry) {
      this.#heap[i] = last;
      last.index = i;
      this.#down(i);
      this.#up(last.index);
    }
    // The timer may now be early, or have nothing left to run: it re-arms (or not) when it runs.
    // It stays armed when the heap empties, so that connections which come and go one at a time
    // (all due at the same certificate notAfter) share one timer instead of creating one each.
  }

  /** Cancels every deadline and the timer (the owner is done: nothing will be added again). */
  clear(): void {
    for (const entry of this.#heap) entry.index = -1;
    this.#heap.length = 0;
    this.#disarm();
  }

  /** Whether a timer is armed (for tests). */
  get armed(): boolean {
    return this.#timer !== undefined;
  }

  #arm(): void {
    this.#disarm();
    const first = this.#heap[0];
    if (first === undefined) return;
    this.#armedFor = first.when;
    this.#timer = setLongTimeout(() => this.#run(), first.when - Date.now());
  }

  #disarm(): void {
    this.#timer?.clear();
    this.#timer = undefined;
    this.#armedFor = Infinity;
  }

  #run(): void {
    this.#timer = undefined;
    this.#armedFor = Infinity;
    const now = Date.now();
    let first = this.#heap[0];
    while (first !== undefined && first.when <= now) {
      this.cancel(first);
      try {
        first.fire(first.arg);
      } catch (err) {
        // One connection's retirement failing must not stop the others'; surface it as Node would.
        queueMicrotask(() => {
          throw err;
        });
      }
      first = this.#heap[0];
    }
    this.#arm();
  }

  #up(i: number): void {
    const heap = this.#heap;
    const entry = heap[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = heap[p]!;
      if (parent.when <= entry.when) break;
      heap[i] = parent;
      parent.index = i;
      i = p;
    }
    heap[i] = entry;
    entry.index = i;
  }

  #down(i: number): void {
    const heap = this.#heap;
    const n = heap.length;
    const entry = heap[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && heap[r]!.when < heap[l]!.when ? r : l;
      const child = heap[c]!;
      if (child.when >= entry.when) break;
      heap[i] = child;
      child.index = i;
      i = c;
    }
    heap[i] = entry;
    entry.index = i;
  }
}
