/** Heap and RSS of this process after full garbage collections (needs `--expose-gc`). */
export function memoryReport(): { heapUsed: number; rss: number; external: number; gc: boolean } {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    gc();
  }
  const m = process.memoryUsage();
  return { heapUsed: m.heapUsed, rss: m.rss, external: m.external, gc: gc !== undefined };
}
