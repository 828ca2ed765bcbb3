/**
 * The bare-Temporal floor for `npm run bench:e2e` (src/bench/e2e.ts): what the same server
 * costs with no product logic at all. Bundled by the bench itself (bundleWorkflowCode), never
 * registered by the amendctl worker. Workflow code: deterministic, the workflow SDK only.
 *
 *   floorOpsWorkflow      the same operations as no-op activities: one lane per target, the
 *                         lane's operations one at a time, the lanes concurrently (as
 *                         amendctl ran them before the rewrite).
 *   floorRowWorkflow      the same, one of a row of amendments of one contract (the client
 *                         starts the next one when the previous one has ended).
 *   floorPendingWorkflow  a bare workflow waiting for one signal (the floor of an amendment
 *                         pending approval); it tells the worker it waits through a sink,
 *                         which writes nothing to history.
 */
import { condition, proxyActivities, proxySinks, setHandler, defineSignal, type Sinks } from '@temporalio/workflow';

export interface FloorLane {
  target: string;
  /** How many operations this target gets. */
  n: number;
}

export interface FloorOpsInput {
  lanes: FloorLane[];
}

export interface FloorRowInput extends FloorOpsInput {
  contractId: string;
  sequence: number;
}

export interface FloorOpsResult {
  operations: number;
}

/** One no-op per operation: it returns at once. */
export interface FloorActivities {
  noop(op: { target: string; index: number }): Promise<void>;
}

export interface FloorSinks extends Sinks {
  bench: { waiting(): void };
}

const activities = proxyActivities<FloorActivities>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '20s' },
});

async function runLanes(lanes: FloorLane[]): Promise<FloorOpsResult> {
  await Promise.all(
    lanes.map(async (lane) => {
      for (let index = 0; index < lane.n; index++) await activities.noop({ target: lane.target, index });
    }),
  );
  return { operations: lanes.reduce((sum, l) => sum + l.n, 0) };
}

export async function floorOpsWorkflow(input: FloorOpsInput): Promise<FloorOpsResult> {
  return runLanes(input.lanes);
}

export async function floorRowWorkflow(input: FloorRowInput): Promise<FloorOpsResult> {
  return runLanes(input.lanes);
}

export async function floorPendingWorkflow(): Promise<void> {
  let released = false;
  setHandler(defineSignal<[unknown]>('approve'), () => {
    released = true;
  });
  proxySinks<FloorSinks>().bench.waiting();
  await condition(() => released);
}
