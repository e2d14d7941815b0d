import { randomInt } from 'node:crypto';

/**
 * A timestamp directory name as the kubelet's AtomicWriter makes it: Go's
 * `os.MkdirTemp(dir, time.Now().UTC().Format("..2006_01_02_15_04_05."))`, i.e. the UTC time to the
 * second, a dot, and a random decimal number: `..2026_11_29_02_37_34.2838293981`.
 */
export function timestampDirName(now = new Date()): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  const stamp =
    `${now.getUTCFullYear()}_${pad(now.getUTCMonth() + 1)}_${pad(now.getUTCDate())}_` +
    `${pad(now.getUTCHours())}_${pad(now.getUTCMinutes())}_${pad(now.getUTCSeconds())}`;
  return `..${stamp}.${randomInt(0, 2 ** 32 - 1)}`;
}
