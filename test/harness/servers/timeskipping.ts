/**
 * Temporal's time-skipping test server (Java, Maven io.temporal:temporal-test-server; the
 * classpath comes from `scripts/setup.sh testserver`), started once per run through the
 * SDK's own `TestWorkflowEnvironment.createTimeSkipping` with scripts/temporal-test-server.sh
 * as an `existing-path` executable (the SDK runs it as `<port> --enable-time-skipping`).
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
import { ROOT } from '../proc';

export const TEST_SERVER_WRAPPER = join(ROOT, 'scripts', 'temporal-test-server.sh');

/** The SDK gives the JVM 5 s to listen, which a loaded machine can miss: two more tries then. */
async function startWithRetries(tries = 3): Promise<TestWorkflowEnvironment> {
  for (let i = 1; ; i++) {
    try {
      return await TestWorkflowEnvironment.createTimeSkipping({
        server: { executable: { type: 'existing-path', path: TEST_SERVER_WRAPPER } },
      });
    } catch (err) {
      if (i >= tries || !/did not start within/.test(String((err as Error)?.message))) throw err;
      process.stdout.write(`  harness: timeskipping did not start in time (try ${i} of ${tries}), again\n`);
    }
  }
}

export const timeSkipping: TestServer = {
  name: 'timeskipping',
  async start() {
    const env = await startWithRetries();
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
