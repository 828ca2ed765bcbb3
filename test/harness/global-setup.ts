/**
 * Starts each real server once per test run, in parallel, and writes what the tests
 * need to know (addresses, ports) to .cache/test-env.json. `AMENDCTL_TEST_SERVERS=a,b`
 * starts only those (for a quick local loop).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeApprovalKeys } from './approval-keys';
import { servers } from './servers';
import { TEST_ENV_FILE } from './env';
import { CACHE } from './proc';

export default async function globalSetup(): Promise<void> {
  const only = process.env.AMENDCTL_TEST_SERVERS?.split(',').map((s) => s.trim()).filter(Boolean);
  const chosen = only ? servers.filter((s) => only.includes(s.name)) : servers;
  mkdirSync(CACHE, { recursive: true });
  process.env.AMENDCTL_TEST_RUN_ID ??= String(process.pid);
  const started: Array<() => Promise<void>> = [];
  (globalThis as { __amendctlStops?: typeof started }).__amendctlStops = started;
  const env: Record<string, string> = { ...writeApprovalKeys(join(CACHE, 'test-runs', `approval-keys-${process.env.AMENDCTL_TEST_RUN_ID}`)) };
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
  const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [`${chosen[i]!.name}: ${String((r.reason as Error)?.message ?? r.reason)}`] : []));
  if (failed.length > 0) {
    await Promise.allSettled(started.map((stop) => stop()));
    throw new Error(`test servers failed to start:\n  ${failed.join('\n  ')}`);
  }
  writeFileSync(TEST_ENV_FILE, JSON.stringify(env, null, 2));
  env.AMENDCTL_TEST_ENV_FILE = TEST_ENV_FILE;
  Object.assign(process.env, env);
  process.stdout.write(`  harness: ${chosen.length} servers ready in ${Date.now() - t0} ms\n`);
}
