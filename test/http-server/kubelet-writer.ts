// Child process for the load test: plays the kubelet. Publishes each generation found in
// <staging>/<n>/ (tls.crt, tls.key, ca.crt; n = 0, 1, …) onto the volume <dir> with the kubelet's
// atomic ..data swap, one every <everyMs>, printing "swapped <n>" after each; exits when done.
// Run as a separate process so the writer does not compete with the server's event loop, as the
// real kubelet does not.
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { kubernetesVolume } from '@meshless/testing';

const [dir, staging, everyMs] = process.argv.slice(2);
if (!dir || !staging || !everyMs) throw new Error('usage: kubelet-writer <dir> <staging> <everyMs>');
const volume = kubernetesVolume(dir);
const generations = (await readdir(staging)).map(Number).sort((a, b) => a - b);
const start = Date.now();
for (const [i, n] of generations.entries()) {
  // The cadence of the load, not a wait for an event.
  const due = start + (i + 1) * Number(everyMs);
  if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
  const read = (name: string) => readFile(join(staging, String(n), name), 'utf8');
  await volume.write({ 'tls.crt': await read('tls.crt'), 'tls.key': await read('tls.key'), 'ca.crt': await read('ca.crt') });
  process.stdout.write(`swapped ${n}\n`);
}
await volume.close();
