// `node --import ./record-loads.mjs …`: prints every module URL the process loads to stderr as
// "loaded <url>", through a module-resolution hook (the hooks run on their own thread).
import { register } from 'node:module';

const hooks = `
import { writeSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  writeSync(2, 'loaded ' + result.url + '\\n');
  return result;
}`;
register(`data:text/javascript,${encodeURIComponent(hooks)}`);
