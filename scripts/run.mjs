#!/usr/bin/env node
// One entry point for the README commands: installs (pnpm, pinned), builds (tsc -b), then runs
// the task. Works on a fresh clone with only Node.js 20 and npm.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const PNPM = 'pnpm@12.4.2';
const [task = 'test', ...rest] = process.argv.slice(2);

/** One line before each step that can stay silent for a while, so a newcomer knows what is happening. */
function step(text) {
  console.log(`meshless: ${text}`);
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...opts });
  if (r.error) throw r.error;
  if (r.status !== 0) process.exit(r.status ?? 1);
}

/**
 * Runs mocha, passing its output through, then prints one plain closing line
 * ("N passed, N failed, N skipped") that any CI can read, and exits with mocha's status.
 */
function runMocha(args) {
  const colour = process.stdout.isTTY ? ['--color'] : [];
  const child = spawn(bin('mocha'), [...colour, ...args], { cwd: root, stdio: ['inherit', 'pipe', 'inherit'] });
  let tail = '';
  child.stdout.on('data', (chunk) => {
    process.stdout.write(chunk);
    tail = (tail + chunk.toString()).slice(-8192);
  });
  child.on('close', (code, signal) => {
    // eslint-disable-next-line no-control-regex
    const plain = tail.replace(/\x1b\[[0-9;]*m/g, '');
    const count = (word) => Number(plain.match(new RegExp(`(\\d+) ${word}`))?.[1] ?? 0);
    const [passed, failed, skipped] = [count('passing'), count('failing'), count('pending')];
    if (passed + failed + skipped > 0) console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
    process.exit(code ?? (signal ? 1 : 0));
  });
}

function bin(name) {
  return join(root, 'node_modules', '.bin', name);
}

function installIfNeeded() {
  const marker = join(root, 'node_modules', '.modules.yaml');
  const lock = join(root, 'pnpm-lock.yaml');
  const fresh = existsSync(marker) && existsSync(lock) && statSync(marker).mtimeMs >= statSync(lock).mtimeMs;
  if (fresh && !process.env.CI) return;
  step(`installing dependencies with ${PNPM} (the first time: a minute or two)`);
  const args = ['--yes', PNPM, 'install'];
  if (process.env.CI && existsSync(lock)) args.push('--frozen-lockfile');
  run('npx', args);
}

function build() {
  step('building the packages (tsc -b, then one esbuild bundle per entry point: scripts/build.mjs)');
  run(process.execPath, [join(root, 'scripts', 'build.mjs')]);
}

/**
 * The quick tier (`npm run test:unit`), for the edit-run loop: every package's own tests except
 * those that drive system tools or child processes, or measure (fuzzing, memory), two files at a
 * time. `npm test` still runs everything, these included.
 */
const UNIT_SPECS = ['packages/*/test/**/*.test.ts'];
const NOT_UNIT = [
  'packages/cli/test/**', // runs the built CLI as child processes
  'packages/core/test/file-source-process.test.ts', // child processes
  'packages/core/test/*fuzz.test.ts', // property tests: many runs
  'packages/testing/test/test-ca.test.ts', // openssl verify, RSA keys
  'packages/testing/test/tls-handshake.test.ts', // openssl s_client / s_server
  'packages/http/test/client-footprint.test.ts', // memory measurement
  'packages/nest/test/grpc.test.ts', // a Python grpcio client
];

installIfNeeded();
build();

switch (task) {
  case 'build':
    break;
  case 'test':
    // Tests and benchmarks run through tsx, which strips types: check them here.
    step('type-checking the tests and benchmarks (tsc)');
    run(bin('tsc'), ['-p', 'tsconfig.tests.json']);
    run(bin('tsc'), ['-p', join('bench', 'tsconfig.json')]);
    if (!process.env.MESHLESS_SKIP_SYSTEM_SETUP) {
      step('checking the system tools the tests drive (scripts/setup-system.sh: as root, installs missing ones with apt)');
      run('bash', [join(root, 'scripts', 'setup-system.sh')]);
    }
    step(`running the tests on Node.js ${process.version} (mocha; several minutes)`);
    runMocha(rest.length ? rest : ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts']);
    break;
  case 'unit':
    // No type-check of the tests and no system setup: tsx runs them as they are (npm test checks types).
    step(`running the unit tier on Node.js ${process.version} (mocha, two files at a time)`);
    runMocha(rest.length ? rest : ['--parallel', '--jobs', '2', ...UNIT_SPECS, ...NOT_UNIT.flatMap((glob) => ['--ignore', glob])]);
    break;
  case 'coverage':
    // Coverage of the TypeScript sources (through tsx's source maps), text summary + lcov in coverage/.
    run(bin('c8'), ['--reporter=text-summary', '--reporter=lcov', '--include=packages/*/src/**', '--exclude-after-remap', bin('mocha'), ...(rest.length ? rest : ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts'])]);
    break;
  case 'demo':
    run(process.execPath, [join(root, 'examples', 'demo', 'run.mjs'), ...rest]);
    break;
  case 'bench':
    run(process.execPath, [join(root, 'bench', 'run.mjs'), ...rest]);
    break;
  default:
    console.error(`unknown task ${task}: use test, unit, demo, bench, coverage or build`);
    process.exit(2);
}
