/**
 * The contract's entity workflow (`contract-{contractId}`): owns the applied state and
 * hands out turns, so amendments of one contract never interleave and apply strictly in
 * `sequence` order. An amendment enqueues itself; when its predecessor is applied it gets
 * a turn carrying the applied state; it releases the turn with the new contract (applied)
 * or without (invalid, rejected, rolled back). The workflow never ends: it continues as new
 * when its history grows, carrying only bounded state.
 *
 * It also keeps the amendments that wait for their effective date (`scheduled`): a later
 * amendment for the same sequence supersedes a scheduled one before it takes effect. And it
 * tells each waiting amendment which earlier sequences have not arrived, so a gap is
 * reported (and, after the ordering policy's deadline, ends the waiting amendment `invalid`).
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
  type ContractNotice,
  type EnqueueRequest,
  enqueueSignal,
  noticeSignal,
  releaseSignal,
  turnSignal,
  type TurnMessage,
  withdrawSignal,
} from './definitions';

const RECENT_KEPT = 50;
/** Continue as new well before Temporal's own limits, whatever the server suggests. */
const MAX_HISTORY_EVENTS = 2_000;

type Outgoing = { workflowId: string; message: TurnMessage; notice?: never } | { workflowId: string; notice: ContractNotice; message?: never };

export async function contractWorkflow(initial: ContractWorkflowState): Promise<void> {
  const state: ContractWorkflowState = {
    ...initial,
    waiting: [...initial.waiting],
    recent: [...initial.recent],
    scheduled: [...(initial.scheduled ?? [])],
    run: (initial.run ?? 0) + 1,
  };
  const scheduled = state.scheduled!;
  const maxEvents = initial.maxHistoryEvents ?? MAX_HISTORY_EVENTS;
  const outbox: Outgoing[] = [];
  /** The last notice sent to each waiting amendment (not carried across runs: a repeat is harmless). */
  const lastNotice = new Map<string, string>();

  const nextSequence = (): number => (state.applied?.sequence ?? 0) + 1;

  /** Scheduled amendments for this sequence, other than `req`, are superseded by it. */
  const supersede = (req: EnqueueRequest): void => {
    for (const s of scheduled.filter((x) => x.sequence === req.sequence && x.amendmentId !== req.amendmentId)) {
      outbox.push({
        workflowId: s.workflowId,
        notice: { kind: 'superseded', by: req.amendmentId, reason: `amendment ${req.amendmentId} arrived for sequence ${req.sequence} of contract ${state.contractId} before ${s.amendmentId} took effect` },
      });
    }
    const keep = scheduled.filter((x) => !(x.sequence === req.sequence && x.amendmentId !== req.amendmentId));
    scheduled.splice(0, scheduled.length, ...keep);
  };

  /** Tell every waiting amendment that is not next where the line stands (only when it changed). */
  const noticeWaiting = (): void => {
    const present = new Set<number>([...state.waiting.map((w) => w.sequence), ...scheduled.map((s) => s.sequence), ...(state.holder ? [state.holder.sequence] : [])]);
    for (const w of state.waiting) {
      if (w.sequence === nextSequence()) continue;
      const missing: number[] = [];
      for (let q = nextSequence(); q < w.sequence; q++) if (!present.has(q)) missing.push(q);
      const scheduledAhead = scheduled.filter((s) => s.sequence < w.sequence).map((s) => ({ sequence: s.sequence, amendmentId: s.amendmentId, effectiveAt: s.effectiveAt ?? '' }));
      const notice: ContractNotice = { kind: 'waiting', appliedSequence: nextSequence() - 1, missing, scheduledAhead };
      // Only what the amendment acts on (the gap, what is scheduled ahead): one notice per change, none in the common in-order case.
      // While there is a gap the status names the contract's sequence too, so that counts as a change.
      const key = JSON.stringify(missing.length > 0 ? [missing, scheduledAhead, notice.appliedSequence] : [missing, scheduledAhead]);
      if ((lastNotice.get(w.amendmentId) ?? JSON.stringify([[], []])) === key) continue;
      lastNotice.set(w.amendmentId, key);
      outbox.push({ workflowId: w.workflowId, notice });
    }
  };

  setHandler(enqueueSignal, (req) => {
    if (req.effectiveAt !== undefined) {
      // Registered while waiting for its effective date: not in line yet.
      if (scheduled.some((s) => s.amendmentId === req.amendmentId)) return;
      if (req.sequence >= nextSequence()) {
        supersede(req);
        scheduled.push(req);
        noticeWaiting();
      }
      return; // a stale one is refused when it enqueues for its turn
    }
    const wasScheduled = scheduled.some((s) => s.amendmentId === req.amendmentId);
    if (wasScheduled) scheduled.splice(scheduled.findIndex((s) => s.amendmentId === req.amendmentId), 1);
    const known = state.holder?.amendmentId === req.amendmentId || state.waiting.some((w) => w.amendmentId === req.amendmentId);
    if (known) return; // a retried enqueue activity
    if (!wasScheduled && req.sequence >= nextSequence()) supersede(req);
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
    noticeWaiting();
  });

  setHandler(withdrawSignal, ({ amendmentId }) => {
    // Cancelled, superseded or given up on a gap: out of every list; a turn it holds is released.
    const i = scheduled.findIndex((s) => s.amendmentId === amendmentId);
    if (i >= 0) scheduled.splice(i, 1);
    state.waiting = state.waiting.filter((w) => w.amendmentId !== amendmentId);
    if (state.holder?.amendmentId === amendmentId) state.holder = null;
    lastNotice.delete(amendmentId);
    noticeWaiting();
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
      for (const s of scheduled.filter((x) => x.sequence < nextSequence())) lastNotice.delete(s.amendmentId);
    }
    state.holder = null;
    noticeWaiting();
  });

  setHandler(contractQuery, (): ContractView => ({
    contractId: state.contractId,
    appliedSequence: state.applied?.sequence ?? 0,
    ...(state.applied ? { lastAmendmentId: state.applied.amendmentId } : {}),
    ...(state.holder ? { holder: state.holder.amendmentId } : {}),
    waiting: state.waiting.map((w) => ({ amendmentId: w.amendmentId, sequence: w.sequence })),
    scheduled: scheduled.map((s) => ({ amendmentId: s.amendmentId, sequence: s.sequence, effectiveAt: s.effectiveAt ?? '' })),
    recent: state.recent,
    run: state.run ?? 1,
  }));
  setHandler(appliedStateQuery, () => state.applied);

  const grantable = (): boolean => state.holder === null && state.waiting.some((w) => w.sequence === nextSequence());
  const tooLong = (): boolean => workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > maxEvents;

  for (;;) {
    await condition(() => outbox.length > 0 || grantable() || tooLong());
    while (outbox.length > 0) {
      // Refusals and notices go out together (one workflow task), in the order they were queued per amendment.
      const batch = outbox.splice(0, outbox.length);
      await Promise.all(batch.map((out) => (out.message ? deliver(out.workflowId, out.message) : notify(out.workflowId, out.notice))));
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

async function notify(workflowId: string, notice: ContractNotice): Promise<void> {
  try {
    await getExternalWorkflowHandle(workflowId).signal(noticeSignal, notice);
  } catch (err) {
    log.warn('could not notify amendment workflow', { workflowId, error: String(err) });
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
