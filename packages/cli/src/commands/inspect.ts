import { parseCommandLine, positionalsExactly } from '../args.js';
import { federationFlags, federationOptions } from '../federation-flags.js';
import { exitCodes, type Command } from '../command.js';
import { json, type CommandIO } from '../io.js';
import { UsageError } from '../usage.js';
import { inspectDirectory, inspectExitCode, type InspectReport } from '../inspect/report.js';
import { renderReport } from '../inspect/render.js';

const help = `Usage: meshless inspect PATH [--federation TD=FILE…] [--bundle-map FILE] [--json]
       meshless inspect --workload-api [ADDRESS] [--json]
       meshless inspect --policy FILE [--json]

Checks the credential mounted in directory PATH the way a meshless service would load it:
the layout found (kubernetes, istio, spiffe-helper, gke) and whether it swaps atomically
through ..data, the identity, the chain and the bundle, validity and time left, whether the
key matches the leaf, and whether the chain verifies to the bundle.

Exit status: 0 when the credential is usable (warnings such as "expiring soon", "subPath
mount" or "expired root in the bundle" are listed but do not fail); 1 with its MESHLESS_ERR_*
code when a service would refuse it (key mismatch, expired, not yet valid, CA as leaf, chain
does not verify, no identity, no layout); 2 on a usage error.

The bundles are listed per trust domain: our own (the bundle file in PATH), and those of
federated trust domains read as fileSource({ dir, federation, bundleMap }) reads them (PEM or
SPIFFE bundle files, a bundle map), with a warning when our own bundle holds another trust
domain's root (a flattened bundle: peers of that trust domain would be refused).

With --workload-api, asks the SPIFFE Workload API (ADDRESS, else SPIFFE_ENDPOINT_SOCKET:
unix:///path/to/agent.sock or tcp://IP:PORT) what it hands this process: every SVID with its
hint and validity and whether it validates, and the bundle of every trust domain (own and
federated). Exit 1 when the default SVID (svids[0]) would be refused or nothing answers.

With --policy, checks a policy file (YAML or JSON: allow, deny, dryRun) exactly as policyFile()
reads it, and prints what each rule matches, with its line. Exit 1 with MESHLESS_ERR_POLICY_INVALID
naming the line and the rule when a service would refuse the file.

Options:
  --federation TD=FILE      a federated trust domain's bundle file (repeatable)
  --bundle-map FILE         a bundle map: { "trust_domains": { TD: <SPIFFE bundle>, … } }
  --workload-api [ADDRESS]  inspect the SPIFFE Workload API instead of a directory
  --policy FILE             check a policy file instead of a credential
  --json                    print the report as JSON
  -h, --help                show this help
`;

export const inspect: Command = {
  path: ['inspect'],
  summary: 'check a mounted credential: layout, identity, chain, validity, key match',
  help,
  async run(argv, io) {
    const { values, positionals } = parseCommandLine(argv, { json: { type: 'boolean' }, 'workload-api': { type: 'boolean' }, policy: { type: 'string' }, ...federationOptions });
    if (values.help) {
      io.out(help);
      return exitCodes.ok;
    }
    if (typeof values.policy === 'string') return inspectPolicyFile(values.policy, positionals, values.json === true, io);
    if (values['workload-api']) return inspectWorkloadApi(positionals, values.json === true, io);
    const [path] = positionalsExactly(positionals, ['path']) as [string];
    const report = await inspectDirectory(path, Date.now(), federationFlags(values));
    io.out(values.json ? json(ordered(report)) : renderReport(report));
    if (!report.ok && !values.json) io.err(`meshless inspect: ${report.error!.code}\n`);
    return inspectExitCode(report);
  },
};

async function inspectWorkloadApi(positionals: string[], asJson: boolean, io: CommandIO): Promise<number> {
  if (positionals.length > 1) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[1])}: --workload-api takes one ADDRESS at most`);
  const { fetchX509Svids } = await import('@meshless/workload-api');
  const { workloadApiReport, renderWorkloadApiReport } = await import('../inspect/workload-api.js');
  const report = workloadApiReport(await fetchX509Svids(positionals[0] === undefined ? {} : { address: positionals[0] }));
  io.out(asJson ? json(report) : renderWorkloadApiReport(report));
  if (!report.ok && !asJson) io.err(`meshless inspect: ${report.error!.code}\n`);
  return report.ok ? exitCodes.ok : exitCodes.failed;
}

async function inspectPolicyFile(file: string, positionals: string[], asJson: boolean, io: CommandIO): Promise<number> {
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}: --policy takes one FILE`);
  const { inspectPolicy, renderPolicyReport } = await import('../inspect/policy.js');
  const report = await inspectPolicy(file);
  io.out(asJson ? json(report) : renderPolicyReport(report));
  if (!report.ok && !asJson) io.err(`meshless inspect: ${report.error!.code}\n`);
  return report.ok ? exitCodes.ok : exitCodes.failed;
}

/** The report with its fields in reading order (verdict first). */
function ordered(r: InspectReport): Record<string, unknown> {
  const { path, ok, error, warnings, layout, identity, validity, key, chain, bundle, bundles, verifiedPath } = r;
  return { path, ok, error, warnings, layout, identity, validity, key, chain, bundle, bundles, verifiedPath };
}
