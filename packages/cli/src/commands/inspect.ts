import { parseCommandLine, positionalsExactly } from '../args.js';
import { exitCodes, type Command } from '../command.js';
import { json } from '../io.js';
import { inspectDirectory, inspectExitCode, type InspectReport } from '../inspect/report.js';
import { renderReport } from '../inspect/render.js';

const help = `Usage: meshless inspect PATH [--json]

Checks the credential mounted in directory PATH the way a meshless service would load it:
the layout found (kubernetes, istio, spiffe-helper, gke) and whether it swaps atomically
through ..data, the identity, the chain and the bundle, validity and time left, whether the
key matches the leaf, and whether the chain verifies to the bundle.

Exit status: 0 when the credential is usable (warnings such as "expiring soon", "subPath
mount" or "expired root in the bundle" are listed but do not fail); 1 with its MESHLESS_ERR_*
code when a service would refuse it (key mismatch, expired, not yet valid, CA as leaf, chain
does not verify, no identity, no layout); 2 on a usage error.

Options:
  --json       print the report as JSON
  -h, --help   show this help
`;

export const inspect: Command = {
  path: ['inspect'],
  summary: 'check a mounted credential: layout, identity, chain, validity, key match',
  help,
  async run(argv, io) {
    const { values, positionals } = parseCommandLine(argv, { json: { type: 'boolean' } });
    if (values.help) {
      io.out(help);
      return exitCodes.ok;
    }
    const [path] = positionalsExactly(positionals, ['path']) as [string];
    const report = await inspectDirectory(path);
    io.out(values.json ? json(ordered(report)) : renderReport(report));
    if (!report.ok && !values.json) io.err(`meshless inspect: ${report.error!.code}\n`);
    return inspectExitCode(report);
  },
};

/** The report with its fields in reading order (verdict first). */
function ordered(r: InspectReport): Record<string, unknown> {
  const { path, ok, error, warnings, layout, identity, validity, key, chain, bundle, verifiedPath } = r;
  return { path, ok, error, warnings, layout, identity, validity, key, chain, bundle, verifiedPath };
}
