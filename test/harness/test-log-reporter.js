/**
 * Prints the log of a test file in which a test failed (or that did not run): the SDK's
 * lines and the console of that file (test/harness/logs.ts), after jest's own report of the
 * failure. A file whose tests all pass prints nothing of it; its log stays in .cache/test-logs/tests.
 */
const { existsSync, readFileSync } = require('node:fs');
const { join, relative } = require('node:path');

const MAX_LINES = 400;

class TestLogReporter {
  constructor(globalConfig) {
    this.root = globalConfig.rootDir;
  }

  onTestFileResult(test, result) {
    if (result.numFailingTests === 0 && !result.testExecError) return;
    const rel = relative(this.root, test.path);
    const file = join(this.root, '.cache', 'test-logs', 'tests', `${rel}.log`);
    if (!existsSync(file)) return;
    const lines = readFileSync(file, 'utf8').split('\n');
    if (lines.at(-1) === '') lines.pop();
    if (lines.length === 0) return process.stderr.write(`\n  log of ${rel}: empty (${relative(this.root, file)})\n`);
    const shown = lines.slice(-MAX_LINES);
    const what =
      shown.length < lines.length ? `the last ${shown.length} of ${lines.length} lines` : `${lines.length} lines`;
    process.stderr.write(
      `\n  ---- log of ${rel} (${what}, ${relative(this.root, file)}) ----\n${shown.join('\n')}\n  ---- end of the log of ${rel} ----\n\n`,
    );
  }
}

module.exports = TestLogReporter;
