// Runs one exported function of a bench/ module in its own process:
//   --file rotation.ts --export runRotationBench [--work <bench work dir>, only to name the process]
// then `run` with { options } replies { result }. `ready` lists the module's exports, so the
// bench can say which one is missing.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { benchDir } from '../lib/children.js';
import { handle, ready } from './ipc.js';

const { values } = parseArgs({ options: { file: { type: 'string' }, export: { type: 'string' }, work: { type: 'string' } } });
const mod = (await import(pathToFileURL(resolve(benchDir, values.file ?? '')).href)) as Record<string, unknown>;

handle('run', async (m) => {
  const fn = mod[values.export ?? ''];
  if (typeof fn !== 'function') throw new Error(`${values.file} does not export ${values.export}`);
  const result: unknown = await fn(m.options ?? {});
  // Round-trip through JSON so that only data crosses the channel (no functions, no cycles).
  return { result: JSON.parse(JSON.stringify(result ?? null)) as unknown };
});

ready({ exports: Object.keys(mod) });
