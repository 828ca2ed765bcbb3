/**
 * What a test file gets for `@temporalio/worker` (jest.config.js moduleNameMapper): the SDK
 * itself, with the Runtime's default options set so that every Worker, NativeConnection and
 * replay of the file, started by test code or by src code, logs into the file's log
 * (test/harness/logs.ts) at AMENDCTL_TEST_LOG_LEVEL, core's lines forwarded there too,
 * instead of the SDK's default (INFO, to the console). Nothing is installed: the Runtime is
 * created, with these options, only when the file first needs one.
 */
import * as sdk from '@temporalio/worker/lib/index.js';
import { currentTestLog, SHOW_LOGS, TEST_LOG_LEVEL, TestFileLogger } from './logs';

export * from '@temporalio/worker/lib/index.js';

const file = currentTestLog();
if (file && !SHOW_LOGS) {
  sdk.Runtime.defaultOptions = {
    logger: new TestFileLogger(file),
    telemetryOptions: {
      logging: { filter: sdk.makeTelemetryFilterString({ core: TEST_LOG_LEVEL, other: 'ERROR' }), forward: {} },
    },
  };
} else if (SHOW_LOGS) {
  sdk.Runtime.defaultOptions = { logger: new sdk.DefaultLogger(TEST_LOG_LEVEL) };
}

// At the end of the file (test/harness/environment.js): what the SDK still holds back (it keeps
// entries a moment, to order core's among the others) into the log, and how many native objects
// the file left open.
(globalThis as { __amendctlSdkAtEnd?: () => number }).__amendctlSdkAtEnd = () => {
  const runtime = sdk.Runtime._instance;
  if (!runtime) return 0;
  runtime.flushLogs();
  return (runtime as unknown as { backRefs?: Set<unknown> }).backRefs?.size ?? 0;
};
