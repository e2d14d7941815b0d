// Starts the example services as child processes and follows the JSON events they print.
import { spawn } from 'node:child_process';

/** Polls `predicate` every 10 ms until it returns a truthy value, or rejects after `timeoutMs`. */
export async function waitFor(predicate, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = predicate();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * Runs `node script` with `env`; resolves once it prints {"event":"ready","port":N}. The handle
 * keeps every JSON line of its stdout in `events`, and its stderr for error reports.
 */
export async function startService(name, script, env) {
  const child = spawn(process.execPath, [script], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const service = { name, child, events: [], stderr: '', exited: false, port: 0 };
  let partial = '';
  child.stdout.setEncoding('utf8').on('data', (chunk) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop();
    for (const line of lines) {
      try {
        service.events.push(JSON.parse(line));
      } catch {
        // not an event line
      }
    }
  });
  child.stderr.setEncoding('utf8').on('data', (chunk) => {
    service.stderr = (service.stderr + chunk).slice(-20_000);
  });
  service.exit = new Promise((resolve) => child.on('exit', (code, signal) => {
    service.exited = true;
    resolve(code ?? signal);
  }));
  service.waitForEvent = (predicate, timeoutMs, what) =>
    waitFor(() => {
      if (service.exited) throw new Error(`${name} exited while waiting for ${what}:\n${service.stderr}`);
      return service.events.find(predicate);
    }, timeoutMs, `${name}: ${what}`);
  service.stop = async () => {
    if (!service.exited) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await service.exit;
    clearTimeout(timer);
  };
  const ready = await service.waitForEvent((e) => e.event === 'ready', 20_000, 'its ready line');
  service.port = ready.port;
  return service;
}
