// Keeps one external program (stunnel, nginx) tied to the bench: it is stopped when the bench's
// IPC channel closes (the bench exited, even by SIGKILL), on SIGTERM/SIGINT, or when the
// lifetime in BENCH_MAX_LIFETIME_MS is over. Usage: node keeper.mjs <command> [args…]
import { spawn } from 'node:child_process';

const [command, ...args] = process.argv.slice(2);
const maxLifetimeMs = Number(process.env.BENCH_MAX_LIFETIME_MS) || 15 * 60_000;
const child = spawn(command, args, { stdio: ['ignore', 'inherit', 'inherit'] });

let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  try {
    child.kill('SIGTERM');
  } catch {}
  setTimeout(() => {
    try {
      child.kill('SIGKILL');
    } catch {}
    process.exit(1);
  }, 2000).unref();
}

child.on('error', (err) => {
  console.error(`keeper: cannot start ${command}: ${err.message}`);
  process.exit(127);
});
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
process.on('disconnect', stop);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
setTimeout(stop, maxLifetimeMs).unref();
