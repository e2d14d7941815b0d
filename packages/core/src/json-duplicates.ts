/** A key that appears twice in one JSON object, and where. */
export interface DuplicateJsonKey {
  /** The repeated key, decoded (`"a"` and `"\u0061"` are the same key). */
  key: string;
  /** The keys leading to the object that holds it (empty for the top-level object). */
  path: readonly string[];
}

interface ObjectFrame {
  kind: 'object';
  keys: Set<string>;
  expectKey: boolean;
  lastKey: string | undefined;
}
type Frame = ObjectFrame | { kind: 'array' };

/**
 * Finds the first key repeated within one object of a JSON text. `JSON.parse` keeps the last
 * value silently, which would let a second `"partner.example"` entry of a bundle map shadow the
 * first unseen. Call it only on text `JSON.parse` accepted: it assumes valid JSON and only
 * tokenises strings and brackets (iteratively: any nesting depth).
 */
export function findDuplicateJsonKey(text: string): DuplicateJsonKey | undefined {
  const stack: Frame[] = [];
  const pathOf = (): string[] => stack.flatMap((f) => (f.kind === 'object' && f.lastKey !== undefined ? [f.lastKey] : []));
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let j = i + 1;
      while (j < text.length && text.charCodeAt(j) !== 0x22) j += text.charCodeAt(j) === 0x5c /* \ */ ? 2 : 1;
      const top = stack[stack.length - 1];
      if (top?.kind === 'object' && top.expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (top.keys.has(key)) {
          stack.pop();
          return { key, path: pathOf() };
        }
        top.keys.add(key);
        top.lastKey = key;
        top.expectKey = false;
      }
      i = j;
    } else if (c === 0x7b /* { */) {
      stack.push({ kind: 'object', keys: new Set(), expectKey: true, lastKey: undefined });
    } else if (c === 0x5b /* [ */) {
      stack.push({ kind: 'array' });
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
    } else if (c === 0x2c /* , */) {
      const top = stack[stack.length - 1];
      if (top?.kind === 'object') top.expectKey = true;
    }
  }
  return undefined;
}
