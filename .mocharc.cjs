// Tests run from TypeScript sources through tsx; workspace packages resolve to src/ through the
// "source" export condition, so no build is needed to run a test (npm test still type-checks).
// The spec list lives in scripts/run.mjs (npm test), so `mocha some/file.test.ts` runs only that.
module.exports = {
  'node-option': ['conditions=source', 'import=tsx'],
  timeout: 30000,
  exit: true,
};
