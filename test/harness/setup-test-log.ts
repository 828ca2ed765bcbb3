/**
 * Runs before each test file (jest.config.js setupFilesAfterEnv): starts the file's own log
 * (test/harness/logs.ts) and sends the console there, so expected failures stay out of the
 * test output; test/harness/test-log-reporter.js prints the log when a test of the file fails.
 */
import { captureConsole, currentTestLog, SHOW_LOGS, startTestLog } from './logs';

const file = currentTestLog();
if (file) {
  startTestLog(file);
  if (!SHOW_LOGS) captureConsole(file);
}
