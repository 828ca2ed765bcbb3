/**
 * Starts each real server once per test run, in parallel, and writes what the tests
 * need to know (addresses, ports) to .cache/test-env.json. `AMENDCTL_TEST_SERVERS=a,b`
 * starts only those (for a quick local loop).
 */
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { format } from 'node:util';
import { writeApprovalKeys } from './approval-keys';
import { servers } from './servers';
import { TEST_ENV_FILE } from './env';
import { CACHE, LOG_DIR } from './proc';

/**
 * gRPC's own lines in this process (the time-skipping server's client: "rejected by server
 * because of excess pings") go to .cache/test-logs/harness.log, not between the test results.
 */
function quietGrpc(): void {
  mkdirSync(LOG_DIR, { recursive: true });
  const file = join(LOG_DIR, 'harness.log');
  const write =
    (level: string) =>
    (...args: unknown[]): void =>
      appendFileSync(file, `${new Date().toISOString()} grpc ${level} ${format(...args)}\n`);
  // The copy @temporalio/client uses (not a dependency of ours).
  const grpcPath = require.resolve('@grpc/grpc-js', { paths: [dirname(require.resolve('@temporalio/client'))] });
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const grpc = require(grpcPath) as { setLogger(logger: Partial<Console>): void };
  grpc.setLogger({ error: write('E'), info: write('I'), debug: write('D') });
}

export default async function globalSetup(): Promise<void> {
  const only = process.env.AMENDCTL_TEST_SERVERS?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const chosen = only ? servers.filter((s) => only.includes(s.name)) : servers;
  mkdirSync(CACHE, { recursive: true });
  quietGrpc();
  // The AWS SDK's notice that its releases after January 2027 need Node 22 (a process warning, which the
  // per-file logs cannot catch), once per test file that loads it: about the machine, not the tests.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  process.env.AMENDCTL_TEST_RUN_ID ??= String(process.pid);
  const started: Array<() => Promise<void>> = [];
  (globalThis as { __amendctlStops?: typeof started }).__amendctlStops = started;
  const env: Record<string, string> = {
    ...writeApprovalKeys(join(CACHE, 'test-runs', `approval-keys-${process.env.AMENDCTL_TEST_RUN_ID}`)),
  };
  const t0 = Date.now();
  const results = await Promise.allSettled(
    chosen.map(async (s) => {
      const t = Date.now();
      const running = await s.start();
      started.push(running.stop);
      Object.assign(env, running.env);
      process.stdout.write(`  harness: ${s.name} up in ${Date.now() - t} ms\n`);
    }),
  );
  const failed = results.flatMap((r, i) =>
    r.status === 'rejected' ? [`${chosen[i]!.name}: ${String((r.reason as Error)?.message ?? r.reason)}`] : [],
  );
  if (failed.length > 0) {
    await Promise.allSettled(started.map((stop) => stop()));
    throw new Error(`test servers failed to start:\n  ${failed.join('\n  ')}`);
  }
  writeFileSync(TEST_ENV_FILE, JSON.stringify(env, null, 2));
  env.AMENDCTL_TEST_ENV_FILE = TEST_ENV_FILE;
  Object.assign(process.env, env);
  process.stdout.write(`  harness: ${chosen.length} servers ready in ${Date.now() - t0} ms\n`);
}
