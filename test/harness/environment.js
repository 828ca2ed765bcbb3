/**
 * The test environment (jest.config.js testEnvironment): jest's node environment, and at the
 * end of each test file, after its afterAll hooks, the file's Temporal SDK runtime
 * (test/harness/temporal-worker.ts) writes what it still holds back into the file's log. A
 * native object the file left open (a NativeConnection, a Worker) keeps that runtime, and so
 * the jest worker process, alive: that is said here, naming the file, since it is a real fault.
 */
const { relative } = require('node:path');
const { TestEnvironment } = require('jest-environment-node');

class AmendctlEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    this.testPath = context.testPath;
    this.rootDir = config.globalConfig.rootDir;
  }

  async teardown() {
    const atEnd = this.global.__amendctlSdkAtEnd;
    const open = typeof atEnd === 'function' ? atEnd() : 0;
    if (open > 0) {
      process.stderr.write(
        `\n  ${relative(this.rootDir, this.testPath)}: ${open} Temporal native object(s) (NativeConnection, Worker) still open after the file's afterAll: close them there\n`,
      );
    }
    await super.teardown();
  }
}

module.exports = AmendctlEnvironment;
