// Tests are compiled with the rest of the project (`npm test` runs `tsc` first) and run as
// native ES modules, so the code under test is the code users run.
export default {
  testEnvironment: 'node',
  roots: ['<rootDir>/dist/tests'],
  testMatch: ['**/*.test.js'],
  transform: {},
  testTimeout: 60_000,
  maxWorkers: 2,
};
