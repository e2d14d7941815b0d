import type { FederationFiles } from '@meshless/core';
import { optionalString, stringList, type OptionSpec } from './args.js';
import { UsageError } from './usage.js';

/** `--federation TD=FILE` (repeatable) and `--bundle-map FILE`, for parseCommandLine. */
export const federationOptions: OptionSpec = {
  federation: { type: 'string', multiple: true },
  'bundle-map': { type: 'string' },
};

/** The help lines of those two options. */
export const federationHelp =
  `  --federation TD=FILE   a federated trust domain's bundle (PEM or SPIFFE bundle; repeatable)\n` +
  `  --bundle-map FILE      a bundle map: { "trust_domains": { TD: <SPIFFE bundle>, … } }\n`;

/** `--federation TD=FILE…` and `--bundle-map FILE` as fileSource's location fields. */
export function federationFlags(values: Record<string, unknown>): FederationFiles {
  const federation: Record<string, string> = {};
  for (const arg of stringList(values, 'federation')) {
    const eq = arg.indexOf('=');
    if (eq <= 0 || eq === arg.length - 1) throw new UsageError(`--federation ${JSON.stringify(arg)}: write TD=FILE, e.g. --federation partner.example=/etc/partner/bundle.json`, 'federation');
    const td = arg.slice(0, eq);
    if (federation[td] !== undefined) throw new UsageError(`--federation names ${td} twice`, 'federation');
    federation[td] = arg.slice(eq + 1);
  }
  const bundleMap = optionalString(values, 'bundle-map');
  return { ...(Object.keys(federation).length > 0 ? { federation } : {}), ...(bundleMap === undefined ? {} : { bundleMap }) };
}

export function hasFederation(f: FederationFiles): boolean {
  return f.bundleMap !== undefined || Object.keys(f.federation ?? {}).length > 0;
}
