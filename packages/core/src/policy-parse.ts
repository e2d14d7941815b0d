import { createRequire } from 'node:module';
import type * as Yaml from 'yaml';
import type { Node } from 'yaml';

// yaml (~9 MB of RSS) is loaded by the first policy file parsed, not when core is imported;
// it is CommonJS for Node, so require() loads it synchronously.
let yamlModule: typeof Yaml | undefined;
function yaml(): typeof Yaml {
  yamlModule ??= createRequire(import.meta.url)('yaml') as typeof Yaml;
  return yamlModule;
}
import { allowList, type Authorizer } from './allow-list.js';
import { MeshlessError, codes, isMeshlessError } from './errors.js';

/** One rule of a policy file, where it was written. */
export interface PolicyRule {
  readonly rule: string;
  /** `allow` or `deny`. */
  readonly list: 'allow' | 'deny';
  /** 1-based line in the file. */
  readonly line: number;
}

/** A parsed and compiled policy file: the rules as written, and the Authorizer they compile to. */
export interface ParsedPolicy {
  readonly allow: readonly string[];
  readonly deny: readonly string[];
  /** True when the file asks for a dry run (would-be denials are logged, not enforced). */
  readonly dryRun: boolean;
  /** Every rule with its list and line, in file order. */
  readonly rules: readonly PolicyRule[];
  /** The rules compiled (without dry run: callers wrap it when `dryRun` is true). */
  readonly authorizer: Authorizer;
}

/** The keys a policy file may have. Anything else is an error (a typo must not widen access). */
const KEYS = ['allow', 'deny', 'dryRun'] as const;

function invalid(file: string, line: number | undefined, message: string, rule?: string, cause?: unknown): MeshlessError {
  const where = line === undefined ? file : `${file} line ${line}`;
  return new MeshlessError(codes.POLICY_INVALID, `policy file ${where}: ${message}`, {
    file,
    ...(rule === undefined ? {} : { rule }),
    ...(cause === undefined ? {} : { cause }),
  });
}

/**
 * Parses a policy file (YAML, or JSON: JSON is read as YAML, which it is a subset of) and compiles
 * its rules. The schema is small and strict:
 *
 * ```yaml
 * allow:                    # required, at least one rule (docs/allow-list.md)
 *   - spiffe://prod.example/ns/web/**
 * deny:                     # optional
 *   - spiffe://prod.example/ns/web/sa/batch
 * dryRun: false             # optional: true logs and counts would-be denials instead of enforcing them
 * ```
 *
 * Unknown keys, duplicate keys, a non-string rule, an empty `allow` and a rule that does not
 * parse are errors (`MESHLESS_ERR_POLICY_INVALID`) naming the file, the line and the rule.
 */
export function parsePolicy(text: string, file: string): ParsedPolicy {
  const { LineCounter, isMap, isScalar, isSeq, parseDocument } = yaml();
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false, strict: true });
  const lineOf = (node: Node | null | undefined): number | undefined => (node?.range ? lines.linePos(node.range[0]).line : undefined);
  if (doc.errors.length > 0) {
    const first = doc.errors[0]!;
    const line = first.linePos?.[0]?.line;
    throw invalid(file, line, `not valid YAML or JSON: ${first.message.split('\n')[0]}`, undefined, first);
  }
  const root = doc.contents;
  if (!isMap(root)) {
    throw invalid(file, lineOf(root as Node | null) ?? 1, 'a policy is a map with the keys allow (required), deny and dryRun, e.g. "allow: [spiffe://prod.example/ns/web/**]"');
  }
  const seen = new Set<string>();
  const rules: PolicyRule[] = [];
  const lists: { allow: string[]; deny: string[] } = { allow: [], deny: [] };
  let dryRun = false;
  for (const pair of root.items) {
    const keyNode = pair.key as Node | null;
    const key = isScalar(keyNode) ? keyNode.value : undefined;
    const keyLine = lineOf(keyNode);
    if (typeof key !== 'string' || !(KEYS as readonly string[]).includes(key)) {
      throw invalid(file, keyLine, `unknown key ${JSON.stringify(key)}: a policy has only ${KEYS.join(', ')}`);
    }
    seen.add(key);
    const value = pair.value as Node | null;
    if (key === 'dryRun') {
      if (!isScalar(value) || typeof value.value !== 'boolean') throw invalid(file, lineOf(value) ?? keyLine, 'dryRun must be true or false');
      dryRun = value.value;
      continue;
    }
    const list = key as 'allow' | 'deny';
    if (isScalar(value) && typeof value.value === 'string') {
      // A single rule written without a list: accept it as a list of one.
      rules.push({ rule: value.value, list, line: lineOf(value) ?? keyLine ?? 1 });
      lists[list].push(value.value);
      continue;
    }
    if (!isSeq(value)) throw invalid(file, lineOf(value) ?? keyLine, `${list} must be a list of rule strings`);
    for (const item of value.items as (Node | null)[]) {
      const line = lineOf(item) ?? keyLine ?? 1;
      if (!isScalar(item) || typeof item.value !== 'string') {
        throw invalid(file, line, `every ${list} rule is a string (e.g. "spiffe://prod.example/ns/web/sa/api"), got ${item === null ? 'nothing' : JSON.stringify(isScalar(item) ? item.value : item.toJSON())}`);
      }
      rules.push({ rule: item.value, list, line });
      lists[list].push(item.value);
    }
  }
  if (!seen.has('allow') || lists.allow.length === 0) {
    throw invalid(file, undefined, 'the policy allows nothing: list the peers to allow under "allow" (write "*" to allow any peer whose certificate verifies)');
  }
  // Compile rule by rule first, so an error names the exact rule and its line.
  for (const r of rules) {
    try {
      allowList([r.rule]);
    } catch (err) {
      if (isMeshlessError(err)) throw invalid(file, r.line, `${r.list} rule ${JSON.stringify(r.rule)}: ${err.message}`, r.rule, err);
      throw err;
    }
  }
  const authorizer = allowList(lists.allow, lists.deny.length > 0 ? { deny: lists.deny } : {});
  return Object.freeze({ allow: Object.freeze(lists.allow), deny: Object.freeze(lists.deny), dryRun, rules: Object.freeze(rules), authorizer });
}
