/**
 * A stack on the run's time-skipping test server (test/harness/servers/timeskipping.ts):
 * the real amendctl worker (createAmendctlWorker: real activities, real PostgreSQL and
 * scim2-server targets) and the typed client, plus a TestWorkflowEnvironment connected to
 * the same server for its clock (`sleep` skips time, `currentTimeMs`).
 *
 * The server is started once per run. The SDK's public API connects a TestWorkflowEnvironment
 * with time skipping only to a server it starts itself (createFromExistingServer turns time
 * skipping off), so `timeSkippingEnv` uses the harness's timeSkippingEnvAt, which calls the
 * SDK's own factory with the server's address and fails loudly if a later SDK drops it.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { AmendctlClient, temporalTarget, type AmendmentView } from '../../src/client';
import { createAmendctlWorker, type AmendctlWorker } from '../../src/worker';
import { need } from '../harness/env';
import { timeSkippingEnvAt } from '../harness/servers/timeskipping';
import { REFERENCE_RULES, REFERENCE_TARGETS, referenceEnv, uniqueQueue } from '../workflows/stack';

/** The run's time-skipping server, with its clock (test/harness/servers/timeskipping.ts). */
export function timeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  return timeSkippingEnvAt(need('AMENDCTL_TEST_TIMESKIPPING_ADDRESS'));
}

export interface TimeStack {
  env: TestWorkflowEnvironment;
  client: AmendctlClient;
  worker: AmendctlWorker;
  taskQueue: string;
  /** The server's clock (ms). */
  now(): Promise<number>;
  /** Skip `ms` of server time (timers fire; workflows run), in about no wall time. */
  skip(ms: number): Promise<void>;
  /** Poll (wall time, server clock locked) until the amendment is in `status`. */
  until(
    amendmentId: string,
    status: AmendmentView['status'],
    what?: (v: AmendmentView) => boolean,
  ): Promise<AmendmentView>;
  stop(): Promise<void>;
}

/** `approvals`: the AMENDCTL_APPROVALS content (JSON) for this stack's worker; `extraEnv`: more of its environment. */
export async function startTimeStack(
  name: string,
  approvals?: object,
  extraEnv: Record<string, string> = {},
): Promise<TimeStack> {
  const env = await timeSkippingEnv();
  const workerEnv = referenceEnv(extraEnv);
  Object.assign(process.env, workerEnv);
  let approvalsFile: string | undefined;
  if (approvals) {
    approvalsFile = join(mkdtempSync(join(tmpdir(), 'amendctl-approvals-')), 'approvals.json');
    writeFileSync(approvalsFile, JSON.stringify(approvals));
  }
  const taskQueue = uniqueQueue(name);
  const temporal = temporalTarget({ address: need('AMENDCTL_TEST_TIMESKIPPING_ADDRESS'), namespace: 'default' });
  const worker = await createAmendctlWorker({
    temporal,
    env: { ...process.env, ...workerEnv },
    files: { taskQueue, targetsFile: REFERENCE_TARGETS, rulesFile: REFERENCE_RULES, approvalsFile },
    worker: { shutdownGraceTime: '2s' },
  });
  const running = worker.run();
  const client = await AmendctlClient.connect(temporal, taskQueue);
  return {
    env,
    client,
    worker,
    taskQueue,
    now: () => env.currentTimeMs(),
    skip: (ms) => env.sleep(ms),
    async until(amendmentId, status, what = () => true) {
      const deadline = Date.now() + 60_000;
      for (;;) {
        const v = await client.getStatus(amendmentId).catch(() => undefined);
        if (v && v.status === status && what(v)) return v;
        if (Date.now() > deadline)
          throw new Error(`${amendmentId}: ${v?.status ?? 'not found'} (${v?.reason ?? ''}), expected ${status}`);
        await new Promise((r) => setTimeout(r, 150));
      }
    },
    async stop() {
      worker.shutdown();
      await running;
      await client.close();
      await env.teardown();
    },
  };
}
