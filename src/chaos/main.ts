/**
 * npm run chaos (issue 10, point 5): amendctl under faults on a stack of its own, the
 * benchmark's (src/bench/e2e/stack.ts: a fresh dev server SQLite file, PostgreSQL,
 * scim2-server in a temporary folder). See src/chaos/run.ts for what one run does.
 *
 *   npm run chaos                                       20 contracts x 10 amendments
 *   npm run chaos -- --contracts 3 --amendments 4 --seed 7 --kill-every 3 --json /tmp/c.json
 *
 * Prints progress while it runs and a summary at the end; --json FILE writes the whole
 * report. Exit code 0 when every amendment completed and no account is wrong or duplicated,
 * 1 when not, 2 for bad arguments. Ctrl-C ends the run early (the summary counts what is not
 * final as lost) and stops the servers; twice stops at once.
 */
import { writeFileSync } from 'node:fs';
import { startStack, type Stack } from '../bench/e2e/stack';
import { parseChaosArgs, UsageError, type ChaosOptions } from './options';
import { summary } from './report';
import { runChaos } from './run';

async function main(argv: string[]): Promise<number> {
  let opts: ChaosOptions;
  try {
    opts = parseChaosArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    (err.exitCode === 0 ? process.stdout : process.stderr).write(`${err.message}\n`);
    return err.exitCode;
  }
  const log = (line: string): void => void process.stdout.write(`${line}\n`);
  log('starting the servers (Temporal dev server with a fresh SQLite file, PostgreSQL, scim2-server) ...');
  let stack: Stack | undefined;
  const interrupted = new AbortController();
  const onSignal = (sig: NodeJS.Signals): void => {
    if (interrupted.signal.aborted) process.exit(130);
    log(`\n${sig}: ending the run (again to stop at once)`);
    interrupted.abort();
    if (!stack) process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    stack = await startStack({ keepDir: opts.keep });
    log(
      `servers up: Temporal ${stack.env.AMENDCTL_TEST_TEMPORAL_ADDRESS}, PostgreSQL :${stack.env.AMENDCTL_TEST_PG_PORT}, SCIM ${stack.env.AMENDCTL_TEST_SCIM_URL} (folder ${stack.env.dir}${opts.keep ? ', kept' : ''})`,
    );
    const report = await runChaos(opts, { env: stack.env, temporal: stack.temporal }, log, interrupted.signal);
    log(`\n${summary(report)}`);
    if (opts.json) {
      writeFileSync(opts.json, `${JSON.stringify(report, null, 2)}\n`);
      log(`report: ${opts.json}`);
    }
    return interrupted.signal.aborted ? 130 : report.ok ? 0 : 1;
  } finally {
    if (stack) {
      log('stopping the servers ...');
      await stack.stop();
    }
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`chaos failed: ${(err as Error)?.stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
