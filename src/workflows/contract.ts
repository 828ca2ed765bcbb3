/**
 * The contract's entity workflow (`contract-{contractId}`): owns the applied state and
 * hands out turns, so amendments of one contract never interleave and apply strictly in
 * `sequence` order. An amendment enqueues itself; when its predecessor is applied it gets
 * a turn carrying the applied state; it releases the turn with the new contract (applied)
 * or without (invalid, rejected, rolled_back). The workflow never ends: it continues as new
 * when its history grows, carrying only bounded state.
 *
 * It also keeps the amendments that wait for their effective date (`scheduled`): a later
 * amendment for the same sequence supersedes a scheduled one before it takes effect. And it
 * tells each waiting amendment which earlier sequences have not arrived, so a gap is
 * reported (and, after the ordering policy's deadline, ends the waiting amendment `invalid`).
 *
 * No holder keeps the turn past its end: each amendment's turn keeper (src/workflows/keeper.ts)
 * reports its run's close, however it closed, and a holder that did not release is reclaimed
 * (the reclaimTurn activity: what it applied compensated, an audit record; src/activities/reclaim.ts).
 * amendmentV4 starts its keeper only when it holds the turn for a while (most release sooner):
 * the contract checks on such a holder HOLDER_CHECK_MS after its turn, and again until its keeper
 * runs (the checkHolder local activity), so one that closed unreleased is reclaimed as soon.
 * An operator frees a turn the same way (`amendctl contract release`). The next in line is told
 * who holds the turn and since when.
 */
import {
  type CancellationScope,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
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
  HOLDER_CHECK_MS,
  holderGoneSignal,
  noticeSignal,
  type ReclaimView,
  type TurnHolderView,
  releaseTurnSignal,
  releaseSignal,
  turnSignal,
  type TurnMessage,
  withdrawSignal,
  type AmendmentActivities,
} from './definitions';
import { ContractSchema } from '../domain/contract';
import { cancellableTimer } from './timers';

const RECENT_KEPT = 50;
/**
 * Patch: signals of the wrong shape are ignored (logged), never applied to the contract's state.
 * Anyone with access to Temporal can send this workflow a signal (the CLI, the UI); one that made
 * a handler throw would fail every workflow task after it, and the contract would block for good.
 * A payload that the first release threw on (null, or nothing) is ignored in every history: it
 * never got past its workflow task. Other shapes are checked in histories with the patch marker.
 */
const HOSTILE_SIGNALS_PATCH = 'hostile-signals';

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const str = (v: unknown): boolean => typeof v === 'string' && v.length > 0 && v.length <= 300;
const optStr = (v: unknown): boolean => v === undefined || str(v);
const seq = (v: unknown): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v >= 1;

/** Why a message to the contract is not one this workflow sends itself or receives from its amendments, or undefined. */
const SIGNAL_SHAPES: Record<string, (m: Record<string, unknown>) => string | undefined> = {
  enqueue: (m) =>
    str(m['amendmentId']) &&
    seq(m['sequence']) &&
    str(m['workflowId']) &&
    optStr(m['runId']) &&
    optStr(m['effectiveAt']) &&
    (m['lateKeeper'] === undefined || typeof m['lateKeeper'] === 'boolean')
      ? undefined
      : 'expected { amendmentId, sequence, workflowId, runId?, effectiveAt?, lateKeeper? }',
  release: (m) =>
    !str(m['amendmentId'])
      ? 'expected { amendmentId, applied? }'
      : m['applied'] !== undefined && !ContractSchema.safeParse(m['applied']).success
        ? 'applied: not a contract'
        : undefined,
  withdraw: (m) => (str(m['amendmentId']) ? undefined : 'expected { amendmentId }'),
  holderGone: (m) =>
    str(m['amendmentId']) && str(m['workflowId']) && optStr(m['runId'])
      ? undefined
      : 'expected { amendmentId, workflowId, runId? }',
  releaseTurn: (m) =>
    str(m['amendmentId']) && typeof m['by'] === 'string' && typeof m['reason'] === 'string'
      ? undefined
      : 'expected { amendmentId, by, reason }',
};

