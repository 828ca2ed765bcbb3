/** One server of each kind per run: test/harness/global-setup.ts starts them, global-teardown.ts stops them. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.json' }],
    // @marcbachmann/cel-js, @noble/hashes, jose and openid-client (with oauth4webapi) ship only ES modules; Node loads them (require(esm)), Jest on Node 20 needs them as CommonJS.
    '/node_modules/(@marcbachmann/cel-js|@noble/hashes|jose|openid-client|oauth4webapi)/.+\\.js$': ['ts-jest', { tsconfig: { allowJs: true, module: 'commonjs', target: 'es2022', isolatedModules: true } }],
  },
  transformIgnorePatterns: ['/node_modules/(?!(@marcbachmann/cel-js|@noble/hashes|jose|openid-client|oauth4webapi)/)'],
  globalSetup: '<rootDir>/test/harness/global-setup.ts',
  testSequencer: '<rootDir>/test/harness/sequencer.js',
  globalTeardown: '<rootDir>/test/harness/global-teardown.ts',
  maxWorkers: 2,
  testTimeout: 120000,
  reporters: ['default', '<rootDir>/test/harness/summary-reporter.js'],
};
