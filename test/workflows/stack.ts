/**
 * The product stack for a test, against the run's real servers: the Temporal dev server,
 * PostgreSQL and scim2-server. Each test file uses its own task queue and contract ids, so
 * files run in parallel against one dev server.
 */
import { randomBytes } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { Client as PgClient } from 'pg';
import type { PgAccount } from '../../src/chaos/expect';
import { readPgRoles } from '../../src/chaos/readback';
import { AmendctlClient, temporalTarget } from '../../src/client';
import type { WorkerOptions } from '@temporalio/worker';
import { createAmendctlWorker, type AmendctlWorker } from '../../src/worker';
import type { Tracing } from '../../src/observability/tracing';
import type { AmendmentView } from '../../src/workflows/definitions';
import { need } from '../harness/env';
import { ROOT } from '../harness/proc';
import { until } from '../harness/until';

export const REFERENCE_TARGETS = join(ROOT, 'examples', 'reference', 'targets.yaml');
export const REFERENCE_RULES = join(ROOT, 'examples', 'reference', 'rules.yaml');

/** Worker environment for the reference targets on the test servers. Credentials only via env. */
export function referenceEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    AMENDCTL_IDP_URL: need('AMENDCTL_TEST_SCIM_URL'),
    AMENDCTL_IDP_TOKEN: need('AMENDCTL_TEST_SCIM_TOKEN'),
    AMENDCTL_WAREHOUSE_HOST: need('AMENDCTL_TEST_PG_HOST'),
    AMENDCTL_WAREHOUSE_PORT: need('AMENDCTL_TEST_PG_PORT'),
    AMENDCTL_WAREHOUSE_PASSWORD: need('AMENDCTL_TEST_PG_PASSWORD'),
    AMENDCTL_WORKFLOW_BUNDLE: need('AMENDCTL_WORKFLOW_BUNDLE'),
    ...extra,
  };
}

export function uniqueQueue(name: string): string {
  return `test-${name}-${randomBytes(3).toString('hex')}`;
}

export interface Stack {
  client: AmendctlClient;
  taskQueue: string;
  worker?: AmendctlWorker;
  running?: Promise<void>;
  stop(): Promise<void>;
}

/** An in-process worker and a client on one task queue. Its SDK log goes to the test file's log (test/harness/logs.ts). */
export async function startStack(
  name: string,
  opts: {
    env?: Record<string, string>;
    rulesFile?: string;
    targetsFile?: string;
    approvalsFile?: string;
    worker?: Partial<WorkerOptions>;
    tracing?: Tracing;
  } = {},
): Promise<Stack> {
  const env = referenceEnv(opts.env);
  Object.assign(process.env, env); // connectors read credentials from the worker's environment
  const taskQueue = uniqueQueue(name);
  const temporal = temporalTarget({ address: need('AMENDCTL_TEST_TEMPORAL_ADDRESS'), namespace: 'default' });
  const worker = await createAmendctlWorker({
    temporal,
    env: { ...process.env, ...env },
    files: {
      taskQueue,
      targetsFile: opts.targetsFile ?? REFERENCE_TARGETS,
      rulesFile: opts.rulesFile ?? REFERENCE_RULES,
      approvalsFile: opts.approvalsFile,
    },
    worker: { shutdownGraceTime: '2s', ...opts.worker },
    ...(opts.tracing ? { tracing: opts.tracing } : {}),
  });
  const running = worker.run();
  const client = await AmendctlClient.connect(temporal, taskQueue);
  return {
    client,
    taskQueue,
    worker,
    running,
    async stop() {
      worker.shutdown();
      await running;
      await client.close();
    },
  };
}

/** The amendment's view once it is in `status`; else a failure after `timeoutMs` saying where it stayed. */
export function reached(
  client: AmendctlClient,
  amendmentId: string,
  status: AmendmentView['status'],
  timeoutMs = 60_000,
): Promise<AmendmentView> {
  return until(
    `${amendmentId} ${status}`,
    async () => {
      const v = await client.getStatus(amendmentId);
      if (v.status !== status) throw new Error(`still ${v.status} (${v.reason ?? ''})`);
      return v;
    },
    timeoutMs,
  );
}

/** A worker in its own process (the built CLI), so a test can SIGKILL it. */
export function spawnWorkerProcess(taskQueue: string, env: Record<string, string> = {}): ChildProcess {
  return spawn(
    process.execPath,
    [
      join(ROOT, 'bin', 'amendctl'),
      'worker',
      '--address',
      need('AMENDCTL_TEST_TEMPORAL_ADDRESS'),
      '--task-queue',
      taskQueue,
    ],
    {
      env: { ...process.env, ...referenceEnv(env) },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
}

// ---- Reading PostgreSQL back, independently of the connector ----

export async function pgAdmin(): Promise<PgClient> {
  const c = new PgClient({
    host: need('AMENDCTL_TEST_PG_HOST'),
    port: Number(need('AMENDCTL_TEST_PG_PORT')),
    database: 'warehouse',
    user: 'amendctl',
    password: need('AMENDCTL_TEST_PG_PASSWORD'),
  });
  await c.connect();
  return c;
}

export type PgRole = PgAccount;

/** Roles whose name ends with `@domain`: login flag and memberships, sorted. */
export async function pgSnapshot(domain: string): Promise<Record<string, PgRole>> {
  const c = await pgAdmin();
  try {
    return await readPgRoles(c, `%@${domain}`);
  } finally {
    await c.end();
  }
}
