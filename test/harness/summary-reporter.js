// Prints the one plain closing line CI reads: "N passed, N failed" (skipped when any).
class SummaryReporter {
  onRunComplete(_contexts, results) {
    const failed = results.numFailedTests + results.numRuntimeErrorTestSuites;
    const skipped = results.numPendingTests + results.numTodoTests;
    const line = `${results.numPassedTests} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`;
    process.stdout.write(`\n${line}\n`);
    require('node:fs').mkdirSync(`${__dirname}/../../.cache`, { recursive: true });
    require('node:fs').writeFileSync(`${__dirname}/../../.cache/test-summary.txt`, `${line}\n`);
  }
}
module.exports = SummaryReporter;
