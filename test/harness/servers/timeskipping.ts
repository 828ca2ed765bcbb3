/**
 * Temporal's time-skipping test server (Java, Maven io.temporal:temporal-test-server; the
 * classpath comes from `scripts/setup.sh testserver`), started once per run with
 * scripts/temporal-test-server.sh `<port>` (startTimeSkippingEnv).
 * Our search attributes are registered on it. Tests connect to it with
 * test/governance/timeskipping.ts.
 *
 *   AMENDCTL_TEST_TIMESKIPPING_ADDRESS  host:port of the test server
 */
import { join } from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { SEARCH_ATTRIBUTES } from '../../../src/workflows/definitions';
import { DRIFT_SEARCH_ATTRIBUTES } from '../../../src/workflows/reconcile-definitions';
import type { TestServer } from '../server';
import { freePort, portOpen, ROOT, startProcess, waitFor } from '../proc';

export const TEST_SERVER_WRAPPER = join(ROOT, 'scripts', 'temporal-test-server.sh');

type Factory = (opts: unknown) => Promise<TestWorkflowEnvironment>;

/** How long the JVM may take to listen: the SDK's own start gives it 5 s, which a loaded CI machine misses. */
const LISTEN_TIMEOUT_MS = 90_000;

/**
 * A TestWorkflowEnvironment with time skipping on the test server at `address`, from the SDK's
 * own factory (what createTimeSkipping does once its server listens; the factory is not public,
 * so a later SDK without it fails loudly here).
 */
export async function timeSkippingEnvAt(
  address: string,
  opts: { client?: object } = {},
): Promise<TestWorkflowEnvironment> {
  const create = (TestWorkflowEnvironment as unknown as { create?: Factory }).create;
  if (typeof create !== 'function')
    throw new Error(
      '@temporalio/testing no longer has TestWorkflowEnvironment.create: see test/harness/servers/timeskipping.ts',
    );
  const env = await create.call(TestWorkflowEnvironment, {
    server: { type: 'existing' },
    address,
    namespace: 'default',
    supportsTimeSkipping: true,
    ...(opts.client ? { client: opts.client } : {}),
  });
  if (!env.supportsTimeSkipping) throw new Error('the test environment does not skip time');
  return env;
}

/**
 * A time-skipping test server of its own: the JVM started here (up to LISTEN_TIMEOUT_MS to
 * listen), and a TestWorkflowEnvironment with time skipping on it (timeSkippingEnvAt).
 * `teardown` stops both.
 */
export async function startTimeSkippingEnv(opts: { client?: object } = {}): Promise<TestWorkflowEnvironment> {
  const port = await freePort();
  // As the SDK starts it: the port alone. Time skipping is then locked until a client unlocks it
  // (TestWorkflowEnvironment.sleep, a time-skipping client's result()); `--enable-time-skipping`
  // would start it unlocked, skipping past running activities' timeouts.
  const server = startProcess('temporal-test-server', TEST_SERVER_WRAPPER, [String(port)]);
  try {
    await waitFor('the time-skipping test server', () => portOpen(port), LISTEN_TIMEOUT_MS, server.child);
    const env = await timeSkippingEnvAt(`127.0.0.1:${port}`, opts);
    const teardown = env.teardown.bind(env);
    env.teardown = async () => {
      await teardown().catch(() => undefined);
      await server.stop();
    };
    return env;
  } catch (err) {
    await server.stop();
    throw err;
  }
}

export const timeSkipping: TestServer = {
  name: 'timeskipping',
  async start() {
    const env = await startTimeSkippingEnv();
    try {
      // IndexedValueType KEYWORD = 2, INT = 3.
      const searchAttributes = Object.fromEntries([
        ...Object.keys(SEARCH_ATTRIBUTES).map((k) => [k, 2]),
        ...Object.entries(DRIFT_SEARCH_ATTRIBUTES).map(([k, t]) => [k, t === 'Int' ? 3 : 2]),
      ]);
      await env.connection.operatorService.addSearchAttributes({ namespace: 'default', searchAttributes });
    } catch (err) {
      await env.teardown();
      throw err;
    }
    return { env: { AMENDCTL_TEST_TIMESKIPPING_ADDRESS: env.address }, stop: () => env.teardown() };
  },
};
