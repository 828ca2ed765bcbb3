/**
 * The floor's worker side: the no-op activity, the floor workflow bundle (built by the bench
 * with bundleWorkflowCode from src/bench/floor-workflows), and a Worker with the settings
 * the amendctl worker uses (same data converter, same activity slots, SDK defaults otherwise).
 */
import { writeFileSync } from 'node:fs';
import type { DataConverter } from '@temporalio/common';
import {
  bundleWorkflowCode,
  type InjectedSinks,
  NativeConnection,
  Worker,
  type WorkerOptions,
} from '@temporalio/worker';
import type { FloorActivities, FloorSinks } from '../floor-workflows';

/** What createAmendctlWorker sets beyond the SDK defaults (src/worker/index.ts); the floor uses the same. */
export const SHARED_WORKER_OPTIONS: Partial<WorkerOptions> = {
  maxConcurrentActivityTaskExecutions: 20,
  shutdownGraceTime: '2s',
};

export const floorActivities: FloorActivities = {
  async noop() {
    // nothing: the floor measures Temporal alone
  },
};

const quiet = { trace() {}, debug() {}, info() {}, log() {}, warn: console.warn, error: console.error };

let bundled: Promise<string> | undefined;

/** The floor workflows' bundle code, built once per process. */
export function floorBundleCode(): Promise<string> {
  bundled ??= bundleWorkflowCode({ workflowsPath: require.resolve('../floor-workflows'), logger: quiet }).then(
    (b) => b.code,
  );
  return bundled;
}

/** Writes the bundle for a worker process (so the child does not bundle, which would inflate its RSS). */
export async function writeFloorBundle(file: string): Promise<string> {
  writeFileSync(file, await floorBundleCode());
  return file;
}

export interface FloorWorker {
  worker: Worker;
  run(): Promise<void>;
  shutdown(): void;
}

export async function createFloorWorker(opts: {
  address: string;
  namespace: string;
  taskQueue: string;
  dataConverter: DataConverter;
  /** The bundle: its code, or a file written by writeFloorBundle. */
  bundle: { code: string } | { codePath: string };
  /** Called once per floorPendingWorkflow when it starts waiting. */
  onWaiting?: () => void;
}): Promise<FloorWorker> {
  const connection = await NativeConnection.connect({ address: opts.address });
  let worker: Worker;
  try {
    worker = await Worker.create({
      connection,
      namespace: opts.namespace,
      taskQueue: opts.taskQueue,
      workflowBundle: opts.bundle,
      dataConverter: opts.dataConverter,
      activities: floorActivities,
      sinks: {
        bench: { waiting: { fn: () => opts.onWaiting?.(), callDuringReplay: false } },
      } satisfies InjectedSinks<FloorSinks>,
      ...SHARED_WORKER_OPTIONS,
    });
  } catch (err) {
    await connection.close();
    throw err;
  }
  return {
    worker,
    async run() {
      try {
        await worker.run();
      } finally {
        await connection.close();
      }
    },
    shutdown() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
    },
  };
}
