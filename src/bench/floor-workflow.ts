/**
 * The floor for src/bench/heap.ts: the smallest workflow that waits for a signal. Its bundle
 * holds nothing but the workflow SDK, so what one of it costs in the worker's cache is what
 * the SDK itself costs per cached workflow. Bundled by the bench at run time, not registered
 * by the amendctl worker.
 */
import { condition, defineSignal, setHandler, upsertSearchAttributes } from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const floorReleaseSignal = defineSignal('release');
const status = defineSearchAttributeKey('AmendmentStatus', SearchAttributeType.KEYWORD);

export async function floorWorkflow(): Promise<string> {
  let released = false;
  setHandler(floorReleaseSignal, () => {
    released = true;
  });
  upsertSearchAttributes([{ key: status, value: 'waiting' }]);
  await condition(() => released);
  return 'released';
}
