/**
 * The keeper of an amendment's turn (`amendment-{id}.keeper`): a child workflow with the parent
 * close policy REQUEST_CANCEL, started by amendmentV4 once it has held its contract's turn for
 * KEEPER_AFTER_MS (amendmentV3 and V2 started it before they asked for the turn). Whatever ends
 * the amendment's run (completion, failure, termination in the UI, a timeout, a reset), the
 * server then asks the keeper to cancel, and the keeper tells the contract workflow that the run
 * is gone. The contract decides what the news means (src/workflows/contract.ts): nothing for an
 * amendment that released its turn (its release arrived before its run closed), a reclaim for a
 * holder that did not. The keeper costs the amendment 2 history events and no signal of its own;
 * until it runs, the contract checks on the holder itself.
 */
import {
  CancellationScope,
  condition,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  workflowInfo,
} from '@temporalio/workflow';
import { contractWorkflowId, holderGoneSignal, type KeeperInput } from './definitions';

export async function turnKeeper(input: KeeperInput): Promise<void> {
  try {
    await condition(() => false); // until the parent's run closes
  } catch (err) {
    if (!isCancellation(err)) throw err;
    const runId = workflowInfo().parent?.runId;
    await CancellationScope.nonCancellable(async () => {
      try {
        await getExternalWorkflowHandle(contractWorkflowId(input.contractId)).signal(holderGoneSignal, {
          amendmentId: input.amendmentId,
          workflowId: input.workflowId,
          ...(runId ? { runId } : {}),
        });
      } catch (e) {
        log.warn('could not tell the contract that its amendment is gone', {
          contractId: input.contractId,
          amendmentId: input.amendmentId,
          error: String(e),
        });
      }
    });
  }
}
