// Tests run from TypeScript sources through tsx; workspace packages resolve to src/ through the
// "source" export condition, so no build is needed to run a test (npm test still type-checks).
module.exports = {
  'node-option': ['conditions=source', 'import=tsx'],
  spec: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts'],
  timeout: 30000,
  exit: true,
};
