/** Where a command writes: stdout for results, stderr for diagnostics and logs. */
export interface CommandIO {
  out(text: string): void;
  err(text: string): void;
}

/** The process's own streams. */
export const processIO: CommandIO = {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
};

/** A duration in ms as a short human string: `59m 58s`, `364d 23h`, `-5m` (past). */
export function formatDuration(ms: number): string {
  const sign = ms < 0 ? '-' : '';
  let rest = Math.abs(Math.round(ms / 1000));
  const d = Math.floor(rest / 86400);
  rest -= d * 86400;
  const h = Math.floor(rest / 3600);
  rest -= h * 3600;
  const m = Math.floor(rest / 60);
  const s = rest - m * 60;
  const parts = d > 0 ? [`${d}d`, `${h}h`] : h > 0 ? [`${h}h`, `${m}m`] : m > 0 ? [`${m}m`, `${s}s`] : [`${s}s`];
  return sign + parts.filter((p, i) => i === 0 || !p.startsWith('0')).join(' ');
}

/** Pretty JSON, newline-terminated. */
export function json(value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n';
}
