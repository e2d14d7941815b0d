import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { MeshlessError, codes, isMeshlessError } from '@meshless/core';
import { describeRule, parsePolicy } from '@meshless/core/internal';

/** What `meshless inspect --policy FILE` found. */
export interface PolicyReport {
  readonly file: string;
  readonly ok: boolean;
  readonly error?: { code: string; message: string; rule?: string };
  readonly dryRun?: boolean;
  readonly rules?: readonly { list: 'allow' | 'deny'; line: number; rule: string; matches: string }[];
}

/** Reads, parses and compiles a policy file exactly as `policyFile` does, and says what each rule matches. */
export async function inspectPolicy(file: string): Promise<PolicyReport> {
  const absolute = path.resolve(file);
  try {
    let text: string;
    try {
      text = await readFile(absolute, 'utf8');
    } catch (cause) {
      throw new MeshlessError(codes.POLICY_INVALID, `policy file ${absolute}: cannot be read (${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message})`, { file: absolute, cause });
    }
    const policy = parsePolicy(text, absolute);
    return {
      file: absolute,
      ok: true,
      dryRun: policy.dryRun,
      rules: policy.rules.map((r) => ({ list: r.list, line: r.line, rule: r.rule, matches: describeRule(r.rule) })),
    };
  } catch (err) {
    if (!isMeshlessError(err)) throw err;
    return { file: absolute, ok: false, error: { code: err.code, message: err.message, ...(err.rule === undefined ? {} : { rule: err.rule }) } };
  }
}

export function renderPolicyReport(report: PolicyReport): string {
  if (!report.ok) return `policy ${report.file}: INVALID\n  ${report.error!.message}\n  the last good policy stays in force where this file is mounted; fix it before it is applied\n`;
  const lines = [`policy ${report.file}: valid${report.dryRun ? ' — DRY RUN: would-be denials are logged and counted, not enforced' : ''}`];
  for (const list of ['allow', 'deny'] as const) {
    const rules = report.rules!.filter((r) => r.list === list);
    if (rules.length === 0) continue;
    lines.push(`${list}${list === 'deny' ? ' (wins over allow)' : ''}:`);
    const width = Math.max(...rules.map((r) => r.rule.length));
    for (const r of rules) lines.push(`  line ${String(r.line).padEnd(4)} ${r.rule.padEnd(width)}  ${r.matches}`);
  }
  lines.push('anything else is refused');
  return lines.join('\n') + '\n';
}
