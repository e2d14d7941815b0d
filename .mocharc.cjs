// Tests run from TypeScript sources through tsx; workspace packages resolve to src/ through the
// "source" export condition, so no build is needed to run a test (npm test still type-checks).
// The spec list lives in scripts/run.mjs (npm test), so `mocha some/file.test.ts` runs only that.
// tsx reads its compiler options from TSX_TSCONFIG_PATH (legacy decorators for NestJS).
process.env.TSX_TSCONFIG_PATH ??= require('node:path').join(__dirname, 'tsconfig.tsx.json');

module.exports = {
  'node-option': ['conditions=source', 'import=tsx'],
  timeout: 30000,
  exit: true,
};