/** True when the handler may act on the message; a malformed one is logged and ignored (see HOSTILE_SIGNALS_PATCH). */
function wellFormed(signal: keyof typeof SIGNAL_SHAPES, msg: unknown): boolean {
  const why = msg === null || msg === undefined ? `no payload (${String(msg)})` : undefined;
  if (why) {
    log.warn(`ignored a malformed ${signal} signal`, { why });
    return false;
  }
  const problem = isObject(msg)
    ? SIGNAL_SHAPES[signal]!(msg)
    : `expected an object, got ${Array.isArray(msg) ? 'an array' : typeof msg}`;
  if (problem && patched(HOSTILE_SIGNALS_PATCH)) {
    log.warn(`ignored a malformed ${signal} signal`, { why: problem });
    return false;
  }
  return true;
}
const RECLAIMED_KEPT = 20;
/** Patch: the next in line is told who holds the turn (its notices changed; runs started before keep theirs). */
const HOLDER_NOTICE_PATCH = 'holder-in-notice';

/** On the contract's own task queue: it waits for the holder's batches to stop, compensates, records. */
const reclaiming = proxyActivities<Pick<AmendmentActivities, 'reclaimTurn'>>({
  startToCloseTimeout: '30m',
  heartbeatTimeout: '60s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '60s' },
});
/** In the worker that runs the contract's workflow task: a describe of the holder and of its keeper. */
const checking = proxyLocalActivities<Pick<AmendmentActivities, 'checkHolder'>>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '10s' },
});

/**
 * When the contract next checks on a holder with a late keeper (amendmentV4): a timer, cancelled
 * when the holder releases or changes (in that signal's own workflow task: no event of its own).
 */
class HolderWatch {
  private scope: CancellationScope | undefined;
  due = false;

  /** Check on the holder HOLDER_CHECK_MS from now. */
  arm(): void {
    this.stop();
    const scope = cancellableTimer(HOLDER_CHECK_MS, () => {
      if (this.scope !== scope) return;
      this.scope = undefined;
      this.due = true;
    });
    this.scope = scope;
  }

  stop(): void {
    this.scope?.cancel();
    this.scope = undefined;
    this.due = false;
  }
}

/** Continue as new well before Temporal's own limits, whatever the server suggests. */
const MAX_HISTORY_EVENTS = 2_000;

type Outgoing =
  | { workflowId: string; message: TurnMessage; notice?: never }
  | { workflowId: string; notice: ContractNotice; message?: never };

