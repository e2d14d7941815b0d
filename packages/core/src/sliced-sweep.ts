/** Default budget of one slice of a {@link SlicedSweep}: synchronous work per event-loop turn. */
export const DEFAULT_SLICE_MS = 2;

/** Reads the clock once per this many items (a visit is ~1 µs; one that retires a connection, far more). */
const CLOCK_EVERY = 4;

/** What one complete sweep cost. */
export interface SweepStats {
  /** Items visited. */
  readonly visited: number;
  /** Event-loop turns the sweep took (slices). */
  readonly slices: number;
  /** The longest slice: the longest the sweep kept the event loop from anything else (ms, wall clock). */
  readonly maxSliceMs: number;
  /**
   * The most CPU one slice used (ms, the process's user + system time). On a loaded machine a
   * slice's wall time includes time the process was not scheduled; this is the work itself.
   */
  readonly maxSliceCpuMs: number;
  /** Synchronous time of all slices together (ms). */
  readonly busyMs: number;
  /** From `restart()` to the last item (ms). */
  readonly durationMs: number;
  /** Sweeps restarted (superseded) before this one completed. */
  readonly superseded: number;
}

/**
 * Visits every item of a live collection in bounded slices across event-loop turns: at most
 * about `sliceMs` of synchronous work per turn, the next slice on `setImmediate`, so I/O (new
 * handshakes, requests) runs between slices. Items added during a sweep are visited too when
 * the collection's iterator yields them (a `Set`'s does), removed ones are not.
 *
 * `restart()` while a sweep is in progress abandons it and starts again from the first item:
 * the newest sweep wins, and an item already visited by the abandoned one is visited again.
 * (Callers make a visit of an item already checked under the newest state O(1).)
 */
export class SlicedSweep<T> {
  #iterator: Iterator<T> | undefined;
  #immediate: NodeJS.Immediate | undefined;
  #startedAt = 0;
  #visited = 0;
  #slices = 0;
  #maxSliceMs = 0;
  #maxSliceCpuMs = 0;
  #busyMs = 0;
  #superseded = 0;
  #inSlice = false;

  constructor(
    private readonly items: () => Iterator<T>,
    private readonly visit: (item: T) => void,
    private readonly onDone: (stats: SweepStats) => void = () => {},
    private readonly sliceMs: number = DEFAULT_SLICE_MS,
  ) {}

  /** True while a sweep has items left. */
  get running(): boolean {
    return this.#iterator !== undefined;
  }

  /**
   * Starts a sweep from the first item (abandoning one in progress). Its first slice runs now,
   * synchronously (called from a visit, on the next turn): a few hundred items — every live
   * connection of most services — are done before the caller returns, exactly as an unsliced
   * loop would, and only the rest waits for later turns.
   */
  restart(): void {
    if (this.#iterator !== undefined) this.#superseded++;
    else this.#superseded = 0;
    this.#iterator = this.items();
    this.#startedAt = performance.now();
    this.#visited = 0;
    this.#slices = 0;
    this.#maxSliceMs = 0;
    this.#maxSliceCpuMs = 0;
    this.#busyMs = 0;
    if (this.#inSlice) {
      this.#immediate ??= setImmediate(() => this.#slice());
      return;
    }
    if (this.#immediate !== undefined) clearImmediate(this.#immediate);
    this.#slice();
  }

  /** Abandons the sweep in progress (e.g. the server closed). */
  stop(): void {
    if (this.#immediate !== undefined) clearImmediate(this.#immediate);
    this.#immediate = undefined;
    this.#iterator = undefined;
  }

  #slice(): void {
    this.#immediate = undefined;
    const iterator = this.#iterator;
    if (iterator === undefined) return;
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    let n = 0;
    let done = false;
    this.#inSlice = true;
    try {
      for (;;) {
        const next = iterator.next();
        if (next.done === true) {
          done = true;
          break;
        }
        n++;
        this.visit(next.value);
        // A visit may restart the sweep (e.g. it changed the state being swept): the new one continues.
        if (this.#iterator !== iterator) break;
        if (n % CLOCK_EVERY === 0 && performance.now() - t0 >= this.sliceMs) break;
      }
    } finally {
      this.#inSlice = false;
      const t1 = performance.now();
      if (this.#iterator === iterator) {
        this.#visited += n;
        this.#slices++;
        this.#busyMs += t1 - t0;
        if (t1 - t0 > this.#maxSliceMs) this.#maxSliceMs = t1 - t0;
        const cpu = process.cpuUsage(cpu0);
        const cpuMs = (cpu.user + cpu.system) / 1000;
        if (cpuMs > this.#maxSliceCpuMs) this.#maxSliceCpuMs = cpuMs;
      }
      if (this.#iterator === iterator && done) {
        this.#iterator = undefined;
        this.onDone({
          visited: this.#visited,
          slices: this.#slices,
          maxSliceMs: this.#maxSliceMs,
          maxSliceCpuMs: this.#maxSliceCpuMs,
          busyMs: this.#busyMs,
          durationMs: t1 - this.#startedAt,
          superseded: this.#superseded,
        });
      } else if (this.#iterator !== undefined) {
        // Not done, a visit threw, or restarted meanwhile: go on (from the first item if restarted).
        this.#immediate ??= setImmediate(() => this.#slice());
      }
    }
  }
}
