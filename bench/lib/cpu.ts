import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat times (`getconf CLK_TCK`, 100 almost everywhere). */
const ticksPerSecond = (() => {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isFinite(n) && n > 0 ? n : 100;
  } catch {
    return 100;
  }
})();

interface ProcStat {
  ppid: number;
  /** utime + stime + cutime + cstime, in ticks: own CPU and that of reaped children. */
  ticks: number;
}

function readStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: fields start after the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); ppid is field 4, utime..cstime are fields 14..17.
  const ppid = Number(rest[1]);
  const ticks = Number(rest[11]) + Number(rest[12]) + Number(rest[13]) + Number(rest[14]);
  return { ppid, ticks };
}

/** True when CPU times can be read from /proc (Linux). */
export function procAvailable(): boolean {
  return readStat(process.pid) !== undefined;
}

/**
 * CPU seconds used so far by the processes `roots` and all their descendants (nginx workers,
 * stunnel under its keeper…), read from /proc. Threads are included in their process's times.
 */
export function treeCpuSeconds(roots: readonly number[]): number {
  const childrenOf = new Map<number, number[]>();
  const stats = new Map<number, ProcStat>();
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return NaN; // no /proc: serving-side CPU is unknown here
  }
  for (const name of names) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    const st = readStat(pid);
    if (!st) continue;
    stats.set(pid, st);
    let list = childrenOf.get(st.ppid);
    if (!list) childrenOf.set(st.ppid, (list = []));
    list.push(pid);
  }
  let ticks = 0;
  const seen = new Set<number>();
  const queue = [...roots];
  while (queue.length > 0) {
    const pid = queue.pop()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    const st = stats.get(pid);
    if (st) ticks += st.ticks;
    for (const child of childrenOf.get(pid) ?? []) queue.push(child);
  }
  return ticks / ticksPerSecond;
}

/**
 * CPU seconds the whole machine has been busy (all cores, from /proc/stat), or NaN where
 * unavailable. Minus the bench's own processes over a window, it tells how much else ran.
 */
export function machineBusySeconds(): number {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal …: busy = all but idle and iowait.
    const busy = f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + (f[7] ?? 0);
    return busy / ticksPerSecond;
  } catch {
    return NaN;
  }
}
