import { spawnSync } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { join } from 'node:path';
import { benchDir } from './children.js';
import type { Machine } from './results.js';

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function which(names: string[], extra: string[] = []): string | undefined {
  const dirs = (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/usr/bin', '/sbin', '/bin']);
  for (const name of names) for (const dir of dirs) if (executable(join(dir, name))) return join(dir, name);
  return extra.find(executable);
}

export interface SystemTools {
  stunnel?: string;
  nginx?: string;
  /** What was done or found, for the report. */
  notes: string[];
}

/**
 * Finds stunnel and nginx; when one is missing, runs scripts/setup-system.sh (idempotent; it
 * installs with apt-get when running as root) and looks again.
 */
export function findSystemTools(): SystemTools {
  const notes: string[] = [];
  let stunnel = which(['stunnel4', 'stunnel']);
  let nginx = which(['nginx'], ['/usr/sbin/nginx']);
  if (!stunnel || !nginx) {
    const missing = [!stunnel && 'stunnel4', !nginx && 'nginx'].filter(Boolean).join(', ');
    notes.push(`${missing} missing: ran scripts/setup-system.sh`);
    const r = spawnSync('bash', [join(benchDir, '..', 'scripts', 'setup-system.sh')], { stdio: 'inherit', timeout: 300_000 });
    if (r.status !== 0) notes.push(`scripts/setup-system.sh exited with ${r.status}`);
    stunnel = which(['stunnel4', 'stunnel']);
    nginx = which(['nginx'], ['/usr/sbin/nginx']);
  }
  return { ...(stunnel ? { stunnel } : {}), ...(nginx ? { nginx } : {}), notes };
}

/** First line of a program's version output, or undefined. */
function versionOf(command: string, args: string[]): string | undefined {
  const r = spawnSync(command, args, { encoding: 'utf8', timeout: 5000 });
  const text = `${r.stdout ?? ''}\n${r.stderr ?? ''}`;
  const line = text
    .split('\n')
    .map((l) => l.trim())
    .find((l) => /\d+\.\d+/.test(l) && !/inetd/i.test(l));
  return line;
}
function packageVersion(name: string): string | undefined {
  try {
    const require = createRequire(import.meta.url);
    const path = require.resolve(`${name}/package.json`);
    return (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version;
  } catch {
    return undefined;
  }
}

/** What the numbers were measured on. */
export function describeMachine(tools: SystemTools): Machine {
  return {
    nproc: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    loadAverageAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
    tools: {
      openssl: process.versions.openssl,
      undici: packageVersion('undici'),
      '@grpc/grpc-js': packageVersion('@grpc/grpc-js'),
      stunnel: tools.stunnel ? versionOf(tools.stunnel, ['-version']) : undefined,
      nginx: tools.nginx ? versionOf(tools.nginx, ['-v']) : undefined,
    },
  };
}
