import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** Rejects if `promise` has not settled within `ms`; the timer never outlives the race. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A fresh temporary directory per test, removed after it. Call at describe level. */
export function useTempDir(): () => string {
  let dir: string | undefined;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshless-testing-'));
  });
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });
  return () => {
    if (!dir) throw new Error('useTempDir: no temporary directory outside a test');
    return dir;
  };
}

/**
 * Runs `openssl verify` on a leaf (with optional untrusted intermediates) against a CA file.
 * Returns `{ ok, output }` instead of throwing, so tests can assert failures too.
 */
export async function opensslVerify(
  dir: string,
  pems: { caFile: string; leaf: string; untrusted?: string; purpose?: 'sslserver' | 'sslclient' },
): Promise<{ ok: boolean; output: string }> {
  const ca = join(dir, 'verify-ca.pem');
  const leaf = join(dir, 'verify-leaf.pem');
  await writeFile(ca, pems.caFile);
  await writeFile(leaf, pems.leaf);
  const args = ['verify', '-CAfile', ca];
  if (pems.untrusted) {
    const untrusted = join(dir, 'verify-untrusted.pem');
    await writeFile(untrusted, pems.untrusted);
    args.push('-untrusted', untrusted);
  }
  if (pems.purpose) args.push('-purpose', pems.purpose);
  args.push(leaf);
  try {
    const { stdout, stderr } = await execFileAsync('openssl', args);
    return { ok: true, output: stdout + stderr };
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}` || e.message };
  }
}

/** Splits a PEM bundle into its blocks, each ending with a newline. */
export function pemBlocks(pem: string): string[] {
  return pem.match(/-----BEGIN [A-Z ]+-----\n[\s\S]*?\n-----END [A-Z ]+-----\n/g) ?? [];
}