export async function contractWorkflow(initial: ContractWorkflowState): Promise<void> {
  const state: ContractWorkflowState = {
    ...initial,
    waiting: [...initial.waiting],
    recent: [...initial.recent],
    scheduled: [...(initial.scheduled ?? [])],
    reclaimed: [...(initial.reclaimed ?? [])],
    reclaim: initial.reclaim ?? null,
    run: (initial.run ?? 0) + 1,
  };
  const tellHolder = patched(HOLDER_NOTICE_PATCH);
  const scheduled = state.scheduled!;
  const maxEvents = initial.maxHistoryEvents ?? MAX_HISTORY_EVENTS;
  const outbox: Outgoing[] = [];
  const watch = new HolderWatch();
  if (state.holder?.lateKeeper && !state.holder.kept) watch.arm(); // carried across a continue-as-new
  /** The last notice sent to each waiting amendment (not carried across runs: a repeat is harmless). */
  const lastNotice = new Map<string, string>();

  const nextSequence = (): number => (state.applied?.sequence ?? 0) + 1;

  /** Scheduled amendments for this sequence, other than `req`, are superseded by it. */
  const supersede = (req: EnqueueRequest): void => {
    for (const s of scheduled.filter((x) => x.sequence === req.sequence && x.amendmentId !== req.amendmentId)) {
      outbox.push({
        workflowId: s.workflowId,
        notice: {
          kind: 'superseded',
          by: req.amendmentId,
          reason: `amendment ${req.amendmentId} arrived for sequence ${req.sequence} of contract ${state.contractId} before ${s.amendmentId} took effect`,
        },
      });
    }
    const keep = scheduled.filter((x) => !(x.sequence === req.sequence && x.amendmentId !== req.amendmentId));
    scheduled.splice(0, scheduled.length, ...keep);
  };

  /** Who holds the turn, since when, and whether it is being taken back: for the query and the notices. */
  const holderView = (): TurnHolderView | undefined =>
    state.holder
      ? {
          amendmentId: state.holder.amendmentId,
          sequence: state.holder.sequence,
          ...(state.holder.since ? { since: state.holder.since } : {}),
          ...(state.reclaim
            ? {
                reclaiming: {
                  why: state.reclaim.by
                    ? `released by ${state.reclaim.by}: ${state.reclaim.reason ?? ''}`
                    : 'its workflow has ended without releasing',
                  at: state.reclaim.at,
                },
              }
            : {}),
        }
      : undefined;

  /** Tell every waiting amendment that is not next where the line stands (only when it changed). */
  const noticeWaiting = (): void => {
    const present = new Set<number>([
      ...state.waiting.map((w) => w.sequence),
      ...scheduled.map((s) => s.sequence),
      ...(state.holder ? [state.holder.sequence] : []),
    ]);
    const holder = holderView();
    for (const w of state.waiting) {
      if (w.sequence === nextSequence()) {
        // Next in line: it waits only for the holder, so it is told who that is (once per holder and change).
        if (!tellHolder || !holder) continue;
        const key = JSON.stringify(['holder', holder]);
        if (lastNotice.get(w.amendmentId) === key) continue;
        lastNotice.set(w.amendmentId, key);
        outbox.push({
          workflowId: w.workflowId,
          notice: { kind: 'waiting', appliedSequence: nextSequence() - 1, missing: [], scheduledAhead: [], holder },
        });
        continue;
      }
      const missing: number[] = [];
      for (let q = nextSequence(); q < w.sequence; q++) if (!present.has(q)) missing.push(q);
      const scheduledAhead = scheduled
        .filter((s) => s.sequence < w.sequence)
        .map((s) => ({ sequence: s.sequence, amendmentId: s.amendmentId, effectiveAt: s.effectiveAt ?? '' }));
      const notice: ContractNotice = {
        kind: 'waiting',
        appliedSequence: nextSequence() - 1,
        missing,
        scheduledAhead,
        ...(tellHolder && holder ? { holder } : {}),
      };
      // Only what the amendment acts on (the gap, what is scheduled ahead): one notice per change, none in the common in-order case.
      // While there is a gap the status names the contract's sequence too, so that counts as a change.
      // Right behind the holder (its sequence next), the holder is part of what it is told.
      const behind = tellHolder && holder !== undefined && w.sequence === holder.sequence + 1;
      const key = JSON.stringify(
        missing.length > 0
          ? [missing, scheduledAhead, notice.appliedSequence]
          : [missing, scheduledAhead, ...(behind ? [holder] : [])],
      );
      if ((lastNotice.get(w.amendmentId) ?? JSON.stringify([[], []])) === key) continue;
      lastNotice.set(w.amendmentId, key);
      outbox.push({ workflowId: w.workflowId, notice });
    }
  };

  setHandler(enqueueSignal, (req) => {
    if (!wellFormed('enqueue', req)) return;
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
    if (wasScheduled)
      scheduled.splice(
        scheduled.findIndex((s) => s.amendmentId === req.amendmentId),
        1,
      );
    if (state.holder?.amendmentId === req.amendmentId) {
      // A new run of the holder (its workflow was reset) asks again: the turn is its own.
      if (req.runId && state.holder.runId !== req.runId) {
        state.holder = { ...state.holder, runId: req.runId };
        if (req.lateKeeper) {
          // The new run starts a keeper of its own, late: the contract checks on it until then.
          state.holder.lateKeeper = true;
          delete state.holder.kept;
          watch.arm();
        }
        if (state.reclaim?.amendmentId === req.amendmentId) state.reclaim = null;
        outbox.push({ workflowId: req.workflowId, message: { kind: 'turn', applied: state.applied } });
      }
      return; // else a retried enqueue activity
    }
    const waitingAt = state.waiting.findIndex((w) => w.amendmentId === req.amendmentId);
    if (waitingAt >= 0) {
      if (req.runId) state.waiting[waitingAt] = { ...state.waiting[waitingAt]!, runId: req.runId };
      return; // a retried enqueue activity (or a reset run, which now waits in its place)
    }
    if (!wasScheduled && req.sequence >= nextSequence()) supersede(req);
    if (state.recent.some((r) => r.amendmentId === req.amendmentId)) {
      outbox.push({
        workflowId: req.workflowId,
        message: {
          kind: 'refused',
          reason: `amendment ${req.amendmentId} was already applied to contract ${state.contractId}`,
        },
      });
      return;
    }
    if (req.sequence < nextSequence()) {
      const by = state.recent.find((r) => r.sequence === req.sequence)?.amendmentId;
      outbox.push({
        workflowId: req.workflowId,
        message: {
          kind: 'refused',
          reason: `sequence ${req.sequence} of contract ${state.contractId} is already applied${by ? ` (by amendment ${by})` : ''}; the contract is at sequence ${nextSequence() - 1}`,
        },
      });
      return;
    }
    state.waiting.push(req);
    noticeWaiting();
  });

  setHandler(withdrawSignal, (msg) => {
    if (!wellFormed('withdraw', msg)) return;
    const { amendmentId } = msg;
    // Cancelled, superseded or given up on a gap: out of every list; a turn it holds is released.
    const i = scheduled.findIndex((s) => s.amendmentId === amendmentId);
    if (i >= 0) scheduled.splice(i, 1);
    state.waiting = state.waiting.filter((w) => w.amendmentId !== amendmentId);
    if (state.holder?.amendmentId === amendmentId) {
      state.holder = null;
      watch.stop();
    }
    lastNotice.delete(amendmentId);
    noticeWaiting();
  });

  setHandler(holderGoneSignal, (gone) => {
    if (!wellFormed('holderGone', gone)) return;
    const now = new Date().toISOString();
    if (state.holder?.amendmentId === gone.amendmentId) {
      if (gone.runId && state.holder.runId && gone.runId !== state.holder.runId) return; // an earlier run of a reset holder
      state.reclaim ??= { amendmentId: gone.amendmentId, ...(gone.runId ? { runId: gone.runId } : {}), at: now };
      noticeWaiting();
      return;
    }
    // Not holding: out of the line (a turn would not reach it anyway), unless a newer run took its place.
    const mine = (r: EnqueueRequest): boolean =>
      r.amendmentId === gone.amendmentId && (!gone.runId || !r.runId || r.runId === gone.runId);
    const before = state.waiting.length + scheduled.length;
    state.waiting = state.waiting.filter((w) => !mine(w));
    scheduled.splice(0, scheduled.length, ...scheduled.filter((x) => !mine(x)));
    if (state.waiting.length + scheduled.length !== before) {
      lastNotice.delete(gone.amendmentId);
      noticeWaiting();
    }
  });

  setHandler(releaseTurnSignal, (msg) => {
    if (!wellFormed('releaseTurn', msg)) return;
    if (state.holder?.amendmentId !== msg.amendmentId) {
      log.warn('operator release for an amendment that does not hold the turn', {
        amendmentId: msg.amendmentId,
        holder: state.holder?.amendmentId,
      });
      return;
    }
    state.reclaim = {
      amendmentId: msg.amendmentId,
      ...(state.holder.runId ? { runId: state.holder.runId } : {}),
      by: msg.by,
      reason: msg.reason,
      at: new Date().toISOString(),
    };
    noticeWaiting();
  });

  setHandler(releaseSignal, (msg) => {
    if (!wellFormed('release', msg)) return;
    if (state.holder?.amendmentId !== msg.amendmentId) {
      log.warn('release from an amendment that does not hold the turn', {
        amendmentId: msg.amendmentId,
        holder: state.holder?.amendmentId,
      });
      return;
    }
    if (msg.applied) {
      state.applied = {
        contract: msg.applied,
        sequence: state.holder.sequence,
        amendmentId: state.holder.amendmentId,
        previous: state.applied?.contract ?? null,
      };
      state.recent.push({
        amendmentId: state.holder.amendmentId,
        sequence: state.holder.sequence,
        at: new Date().toISOString(),
      });
      if (state.recent.length > RECENT_KEPT) state.recent.splice(0, state.recent.length - RECENT_KEPT);
      // Amendments that were waiting for an already-taken sequence can never apply now.
      for (const w of state.waiting.filter((x) => x.sequence < nextSequence())) {
        outbox.push({
          workflowId: w.workflowId,
          message: {
            kind: 'refused',
            reason: `sequence ${w.sequence} of contract ${state.contractId} was applied by amendment ${state.holder.amendmentId}`,
          },
        });
      }
      state.waiting = state.waiting.filter((x) => x.sequence >= nextSequence());
      for (const s of scheduled.filter((x) => x.sequence < nextSequence())) lastNotice.delete(s.amendmentId);
    }
    state.holder = null;
    state.reclaim = null;
    watch.stop();
    noticeWaiting();
  });

  setHandler(contractQuery, (): ContractView => ({
    contractId: state.contractId,
    appliedSequence: state.applied?.sequence ?? 0,
    ...(state.applied ? { lastAmendmentId: state.applied.amendmentId } : {}),
    ...(state.holder
      ? {
          holder: state.holder.amendmentId,
          holding: holderView()!,
        }
      : {}),
    ...(state.reclaimed && state.reclaimed.length > 0 ? { reclaimed: state.reclaimed } : {}),
    waiting: state.waiting.map((w) => ({ amendmentId: w.amendmentId, sequence: w.sequence })),
    scheduled: scheduled.map((s) => ({
      amendmentId: s.amendmentId,
      sequence: s.sequence,
      effectiveAt: s.effectiveAt ?? '',
    })),
    recent: state.recent,
    run: state.run ?? 1,
  }));
  setHandler(appliedStateQuery, () => state.applied);

  /** Take the turn back from a holder that ended without releasing it (or that an operator released). */
  const reclaim = async (r: NonNullable<ContractWorkflowState['reclaim']>): Promise<void> => {
    const holder = state.holder!;
    const result = await reclaiming.reclaimTurn({
      contractId: state.contractId,
      holder,
      ...(r.by ? { by: r.by, reason: r.reason ?? '' } : {}),
    });
    if (state.reclaim !== r) return; // the holder released, or a new run of it took the turn, meanwhile
    state.reclaim = null;
    if (result.kind === 'running' || result.kind === 'ended') {
      // Running: nothing to take back (an operator release is refused). Ended normally: its release is on its way.
      log.info('turn not reclaimed', { amendmentId: holder.amendmentId, found: result.kind });
      noticeWaiting();
      return;
    }
    if (result.kind === 'rerun') {
      state.holder = { ...holder, runId: result.runId }; // reset: the new run holds it (and asks again, if it must)
      if (state.holder.lateKeeper) {
        delete state.holder.kept;
        watch.arm();
      }
      return;
    }
    const reclaimed: ReclaimView = result.view;
    state.reclaimed!.push(reclaimed);
    if (state.reclaimed!.length > RECLAIMED_KEPT) state.reclaimed!.splice(0, state.reclaimed!.length - RECLAIMED_KEPT);
    log.warn('turn reclaimed from an amendment that ended without releasing it', {
      amendmentId: holder.amendmentId,
      ended: reclaimed.ended,
      compensated: reclaimed.undone,
      flagged: reclaimed.flagged.length,
    });
    state.holder = null;
    watch.stop();
    noticeWaiting();
  };

  /** A holder with a late keeper, HOLDER_CHECK_MS after its turn (and again until its keeper runs). */
  const check = async (h: NonNullable<ContractWorkflowState['holder']>): Promise<void> => {
    const found = await checking.checkHolder({ holder: h });
    if (state.holder !== h) return; // released, withdrawn or taken over by a new run meanwhile
    if (found === 'kept') h.kept = true;
    else if (found === 'running') watch.arm();
    else
      state.reclaim ??= {
        amendmentId: h.amendmentId,
        ...(h.runId ? { runId: h.runId } : {}),
        at: new Date().toISOString(),
      };
  };

  const grantable = (): boolean => state.holder === null && state.waiting.some((w) => w.sequence === nextSequence());
  const tooLong = (): boolean => workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > maxEvents;

  for (;;) {
    await condition(
      () =>
        outbox.length > 0 || grantable() || tooLong() || (state.reclaim != null && state.holder !== null) || watch.due,
    );
    while (outbox.length > 0) {
      // Refusals and notices go out together (one workflow task), in the order they were queued per amendment.
      const batch = outbox.splice(0, outbox.length);
      await Promise.all(
        batch.map((out) => (out.message ? deliver(out.workflowId, out.message) : notify(out.workflowId, out.notice))),
      );
    }
    if (state.reclaim && state.holder?.amendmentId === state.reclaim.amendmentId) {
      await reclaim(state.reclaim);
      continue;
    }
    if (state.reclaim) state.reclaim = null; // its holder released meanwhile
    if (watch.due) {
      watch.due = false;
      if (state.holder?.lateKeeper && !state.holder.kept) await check(state.holder);
      continue;
    }
    if (grantable()) {
      const i = state.waiting.findIndex((w) => w.sequence === nextSequence());
      const [next] = state.waiting.splice(i, 1);
      state.holder = { ...next!, since: new Date().toISOString() };
      const delivered = await deliver(next!.workflowId, { kind: 'turn', applied: state.applied });
      if (!delivered)
        state.holder = null; // the amendment's workflow is gone: move on
      else if (state.holder?.amendmentId === next!.amendmentId && state.holder.lateKeeper) watch.arm();
      if (tellHolder) noticeWaiting(); // who is behind it learns who holds the turn
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
