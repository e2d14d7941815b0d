// `node --import ./record-loads.mjs …`: prints every module URL the process loads to stderr as
// "loaded <url>", through a module-resolution hook (the hooks run on their own thread).
import { register } from 'node:module';

const hooks = `
import { writeSync } from 'node:fs';
// stderr may be a non-blocking pipe: writeSync throws EAGAIN while it is full (seen on Node 22); retry.
function write(text) {
  for (;;) {
    try {
      writeSync(2, text);
      return;
    } catch (err) {
      if (err.code !== 'EAGAIN') throw err;
    }
  }
}
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  write('loaded ' + result.url + '\\n');
  return result;
}`;
register(`data:text/javascript,${encodeURIComponent(hooks)}`);
