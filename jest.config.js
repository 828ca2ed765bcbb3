/** One server of each kind per run: test/harness/global-setup.ts starts them, global-teardown.ts stops them. */
module.exports = {
  // jest's node environment; at the end of each file it also flushes the file's SDK log (test/harness/environment.js).
  testEnvironment: '<rootDir>/test/harness/environment.js',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.json' }],
    // @marcbachmann/cel-js, @noble/hashes, jose and openid-client (with oauth4webapi) ship only ES modules; Node loads them (require(esm)), Jest on Node 20 needs them as CommonJS.
    '/node_modules/(@marcbachmann/cel-js|@noble/hashes|jose|openid-client|oauth4webapi)/.+\\.js$': [
      'ts-jest',
      { tsconfig: { allowJs: true, module: 'commonjs', target: 'es2022', isolatedModules: true } },
    ],
  },
  transformIgnorePatterns: ['/node_modules/(?!(@marcbachmann/cel-js|@noble/hashes|jose|openid-client|oauth4webapi)/)'],
  // Each test file logs to .cache/test-logs/tests/<file>.log (test/harness/logs.ts): its console and, through
  // the @temporalio/worker module below, the SDK's logger; the summary reporter prints the log of a file that failed.
  setupFilesAfterEnv: ['<rootDir>/test/harness/setup-test-log.ts'],
  moduleNameMapper: { '^@temporalio/worker$': '<rootDir>/test/harness/temporal-worker.ts' },
  globalSetup: '<rootDir>/test/harness/global-setup.ts',
  testSequencer: '<rootDir>/test/harness/sequencer.js',
  globalTeardown: '<rootDir>/test/harness/global-teardown.ts',
  maxWorkers: 2,
  testTimeout: 120000,
  reporters: ['default', '<rootDir>/test/harness/test-log-reporter.js', '<rootDir>/test/harness/summary-reporter.js'],
};
