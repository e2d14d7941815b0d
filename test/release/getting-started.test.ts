// Follows docs/getting-started.md literally in a new, empty folder: every ```sh line is run with
// sh, every code block that starts with a `// file.ext` comment is written to that file, in the
// order of the page. npm installs by name from the packed packages (a local registry; other names
// come from the public registry). The one liberty taken: the ports 8443 and 9443 become free ones,
// so that the test never collides with anything else on the machine.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { cleanEnv, localRegistry, packAll, root, runIn, tempDir, upstreamUnreachable, type LocalRegistry } from './helpers/release.js';

interface Step {
  kind: 'file' | 'command';
  text: string;
  file?: string;
}

/** The page as steps: files to write and shell lines to run, in order. */
function steps(markdown: string): Step[] {
  const out: Step[] = [];
  for (const [, lang, body] of markdown.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)) {
    if (lang === 'sh') {
      for (const raw of body!.split('\n')) {
        const line = raw.replace(/\s+#.*$/, '').trim();
        if (line && !line.startsWith('#')) out.push({ kind: 'command', text: line });
      }
    } else {
      const name = body!.match(/^\/\/ ([\w.-]+\.\w+)\n/)?.[1];
      if (name) out.push({ kind: 'file', file: name, text: body! });
    }
  }
  return out;
}

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** What the page says each command prints (checked where the page shows it). */
const expected: Record<string, RegExp> = {
  'node client.mjs': /^hello spiffe:\/\/prod\.example\/ns\/shop\/sa\/orders$/m,
  'node grpc-client.mjs': /^charged by spiffe:\/\/prod\.example\/ns\/shop\/sa\/orders$/m,
  'curl ': /^hello spiffe:\/\/prod\.example\/ns\/shop\/sa\/orders$/m,
};

describe('release: docs/getting-started.md, followed literally with the published packages', function () {
  this.timeout(420_000);
  let registry: LocalRegistry | undefined;
  const background: ChildProcess[] = [];

  after(async () => {
    for (const child of background) if (child.exitCode === null) child.kill('SIGTERM');
    await registry?.close();
  });

  it('every step works in a new folder, and prints what the page says', async function () {
    const page = readFileSync(join(root, 'docs', 'getting-started.md'), 'utf8');
    const [http, grpc] = [await freePort(), await freePort()];
    const list = steps(page.replaceAll('8443', String(http)).replaceAll('9443', String(grpc)));
    assert.ok(list.filter((s) => s.kind === 'file').length >= 4 && list.filter((s) => s.kind === 'command').length >= 10, 'the page has its steps');
    for (const prefix of Object.keys(expected)) assert.ok(list.some((s) => s.kind === 'command' && s.text.startsWith(prefix)), `the page runs ${prefix}`);

    console.log('      (packing every package, then following the page: npm installs, the CLI, two servers and their clients)');
    const offline = await upstreamUnreachable();
    if (offline) {
      console.log(`      (the npm registry is unreachable from here, so the third-party dependencies cannot install: ${offline})`);
      this.skip();
    }
    registry = await localRegistry(await packAll());
    const env = cleanEnv(registry.env);
    const project = tempDir('meshless-getting-started-');
    const hasCurl = spawnSync('curl', ['--version'], { stdio: 'ignore' }).status === 0;
    const transcript: string[] = [];

    for (const step of list) {
      if (step.kind === 'file') {
        writeFileSync(join(project, step.file!), step.text);
        transcript.push(`(wrote ${step.file})`);
        continue;
      }
      const line = step.text;
      if (line.startsWith('curl ') && !hasCurl) {
        console.log('      (curl is not installed: skipping the curl step; scripts/setup-system.sh installs it as root)');
        continue;
      }
      if (line.endsWith('&')) {
        // A server: runs until the end of the test; ready when it prints its first line.
        const child = spawn('sh', ['-c', `exec ${line.slice(0, -1).trim()}`], { cwd: project, env, stdio: ['ignore', 'pipe', 'pipe'] });
        background.push(child);
        let stderr = '';
        child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
        const ready = new Promise<string>((resolve, reject) => {
          createInterface({ input: child.stdout! }).once('line', resolve);
          child.once('exit', (code) => reject(new Error(`\`${line}\` exited (${code}) before it printed a line:\n${stderr}\n${transcript.join('\n')}`)));
        });
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`\`${line}\` printed nothing within 60 s:\n${stderr}`)), 60_000)));
        const first = await Promise.race([ready, timeout]).finally(() => clearTimeout(timer));
        transcript.push(`$ ${line}\n${first}`);
        continue;
      }
      const r = await runIn(project, 'sh', ['-c', line], env, 240_000);
      transcript.push(`$ ${line}\n${r.stdout}${r.stderr}`);
      if (r.code !== 0 && line.startsWith('npm install') && registry.unreachable.length) {
        console.log(`      (the npm registry is unreachable from here, so \`${line}\` cannot install the third-party packages: ${registry.unreachable[0]})`);
        this.skip();
      }
      assert.equal(r.code, 0, `\`${line}\` exited ${r.code}:\n${r.stdout}${r.stderr}\n--- transcript ---\n${transcript.join('\n')}`);
      const want = Object.entries(expected).find(([prefix]) => line.startsWith(prefix))?.[1];
      if (want) assert.match(r.stdout, want, `\`${line}\` printed:\n${r.stdout}${r.stderr}`);
    }
    if (process.env.MESHLESS_TRANSCRIPT) console.log(transcript.join('\n'));
    const pkg = JSON.parse(readFileSync(join(project, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
    assert.ok(pkg.dependencies['@meshless/http'] && pkg.dependencies['@meshless/grpc'] && pkg.devDependencies['meshless'], 'the project depends on the packages by name');
  });
});
