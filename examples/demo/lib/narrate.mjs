// Printing for the demo: numbered steps, indented detail, and a summary table.
const tty = process.stdout.isTTY && !process.env.NO_COLOR;
const paint = (code) => (text) => (tty ? `\x1b[${code}m${text}\x1b[0m` : String(text));
export const bold = paint(1);
export const dim = paint(2);
export const green = paint(32);
export const red = paint(31);
export const cyan = paint(36);

const started = Date.now();
let stepNumber = 0;

/** Seconds since the demo started, for the left margin. */
function clock() {
  return dim(`${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s`);
}

export function step(title) {
  stepNumber += 1;
  console.log(`\n${clock()} ${bold(`${stepNumber}. ${title}`)}`);
}

export function say(text) {
  console.log(`${clock()}    ${text}`);
}

export function pass(text) {
  say(`${green('✓')} ${text}`);
}

export function fail(text) {
  say(`${red('✗')} ${text}`);
}

export function elapsedSeconds() {
  return (Date.now() - started) / 1000;
}

/** Prints rows of [label, value] as a two-column table with a title. */
export function table(title, rows) {
  const width = Math.max(...rows.map(([k]) => k.length));
  const line = '─'.repeat(Math.min(100, width + 2 + Math.max(...rows.map(([, v]) => String(v).split('\n')[0].length))));
  console.log(`\n${bold(title)}\n${line}`);
  for (const [k, v] of rows) {
    const [first, ...rest] = String(v).split('\n');
    console.log(`${k.padEnd(width)}  ${first}`);
    for (const more of rest) console.log(`${' '.repeat(width)}  ${more}`);
  }
  console.log(line);
}
