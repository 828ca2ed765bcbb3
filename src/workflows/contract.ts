/**
 * The contract's entity workflow (`contract-{contractId}`): owns the applied state and
 * hands out turns, so amendments of one contract never interleave and apply strictly in
 * `sequence` order. An amendment enqueues itself; when its predecessor is applied it gets
 * a turn carrying the applied state; it releases the turn with the new contract (applied)
 * or without (invalid, rejected, rolled back). The workflow never ends: it continues as new
 * when its history grows, carrying only bounded state.
 */
import {
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  log,
  setHandler,
  workflowInfo,
  allHandlersFinished,
} from '@temporalio/workflow';
import {
  appliedStateQuery,
  contractQuery,
  type ContractView,
  type ContractWorkflowState,
  enqueueSignal,
  releaseSignal,
  turnSignal,
  type TurnMessage,
} from './definitions';

const RECENT_KEPT = 50;
/** Continue as new well before Temporal's own limits, whatever the server suggests. */
const MAX_HISTORY_EVENTS = 2_000;

export async function contractWorkflow(initial: ContractWorkflowState): Promise<void> {
  const state: ContractWorkflowState = { ...initial, waiting: [...initial.waiting], recent: [...initial.recent] };
  const outbox: Array<{ workflowId: string; message: TurnMessage }> = [];

  const nextSequence = (): number => (state.applied?.sequence ?? 0) + 1;

  setHandler(enqueueSignal, (req) => {
    const known = state.holder?.amendmentId === req.amendmentId || state.waiting.some((w) => w.amendmentId === req.amendmentId);
    if (known) return; // a retried enqueue activity
    if (state.recent.some((r) => r.amendmentId === req.amendmentId)) {
      outbox.push({ workflowId: req.workflowId, message: { kind: 'refused', reason: `amendment ${req.amendmentId} was already applied to contract ${state.contractId}` } });
      return;
    }
    if (req.sequence < nextSequence()) {
      const by = state.recent.find((r) => r.sequence === req.sequence)?.amendmentId;
      outbox.push({
        workflowId: req.workflowId,
        message: { kind: 'refused', reason: `sequence ${req.sequence} of contract ${state.contractId} is already applied${by ? ` (by amendment ${by})` : ''}; the contract is at sequence ${nextSequence() - 1}` },
      });
      return;
    }
    state.waiting.push(req);
  });

  setHandler(releaseSignal, (msg) => {
    if (state.holder?.amendmentId !== msg.amendmentId) {
      log.warn('release from an amendment that does not hold the turn', { amendmentId: msg.amendmentId, holder: state.holder?.amendmentId });
      return;
    }
    if (msg.applied) {
      state.applied = {
        contract: msg.applied,
        sequence: state.holder.sequence,
        amendmentId: state.holder.amendmentId,
        previous: state.applied?.contract ?? null,
      };
      state.recent.push({ amendmentId: state.holder.amendmentId, sequence: state.holder.sequence, at: new Date().toISOString() });
      if (state.recent.length > RECENT_KEPT) state.recent.splice(0, state.recent.length - RECENT_KEPT);
      // Amendments that were waiting for an already-taken sequence can never apply now.
      for (const w of state.waiting.filter((x) => x.sequence < nextSequence())) {
        outbox.push({ workflowId: w.workflowId, message: { kind: 'refused', reason: `sequence ${w.sequence} of contract ${state.contractId} was applied by amendment ${state.holder.amendmentId}` } });
      }
      state.waiting = state.waiting.filter((x) => x.sequence >= nextSequence());
    }
    state.holder = null;
  });

  setHandler(contractQuery, (): ContractView => ({
    contractId: state.contractId,
    appliedSequence: state.applied?.sequence ?? 0,
    ...(state.applied ? { lastAmendmentId: state.applied.amendmentId } : {}),
    ...(state.holder ? { holder: state.holder.amendmentId } : {}),
    waiting: state.waiting.map((w) => ({ amendmentId: w.amendmentId, sequence: w.sequence })),
    recent: state.recent,
  }));
  setHandler(appliedStateQuery, () => state.applied);

  const grantable = (): boolean => state.holder === null && state.waiting.some((w) => w.sequence === nextSequence());
  const tooLong = (): boolean => workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > MAX_HISTORY_EVENTS;

  for (;;) {
    await condition(() => outbox.length > 0 || grantable() || tooLong());
    while (outbox.length > 0) {
      const { workflowId, message } = outbox.shift()!;
      await deliver(workflowId, message);
    }
    if (grantable()) {
      const i = state.waiting.findIndex((w) => w.sequence === nextSequence());
      const [next] = state.waiting.splice(i, 1);
      state.holder = next!;
      const delivered = await deliver(next!.workflowId, { kind: 'turn', applied: state.applied });
      if (!delivered) state.holder = null; // the amendment's workflow is gone: move on
      continue;
    }
    if (tooLong() && outbox.length === 0) {
      // The holder (if any) releases to the workflow id, so it finds the next run.
      await condition(allHandlersFinished);
      await continueAsNew<typeof contractWorkflow>(state);
    }
  }
}

async function deliver(workflowId: string, message: TurnMessage): Promise<boolean> {
  try {
    await getExternalWorkflowHandle(workflowId).signal(turnSignal, message);
    return true;
  } catch (err) {
    log.warn('could not signal amendment workflow', { workflowId, error: String(err) });
    return false;
  }
}
