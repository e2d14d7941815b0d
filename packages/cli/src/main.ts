import { readFileSync } from 'node:fs';
import { isMeshlessError } from '@meshless/core';
import { exitCodes, type Command } from './command.js';
import { docLink } from './docs.js';
import { caInit } from './commands/ca-init.js';
import { caIssue } from './commands/ca-issue.js';
import { caBundle } from './commands/ca-bundle.js';
import { inspect } from './commands/inspect.js';
import { probeCommand } from './commands/probe.js';
import { serve } from './commands/serve.js';
import { processIO, type CommandIO } from './io.js';
import { isUsageError } from './usage.js';

/** Every command, in the order `meshless --help` lists them. */
export const commands: readonly Command[] = [caInit, caIssue, caBundle, inspect, probeCommand, serve];

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function overview(): string {
  const width = Math.max(...commands.map((c) => c.path.join(' ').length));
  return (
    `Usage: meshless COMMAND [options]\n\n` +
    `Mutual TLS for Node.js services without a mesh: make dev certificates, check mounted ones,\n` +
    `probe a server's identity, run a reference service.\n\nCommands:\n` +
    commands.map((c) => `  ${c.path.join(' ').padEnd(width)}  ${c.summary}`).join('\n') +
    `\n\nRun \`meshless COMMAND --help\` for a command's options. Docs: ${docLink('getting-started.md')}\n`
  );
}

/** Finds the command selected by the leading words of `argv`. */
function select(argv: readonly string[]): { command: Command; rest: string[] } | undefined {
  const matches = commands.filter((c) => c.path.every((word, i) => argv[i] === word));
  const command = matches.sort((a, b) => b.path.length - a.path.length)[0];
  return command && { command, rest: argv.slice(command.path.length) };
}

/**
 * Runs the `meshless` command line and resolves with its exit code: 0 ok, 1 a coded failure
 * (`MESHLESS_ERR_*` on stderr), 2 a usage error.
 */
export async function main(argv: readonly string[], io: CommandIO = processIO): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    io.out(overview());
    return argv.length === 0 ? exitCodes.usage : exitCodes.ok;
  }
  if (argv[0] === '--version' || argv[0] === '-v') {
    io.out(`${version()}\n`);
    return exitCodes.ok;
  }
  const selected = select(argv);
  if (!selected) {
    const group = commands.filter((c) => c.path[0] === argv[0]);
    const hint = group.length ? `: use ${group.map((c) => `\`meshless ${c.path.join(' ')}\``).join(' or ')}` : '; run `meshless --help`';
    io.err(`meshless: unknown command ${JSON.stringify(argv.slice(0, group.length ? 2 : 1).join(' '))}${hint}\n`);
    return exitCodes.usage;
  }
  const { command, rest } = selected;
  try {
    return await command.run(rest, io);
  } catch (err) {
    const name = `meshless ${command.path.join(' ')}`;
    if (isUsageError(err)) {
      io.err(`${name}: ${err.message}\nRun \`${name} --help\` for usage.\n`);
      return exitCodes.usage;
    }
    if (isMeshlessError(err)) {
      io.err(`${name}: ${err.code}: ${err.message}\n`);
      return exitCodes.failed;
    }
    io.err(`${name}: ${(err as Error)?.stack ?? String(err)}\n`);
    return exitCodes.failed;
  }
}
