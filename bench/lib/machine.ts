import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import type { Machine } from './results.js';
import type { SystemTools } from './system-tools.js';
import { versionOf } from './system-tools.js';

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
