/**
 * One log per test file, `.cache/test-logs/tests/<path of the test file>.log`: what the SDK
 * logs (the worker, core, workflow code's `log`) and what the code under test writes to the
 * console go there, not to the test output, so the expected failures a test causes on purpose
 * (a workflow failed, an activity retried, a turn reclaimed) print nothing, and a real failure
 * is not lost among them: test/harness/test-log-reporter.js prints the log of a file in which a
 * test failed, after jest's report of the failure. Set up per file by setup-test-log.ts (the
 * console) and temporal-worker.ts (the SDK's Runtime), both in jest.config.js.
 *
 *   AMENDCTL_TEST_LOG_LEVEL=INFO   what the SDK logger keeps (TRACE, DEBUG, INFO, WARN, ERROR; default WARN)
 *   AMENDCTL_TEST_LOGS=show        the console and the SDK log go to the test output as they come, as jest would
 */
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { formatWithOptions, inspect } from 'node:util';
import type { Logger, LogLevel, LogMetadata } from '@temporalio/common';

// No import of proc.ts: it loads src/devserver, and this module loads with every test file.
const ROOT = join(__dirname, '..', '..');
export const TEST_LOG_DIR = join(ROOT, '.cache', 'test-logs', 'tests');

const LEVELS: LogLevel[] = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'];
export const TEST_LOG_LEVEL: LogLevel =
  LEVELS.find((l) => l === process.env.AMENDCTL_TEST_LOG_LEVEL?.toUpperCase()) ?? 'WARN';
export const SHOW_LOGS = process.env.AMENDCTL_TEST_LOGS === 'show';

/** The log file of the test file at `testPath` (the reporter computes the same path). */
export function testLogFile(testPath: string): string {
  return join(TEST_LOG_DIR, `${relative(ROOT, testPath)}.log`);
}

/** The log of the test file running in this jest worker, or undefined outside a test file (global setup). */
export function currentTestLog(): string | undefined {
  const testPath = (globalThis as { expect?: { getState(): { testPath?: string } } }).expect?.getState().testPath;
  return testPath ? testLogFile(testPath) : undefined;
}

/** A new, empty log for this test file. */
export function startTestLog(file: string): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, '');
}

/** The SDK's own time of an entry (nanoseconds), which its buffered log collector may deliver late. */
const LOG_TIMESTAMP = Symbol.for('log_timestamp');

/** One entry: time, level, the message, and its metadata. */
export function writeTestLog(file: string, level: string, message: string, meta?: LogMetadata): void {
  const nanos = meta?.[LOG_TIMESTAMP] as bigint | undefined;
  const at = typeof nanos === 'bigint' ? new Date(Number(nanos / 1_000_000n)) : new Date();
  // String keys only: the SDK's symbol keys are not for reading.
  const fields = meta ? Object.fromEntries(Object.keys(meta).map((k) => [k, meta[k] as unknown])) : {};
  const extra = Object.keys(fields).length > 0 ? ` ${inspect(fields, { depth: 6, breakLength: 160 })}` : '';
  appendFileSync(file, `${at.toISOString()} [${level}] ${message}${extra}\n`);
}

/** console.* of the code under test and the test itself, written to the file's log. */
export function captureConsole(file: string, target: Console = console): void {
  const write =
    (level: string) =>
    (...args: unknown[]): void =>
      writeTestLog(file, level, formatWithOptions({ depth: 6 }, ...args));
  target.log = write('console.log');
  target.info = write('console.info');
  target.debug = write('console.debug');
  target.warn = write('console.warn');
  target.error = write('console.error');
  target.trace = (...args: unknown[]): void =>
    writeTestLog(
      file,
      'console.trace',
      `${formatWithOptions({ depth: 6 }, ...args)}\n${new Error().stack?.split('\n').slice(2).join('\n') ?? ''}`,
    );
}

/** The SDK's logger for the tests: entries at `TEST_LOG_LEVEL` and above, to this test file's log. */
export class TestFileLogger implements Logger {
  private readonly min = LEVELS.indexOf(TEST_LOG_LEVEL);
  constructor(private readonly file: string) {}
  log(level: LogLevel, message: string, meta?: LogMetadata): void {
    if (LEVELS.indexOf(level) < this.min) return;
    writeTestLog(this.file, level, message, meta);
  }
  trace(message: string, meta?: LogMetadata): void {
    this.log('TRACE', message, meta);
  }
  debug(message: string, meta?: LogMetadata): void {
    this.log('DEBUG', message, meta);
  }
  info(message: string, meta?: LogMetadata): void {
    this.log('INFO', message, meta);
  }
  warn(message: string, meta?: LogMetadata): void {
    this.log('WARN', message, meta);
  }
  error(message: string, meta?: LogMetadata): void {
    this.log('ERROR', message, meta);
  }
}
