/**
 * The amendctl worker: registers the workflows and activities on a task queue. Any number
 * of workers may run against one Temporal cluster; nothing here assumes a single worker.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities } from '../activities';
import { dataConverter, loadCodecKeys } from '../codec';
import { ConnectorRegistry, parseTargets } from '../connectors/registry';
import { temporalTarget, type TemporalTarget } from '../client/connection';
import { loadGovernancePolicy, PROJECT_ROOT, workerFiles, type WorkerFiles } from './config';
import { FileRulesProvider } from './rules';

export interface AmendctlWorkerOptions {
  temporal?: TemporalTarget;
  files?: Partial<WorkerFiles>;
  env?: NodeJS.ProcessEnv;
  /** Extra Worker options (tests shorten shutdown grace, for example). */
  worker?: Partial<WorkerOptions>;
}

export interface AmendctlWorker {
  worker: Worker;
  taskQueue: string;
  registry: ConnectorRegistry;
  /** Run until shutdown; resolves when the worker has stopped and connections are closed. */
  run(): Promise<void>;
  shutdown(): void;
}

/** A prebuilt workflow bundle (npm run build makes lib/workflow-bundle.js), else the sources. */
export function workflowSource(env: NodeJS.ProcessEnv = process.env): Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath'> {
  const bundle = env.AMENDCTL_WORKFLOW_BUNDLE ?? resolve(PROJECT_ROOT, 'lib', 'workflow-bundle.js');
  if (existsSync(bundle) && !env.AMENDCTL_WORKFLOW_SOURCES) return { workflowBundle: { codePath: bundle } };
  return { workflowsPath: require.resolve('../workflows') };
}

export async function createAmendctlWorker(opts: AmendctlWorkerOptions = {}): Promise<AmendctlWorker> {
  const env = opts.env ?? process.env;
  const files = { ...workerFiles(env), ...opts.files };
  const temporal = opts.temporal ?? temporalTarget();
  const registry = new ConnectorRegistry(parseTargets(readFileSync(files.targetsFile, 'utf8'), files.targetsFile, env));
  const rules = new FileRulesProvider(files.rulesFile);
  const governance = loadGovernancePolicy(files.approvalsFile);

  // Payload encryption (src/codec): keys from this worker's environment; the worker and its client share them.
  const codecKeys = loadCodecKeys(env);

  const connection = await NativeConnection.connect(temporal.connectionOptions);
  const clientConnection = await Connection.connect(temporal.connectionOptions as Parameters<typeof Connection.connect>[0]);
  const client = new Client({ connection: clientConnection, namespace: temporal.namespace, dataConverter: dataConverter(env, codecKeys) });
  let worker: Worker;
  try {
    worker = await Worker.create({
      connection,
      namespace: temporal.namespace,
      taskQueue: files.taskQueue,
      ...workflowSource(env),
      dataConverter: dataConverter(env, codecKeys),
      activities: createActivities({ registry, rules, approvalPolicy: governance.approval, orderingPolicy: governance.ordering, client, taskQueue: files.taskQueue }),
      maxConcurrentActivityTaskExecutions: 20,
      ...opts.worker,
    });
  } catch (err) {
    await Promise.allSettled([connection.close(), clientConnection.close(), registry.close()]);
    throw err;
  }
  return {
    worker,
    taskQueue: files.taskQueue,
    registry,
    async run() {
      try {
        await worker.run();
      } finally {
        await Promise.allSettled([registry.close(), clientConnection.close(), connection.close()]);
      }
    },
    shutdown() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
    },
  };
}
