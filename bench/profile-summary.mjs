#!/usr/bin/env node
// Top functions by self time in V8 CPU profiles (from `npm run bench -- --cpu-prof`).
//   node bench/profile-summary.mjs <file.cpuprofile | dir> [--top 25] [--pid 1234]
// For a directory, profiles of the main thread (…<pid>.0.*) are summarised one by one.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string' }, pid: { type: 'string' } } });
const top = Number(values.top ?? 25);

function summarise(file) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const deltas = profile.timeDeltas;
  let total = 0;
  profile.samples.forEach((id, i) => {
    const dt = deltas[i] ?? 0;
    total += dt;
    const n = byId.get(id);
    const cf = n.callFrame;
    const where = cf.url ? `${cf.url.replace(/^.*\/(node_modules|packages|bench)\//, '$1/')}:${cf.lineNumber + 1}` : '';
    const key = `${cf.functionName || '(anonymous)'} ${where}`.trim();
    self.set(key, (self.get(key) ?? 0) + dt);
  });
  const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, top);
  console.log(`\n${basename(file)}: ${(total / 1000).toFixed(0)} ms sampled`);
  for (const [key, us] of rows) console.log(`  ${((us / total) * 100).toFixed(1).padStart(5)} %  ${key}`);
}

for (const p of positionals) {
  if (statSync(p).isDirectory()) {
    for (const f of readdirSync(p).sort()) {
      const m = /\.(\d+)\.0\.\d+\.cpuprofile$/.exec(f);
      if (m && (!values.pid || m[1] === values.pid)) summarise(join(p, f));
    }
  } else summarise(p);
}
