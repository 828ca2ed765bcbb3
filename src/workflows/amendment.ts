/**
 * One amendment, from document to access changes (`amendment-{amendmentId}`, workflow type
 * `amendmentV4`; `amendmentV3` and `amendmentV2` are the same code with the turn keeper started
 * first, V2 behind two patches), as a sequence of short phases:
 *
 *   validate -> effective date [scheduled; cancel or supersede end it `rejected`]
 *   -> turn [queued in the contract's sequence; a gap ends it `invalid` after the deadline]
 *   -> plan [a local activity: diff, rules; the operations go to the operation store, the
 *      workflow keeps the claim check: counts, the first operations, the batches]
 *   -> approval [pending_approval where the plan asks for it]
 *   -> provision [each target's batches on the target's own task queue, `lanes` at once]
 *   -> completed | compensate [every applied operation compensated, newest first, per target]
 *   -> rolled_back | failed (naming what is left for an operator).
 *
 * The state and what signals and updates do to it live in AmendmentState (src/workflows/state.ts).
 * Business outcomes are results, not workflow failures: every final status returns the view,
 * which stays bounded whatever the plan's size. The first release's type `amendmentWorkflow`
 * (src/workflows/v1) stays registered until none runs; so does `amendmentV2`.
 */
import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  condition,
  isCancellation,
  ParentClosePolicy,
  patched,
  startChild,
  getExternalWorkflowHandle,
  log,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { AmendmentSchema, type Amendment } from '../domain/amendment';
import { ApprovalState } from './approval';
import {
  type AmendmentActivities,
  type AmendmentStatus,
  type AmendmentView,
  type AmendmentWorkflowInput,
  type AppliedStateView,
  approveSignal,
  amendmentWorkflowId,
  approveUpdate,
  type BatchSpec,
  cancelSignal,
  contractWorkflowId,
  KEEPER_AFTER_MS,
  keeperWorkflowId,
  noticeSignal,
  type OrderingPolicy,
  type PlannedAmendment,
  rejectSignal,
  releaseSignal,
  SA,
  statusQuery,
  turnSignal,
  withdrawSignal,
} from './definitions';
import { turnKeeper } from './keeper';
import { proofs, untilApprovalWakes } from './proofs';
import { ApprovalNotifier } from './notify';
import type { ApprovalNotice } from '../notify/notice';
import { AmendmentState, issuesText, UpdateRefused } from './state';
import { cancellableTimer } from './timers';

/**
 * Patch: the turn keeper and the answer to a Temporal cancellation request (issue 10). Runs
 * started before it have neither; `amendctl contract release` frees a turn one of them left held.
 */
const KEEPER_PATCH = 'turn-keeper';
/**
 * Patch: an approval or rejection counts only with a proof of who decided, verified by the
 * worker, and approval notices go to the configured webhooks (issue 12). Runs started before
 * it go on deciding by name, without notices.
 */
const APPROVAL_PROOF_PATCH = 'approval-proof';

const DEFAULT_RETRY_BUDGET_S = 300;

/** Control steps run in the worker that runs the workflow task: no task queue round trip. */
const control = proxyLocalActivities<Pick<AmendmentActivities, 'enqueueAmendment'>>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '20s' },
});
const planning = proxyLocalActivities<Pick<AmendmentActivities, 'planAmendmentV2'>>({
  startToCloseTimeout: '10m',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '20s' },
});
/** The durable audit log: retried until the store takes the record, so no final status goes unrecorded. */
const auditLog = proxyLocalActivities<Pick<AmendmentActivities, 'recordAudit'>>({
  startToCloseTimeout: '5m',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '60s' },
});

type Ended = { ended: AmendmentView };

/**
 * The amendment workflow that new amendments start. It is amendmentV3 with a late turn keeper:
 * the keeper starts only once the amendment has held its contract's turn for KEEPER_AFTER_MS
 * (an approval, a big or slow provisioning), and until it runs the contract checks on the holder
 * itself (src/workflows/contract.ts). Most amendments release sooner, and never start one: a
 * keeper is a workflow of its own (its start, three workflow tasks, a cancellation and a signal
 * at the close), which cost a quarter of the throughput of 3-user baselines at concurrency 10.
 * A new type: amendmentV3's runs, which started theirs first, replay on amendmentV3.
 */
export async function amendmentV4(input: AmendmentWorkflowInput): Promise<AmendmentView> {
  return run(input, 4);
}

/**
 * The previous type, for its runs: amendmentV2 with its patches settled (the turn keeper, proofs
 * of approvers and the strict reading of signals always, none of the patch markers), the keeper
 * started before the turn is asked for.
 */
export async function amendmentV3(input: AmendmentWorkflowInput): Promise<AmendmentView> {
  return run(input, 3);
}

/** The type before it, for its runs: the same phases, each of its patches asked as it was. */
export async function amendmentV2(input: AmendmentWorkflowInput): Promise<AmendmentView> {
  return run(input, 2);
}

/** amendmentV4 (a late keeper), amendmentV3 (every patch on, none asked), amendmentV2 (asking them). */
async function run(input: AmendmentWorkflowInput, version: 2 | 3 | 4): Promise<AmendmentView> {
  const info = workflowInfo();
  const s = new AmendmentState(input, info.workflowId, new Date(info.startTime).toISOString());
  const settled = version >= 3;
  s.settled = settled;
  listen(s);

  const amendment = validate(s, input);
  if (typeof amendment === 'string') return finish(s, 'invalid', amendment);
  // Asked here, in the first workflow task, the keeper's first: a patch first asked after the
  // plan's local activity can replay out of step with its marker.
  const p: Progress = {
    holding: false,
    dispatched: [],
    keeper: settled || patched(KEEPER_PATCH),
    ...(version >= 4 ? { late: { started: false } } : {}),
  };
  s.proofs = settled || patched(APPROVAL_PROOF_PATCH);
  const contract = new ContractLine(s, amendment, p);
  if (!p.keeper) return phases(s, amendment, contract, p, input);
  if (!p.late) startKeeper(s, amendment);
  try {
    return await phases(s, amendment, contract, p, input);
  } catch (err) {
    if (!isCancellation(err)) throw err;
    return CancellationScope.nonCancellable(() => onCancellation(s, amendment, contract, p, input));
  }
}

/** Where the amendment is, for what a cancellation request must compensate. */
interface Progress {
  /** It holds its contract's turn (and has not released it). */
  holding: boolean;
  plan?: PlannedAmendment;
  /** Batches sent to their targets. */
  dispatched: BatchSpec[];
  /** Its final status is being recorded: the record and the release to repeat if interrupted. */
  finishing?: { status: AmendmentStatus; reason: string; release?: () => Promise<void> };
  /** This run has a turn keeper and answers cancellation (the patch). */
  keeper: boolean;
  /** amendmentV4: the keeper starts once the turn has been held for KEEPER_AFTER_MS (the timer), if it has not been released. */
  late?: { started: boolean; timer?: CancellationScope };
}

async function phases(
  s: AmendmentState,
  amendment: Amendment,
  contract: ContractLine,
  p: Progress,
  input: AmendmentWorkflowInput,
): Promise<AmendmentView> {
  const notYet = await effectiveDate(s, amendment, contract);
  if (notYet) return notYet.ended;
  const applied = await awaitTurn(s, amendment, contract);
  if ('ended' in applied) return applied.ended;
  p.holding = true;
  if (p.late) keepLate(s, amendment, p);

  // Workflow time before the plan's local activity: the same on every replay (the time right after
  // a local activity is not), so the approval's clock and deadline never move.
  const plannedAt = Date.now();
  const plan = await planPhase(s, amendment, applied.turn);
  p.plan = plan;
  if (plan.violations.length > 0)
    return finish(s, 'invalid', plan.violations.map((v) => v.message).join('; '), () => contract.release(), p);
  const refused = await approvalPhase(s, plan, plannedAt);
  if (refused) return finish(s, 'rejected', refused, () => contract.release(), p);

  const budget = retryBudget(input);
  const { failure, dispatched } = await provision(s, amendment, plan, budget, p);
  if (!failure)
    return finish(
      s,
      'completed',
      `${s.count('applied')} changed, ${s.count('unchanged')} already so`,
      () => contract.release(plan.after),
      p,
    );
  return compensateAndFinish(s, amendment, plan, dispatched, budget, failure, contract, p);
}

async function compensateAndFinish(
  s: AmendmentState,
  amendment: Amendment,
  plan: PlannedAmendment,
  dispatched: BatchSpec[],
  budget: number,
  failure: string,
  contract: ContractLine,
  p?: Progress,
): Promise<AmendmentView> {
  const left = await compensate(s, amendment, plan, dispatched, budget, failure);
  if (left.length > 0) {
    s.view.leftForOperator = left;
    const shown = `${left.slice(0, 5).join('; ')}${left.length > 5 ? `; and ${left.length - 5} more` : ''}`;
    return finish(
      s,
      'failed',
      `${failure} and ${left.length} compensation${left.length === 1 ? '' : 's'} failed: ${shown}`,
      () => contract.release(),
      p,
    );
  }
  return finish(s, 'rolled_back', `${failure}; every applied operation was compensated`, () => contract.release(), p);
}

/**
 * The keeper child (src/workflows/keeper.ts): it outlives this run only to report its end.
 * Started with the enqueue (amendmentV3, V2) or KEEPER_AFTER_MS into the turn (amendmentV4).
 * `failed`: what to do when it could not start (its id still taken, say by a reset's previous run's keeper).
 */
function startKeeper(s: AmendmentState, a: Amendment, failed?: () => void): void {
  // From the input, not workflowInfo(): the same id on replay under any workflow id (amendctl replay names runs by file).
  const workflowId = keeperWorkflowId(amendmentWorkflowId(a.amendmentId));
  startChild(turnKeeper, {
    workflowId,
    args: [{ contractId: a.contractId, amendmentId: a.amendmentId, workflowId: s.view.workflowId }],
    parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
    cancellationType: 'ABANDON',
    staticSummary: `Keeps the turn of amendment ${a.amendmentId} on contract ${a.contractId}: reports its end, however it ends`,
  }).catch((err: unknown) => {
    log.warn('the turn keeper did not start', { workflowId, error: String(err) });
    failed?.();
  });
}

/**
 * amendmentV4's keeper: started when the turn has been held for KEEPER_AFTER_MS and not released.
 * The release cancels the timer (in the release's own workflow task: no event of its own).
 */
function keepLate(s: AmendmentState, a: Amendment, p: Progress): void {
  const late = p.late!;
  // Cancelled by the release, or by a cancellation request (which starts the keeper itself).
  late.timer = cancellableTimer(KEEPER_AFTER_MS, () => {
    late.timer = undefined;
    if (p.holding) startLateKeeper(s, a, p);
  });
}

/** Once; a keeper that could not start is tried again KEEPER_AFTER_MS later, while the turn is held (the contract checks meanwhile). */
function startLateKeeper(s: AmendmentState, a: Amendment, p: Progress): void {
  const late = p.late!;
  if (late.started) return;
  late.started = true;
  startKeeper(s, a, () => {
    late.started = false;
    if (p.holding) keepLate(s, a, p);
  });
}

/**
 * A Temporal cancellation request (the Web UI, `temporal workflow cancel`): the amendment ends
 * as a business outcome, not half-way. Before its turn: it leaves the line. Holding the turn,
 * nothing applied: rejected, released. Batches sent: they stop (each waits for its activity to
 * end), every applied operation is compensated, released. Already finishing: the record and release repeated.
 */
async function onCancellation(
  s: AmendmentState,
  a: Amendment,
  line: ContractLine,
  p: Progress,
  input: AmendmentWorkflowInput,
): Promise<AmendmentView> {
  const at = new Date().toISOString();
  const why = 'a Temporal cancellation request (the Web UI or temporal workflow cancel)';
  // Compensation can take a while: a holder with a late keeper starts it now.
  if (p.late && p.holding) startLateKeeper(s, a, p);
  if (p.finishing)
    return finish(s, p.finishing.status, p.finishing.reason, p.finishing.release, { ...p, finishing: undefined });
  s.view.cancellation = { kind: 'cancelled', by: 'Temporal', at, reason: why };
  if (p.plan && p.dispatched.length > 0) {
    const budget = retryBudget(input);
    return compensateAndFinish(s, a, p.plan, p.dispatched, budget, `cancelled by ${why}`, line);
  }
  if (p.holding) return finish(s, 'rejected', `cancelled by ${why} before anything was applied`, () => line.release());
  await line.withdraw();
  return finish(s, 'rejected', `cancelled by ${why} before it held its turn`);
}

// ---- the phases ----------------------------------------------------------------------

function listen(s: AmendmentState): void {
  const now = (): string => new Date().toISOString();
  setHandler(statusQuery, () => s.view);
  setHandler(turnSignal, (t) => s.onTurn(t));
  setHandler(noticeSignal, (n) => s.onNotice(n));
  setHandler(cancelSignal, (x) => s.onCancel(x, now()));
  setHandler(approveSignal, (x) => {
    s.onApprove(x, now());
    showStatus(s);
  });
  setHandler(rejectSignal, (x) => s.onReject(x, now()));
  setHandler(
    approveUpdate,
    async (x) => {
      if (!s.proofs) {
        const r = s.onApproveUpdate(x, now());
        showStatus(s);
        return r;
      }
      // Verified by the approval loop, in arrival order with the signals; the answer once it is.
      const u = s.queueApproveUpdate(x, now());
      await condition(() => u.outcome !== undefined);
      if (!u.outcome!.counted)
        throw ApplicationFailure.create({ message: u.outcome!.why, type: 'ApproverNotAllowed', nonRetryable: true });
      return s.approvalResult();
    },
    {
      validator: (x) => {
        try {
          s.validateApproveUpdate(x);
        } catch (err) {
          if (err instanceof UpdateRefused)
            throw ApplicationFailure.create({ message: err.message, type: err.type, nonRetryable: true });
          throw err;
        }
      },
    },
  );
}

/** The amendment, or why it is invalid. */
/** Longest retry budget an operation may have (the client refuses more; a hand-started input may carry anything). */
const MAX_RETRY_BUDGET_S = 30 * 24 * 3600;

/**
 * The per-operation retry budget: the input's when it is a number of seconds from 1 to 30 days,
 * else the default. (An unusable value would make invalid activity timeouts, and the workflow
 * task would fail while the amendment holds its turn; no history ever got past that, so no patch.)
 */
function retryBudget(input: AmendmentWorkflowInput): number {
  const v = input.options?.retryBudgetSeconds;
  return typeof v === 'number' && Number.isFinite(v) && v >= 1 && v <= MAX_RETRY_BUDGET_S ? v : DEFAULT_RETRY_BUDGET_S;
}

function validate(s: AmendmentState, input: AmendmentWorkflowInput): Amendment | string {
  const parsed = AmendmentSchema.safeParse(input?.amendment);
  if (!parsed.success) return `invalid amendment: ${issuesText(parsed.error.issues)}`;
  const a = parsed.data;
  if (a.reverses) s.view.reverses = a.reverses;
  const reversal = input.options?.rollback;
  if (reversal && a.reverses)
    s.view.rollback = { of: a.reverses, requestedBy: reversal.requestedBy, reason: reversal.reason };
  return a;
}

/** The amendment's place in its contract's line: enqueue, withdraw, release. */
class ContractLine {
  private readonly workflowId: string;
  constructor(
    private readonly s: AmendmentState,
    private readonly a: Amendment,
    private readonly p?: Progress,
  ) {
    this.workflowId = contractWorkflowId(a.contractId);
  }

  async enqueue(effectiveAt?: string): Promise<OrderingPolicy> {
    const a = this.a;
    // With the keeper, the run asks: a new run of this workflow (a reset) then takes over its own turn.
    const runId = this.p?.keeper ? { runId: workflowInfo().runId } : {};
    const late = this.p?.late ? { lateKeeper: true } : {};
    const policy = await control.enqueueAmendment({
      contractId: a.contractId,
      amendmentId: a.amendmentId,
      sequence: a.sequence,
      workflowId: this.s.view.workflowId,
      ...runId,
      ...late,
      ...(effectiveAt ? { effectiveAt } : {}),
    });
    return policy ?? { gapDeadlineSeconds: 7 * 24 * 3600 };
  }

  async withdraw(): Promise<void> {
    await getExternalWorkflowHandle(this.workflowId).signal(withdrawSignal, { amendmentId: this.a.amendmentId });
  }

  async release(after?: Amendment['contract']): Promise<void> {
    if (this.p) {
      this.p.holding = false;
      this.p.late?.timer?.cancel();
    }
    await getExternalWorkflowHandle(this.workflowId).signal(releaseSignal, {
      amendmentId: this.a.amendmentId,
      ...(after ? { applied: after } : {}),
    });
  }
}

/** Nothing changes before the effective date; meanwhile a cancel or a later amendment for the same sequence ends it. */
async function effectiveDate(s: AmendmentState, a: Amendment, line: ContractLine): Promise<Ended | undefined> {
  if (!a.effectiveAt) return undefined;
  s.view.effectiveAt = a.effectiveAt;
  const waitMs = Date.parse(a.effectiveAt) - Date.now();
  if (waitMs <= 0) return undefined;
  setStatus(s, 'scheduled', `takes effect at ${a.effectiveAt}`);
  await line.enqueue(a.effectiveAt);
  await condition(() => s.cancelled !== undefined || s.superseded !== undefined, waitMs);
  if (s.superseded || s.cancelled) return { ended: await endCancelled(s, line) };
  return undefined;
}

async function endCancelled(s: AmendmentState, line: ContractLine): Promise<AmendmentView> {
  if (s.superseded) {
    s.view.cancellation = {
      kind: 'superseded',
      by: s.superseded.by,
      at: new Date().toISOString(),
      reason: s.superseded.reason,
    };
    return finish(
      s,
      'rejected',
      `superseded by amendment ${s.superseded.by} before it took effect: ${s.superseded.reason}`,
    );
  }
  const c = s.cancelled!;
  s.view.cancellation = { kind: 'cancelled', ...c };
  await line.withdraw();
  return finish(s, 'rejected', `cancelled by ${c.by} before it took effect: ${c.reason}`);
}

/**
 * Wait for the turn: the predecessor must be applied first. A gap (an earlier sequence that
 * never arrives) is reported, and after the ordering policy's deadline ends it invalid.
 */
async function awaitTurn(
  s: AmendmentState,
  a: Amendment,
  line: ContractLine,
): Promise<Ended | { turn: AppliedStateView | null }> {
  setStatus(s, 'queued', `waiting for the turn of sequence ${a.sequence} of contract ${a.contractId}`);
  const { gapDeadlineSeconds } = await line.enqueue();
  const stop = (): boolean => s.turn !== undefined || s.cancelled !== undefined || s.superseded !== undefined;
  let gapSince: number | undefined;
  while (!stop()) {
    const w = s.waiting;
    const missing = w?.missing ?? [];
    const seen = s.notices;
    if (missing.length === 0) {
      gapSince = undefined;
      if (w) {
        s.view.queue = { appliedSequence: w.appliedSequence, missing: [], ...(w.holder ? { holder: w.holder } : {}) };
        const ahead = w.scheduledAhead.map(
          (x) => `${x.amendmentId} (sequence ${x.sequence}) is scheduled for ${x.effectiveAt}`,
        );
        const h = w.holder;
        const line = h
          ? `waiting for the turn of contract ${a.contractId} (at sequence ${w.appliedSequence}): amendment ${h.amendmentId} (sequence ${h.sequence}) holds it${h.since ? ` since ${h.since}` : ''}${h.reclaiming ? `, being taken back (${h.reclaiming.why})` : ''}`
          : `waiting for sequence ${a.sequence - 1} of contract ${a.contractId} to be applied (the contract is at sequence ${w.appliedSequence})`;
        setStatus(s, 'queued', `${line}${ahead.length ? `; ${ahead.join('; ')}` : ''}`);
      }
      await condition(() => stop() || s.notices !== seen);
      continue;
    }
    gapSince ??= Date.now();
    const deadline = gapSince + gapDeadlineSeconds * 1000;
    const gapText = `sequence ${missing.join(', ')} of contract ${a.contractId} has not arrived (the contract is at sequence ${w!.appliedSequence})`;
    s.view.queue = { appliedSequence: w!.appliedSequence, missing, gapDeadline: new Date(deadline).toISOString() };
    if (Date.now() >= deadline) {
      await line.withdraw();
      if (s.turn === undefined)
        return {
          ended: await finish(
            s,
            'invalid',
            `${gapText} by the gap deadline ${new Date(deadline).toISOString()}; amendment ${a.amendmentId} (sequence ${a.sequence}) cannot apply without it`,
          ),
        };
      // The turn came at the last moment; the withdraw released it, so ask again and wait plainly.
      s.turn = undefined;
      await line.enqueue();
      await condition(() => s.turn !== undefined);
      break;
    }
    setStatus(
      s,
      'queued',
      `${gapText}; this amendment ends invalid at ${new Date(deadline).toISOString()} unless it does`,
    );
    await condition(() => stop() || s.notices !== seen, deadline - Date.now());
  }
  if (s.turn === undefined) return { ended: await endCancelled(s, line) };
  delete s.view.queue;
  if (s.turn.kind === 'refused') return { ended: await finish(s, 'invalid', s.turn.reason) };
  return { turn: s.turn.applied };
}

async function planPhase(s: AmendmentState, a: Amendment, applied: AppliedStateView | null): Promise<PlannedAmendment> {
  s.setStatus('running', 'planning');
  setCurrentDetails(details(s.view));
  const plan = await planning.planAmendmentV2({ amendment: a, applied });
  s.showPlan(plan);
  upsertMemo({ rulesetHash: plan.rulesetHash, planHash: plan.planHash });
  // One history event for both: the status (now running) and the customer the plan names.
  upsertSearchAttributes([
    { key: SA.AmendmentStatus, value: s.view.status },
    { key: SA.CustomerId, value: plan.customerId },
  ]);
  return plan;
}

/** Approval where the plan asks for it (and always for an operator's reversal). Returns why it was refused, if it was. */
async function approvalPhase(
  s: AmendmentState,
  plan: PlannedAmendment,
  requestedAt: number,
): Promise<string | undefined> {
  const reasons = [...plan.approval.reasons];
  const reversal = s.view.rollback;
  // The rule id and the message are recorded (approval reasons, audit records): they keep the word rollback.
  if (reversal)
    reasons.push({
      ruleId: 'operator-rollback',
      message: `operator rollback of ${reversal.of} requested by ${reversal.requestedBy}: ${reversal.reason}`,
    });
  const needed = plan.approval.required || reversal !== undefined;
  const approval = new ApprovalState(plan.approvalPolicy, s.view.submittedBy, needed, reasons);
  s.startApproval(approval);
  if (!needed) return undefined;
  approval.start(requestedAt);
  setStatus(s, 'pending_approval', approval.waitingFor());
  // Notices to the configured webhooks: with the proofs, in runs with the patch (asked at the start).
  const notifier = s.proofs ? new ApprovalNotifier(s, approval) : undefined;
  s.notifier = notifier;
  notifier?.send('requested');
  const decided = (): boolean => approval.approved || approval.rejected;
  const wakeOn = (): boolean => decided() || s.unverified.length > 0;
  while (!decided()) {
    await verifyDecisions(s, plan);
    if (decided()) break;
    const w = await untilApprovalWakes(approval, wakeOn);
    if (w.woke) continue;
    const event = w.event;
    if (event?.kind === 'reminded') {
      // In history for the audit: the memo change (WorkflowPropertiesModified) and the details.
      upsertMemo({ approvalReminder: { count: approval.view.reminders.length, ...event.reminder } });
      log.info('approval reminder', { amendmentId: s.view.amendmentId, ...event.reminder });
      notifier?.send('reminded', approval.view.reminders.length);
    } else if (event?.kind === 'escalated') {
      upsertMemo({
        approvalEscalated: { at: event.at, to: approval.view.eligible, deadline: approval.view.deadline ?? null },
      });
      log.info('approval escalated', { amendmentId: s.view.amendmentId, at: event.at, to: approval.view.eligible });
      notifier?.send('escalated');
    } else if (event?.kind === 'expired') {
      upsertMemo({ approvalExpired: { at: event.at } });
      break;
    }
    setStatus(s, 'pending_approval', approval.waitingFor());
  }
  s.dropUnverified(
    `decided before this decision was verified (status ${approval.rejected ? 'rejected' : approval.expired ? 'expired' : 'approved'})`,
  );
  const v = approval.view;
  notifier?.send('decided', 1, decisionOf(approval));
  if (approval.expired) {
    const what =
      v.stage === 'escalated'
        ? `no decision by the escalation deadline ${v.deadline ?? ''}`
        : `no decision by the approval deadline ${v.deadline ?? ''}`;
    return `${what}: rejected by the approval policy (${v.approvals.length} approval${v.approvals.length === 1 ? '' : 's'} of ${v.needed} in time)`;
  }
  if (approval.rejected) return `rejected by ${v.rejection!.by}: ${v.rejection!.reason}`;
  return undefined;
}

/** How the approval ended, for the `decided` notice. */
function decisionOf(approval: ApprovalState): NonNullable<ApprovalNotice['decision']> {
  const v = approval.view;
  if (approval.expired) return { outcome: 'expired' };
  if (approval.rejected) return { outcome: 'rejected', by: v.rejection!.by, reason: v.rejection!.reason };
  return { outcome: 'approved', by: v.approvals.map((x) => x.by).join(', ') };
}

/** Each decision that came with a proof, verified by the worker in arrival order, then counted or ignored with why. */
async function verifyDecisions(s: AmendmentState, plan: PlannedAmendment): Promise<void> {
  const approval = s.approval!;
  while (s.unverified.length > 0 && !approval.approved && !approval.rejected && !approval.expired) {
    const u = s.unverified.shift()!;
    const r = await proofs.verifyApproval({
      token: u.token,
      amendmentId: s.view.amendmentId,
      planHash: plan.planHash,
      decision: u.kind,
      by: u.by,
      ...(u.text !== undefined ? { text: u.text } : {}),
    });
    s.onVerified(u, r);
    showStatus(s);
  }
}

/**
 * Each target's batches on the target's task queue, up to its lanes at once; targets at
 * once. After the first failure no further batch starts. Returns the failure (one line)
 * and the batches that ran, for compensation.
 */
async function provision(
  s: AmendmentState,
  a: Amendment,
  plan: PlannedAmendment,
  budget: number,
  p: Progress,
): Promise<{ failure?: string; dispatched: BatchSpec[] }> {
  setStatus(
    s,
    'running',
    `applying ${plan.operationsTotal} operation${plan.operationsTotal === 1 ? '' : 's'} on ${Object.keys(plan.lanes).length} target${Object.keys(plan.lanes).length === 1 ? '' : 's'}`,
  );
  let failure: string | undefined;
  const dispatched = p.dispatched;
  let cancelled: unknown;
  const cancelledOr = (err: unknown): boolean => {
    if (p.keeper && isCancellation(err)) cancelled ??= err;
    return cancelled !== undefined;
  };
  // A request that arrived while a batch ran (and finished it anyway): no further batch starts.
  const requested = (): boolean => p.keeper && CancellationScope.current().consideredCancelled;
  // Settled, not raced: on a cancellation request every lane first sees its batch end.
  await Promise.allSettled(
    byTarget(plan.batches).map(async (batches) => {
      let next = 0;
      const lane = async (): Promise<void> => {
        while (next < batches.length && failure === undefined && cancelled === undefined && !requested()) {
          const b = batches[next++]!;
          dispatched.push(b);
          try {
            const r = await batchActivities(b, 'apply', budget, p.keeper).applyBatch({
              amendmentId: a.amendmentId,
              contractId: a.contractId,
              planHash: plan.planHash,
              target: b.target,
              from: b.from,
              to: b.to,
              batch: b.batch,
              of: b.of,
              budgetSeconds: budget,
            });
            s.recordBatch(b, r);
            if (r.failure) failure ??= `${r.failure.description} failed: ${r.failure.message}`;
          } catch (err) {
            if (cancelledOr(err)) break;
            const f = failureInfo(err);
            s.recordBatchLost(b, f);
            failure ??= `${b.target}: batch ${b.batch} of ${b.of} could not run: ${f.message}`;
          }
          setCurrentDetails(details(s.view));
        }
      };
      await Promise.allSettled(
        Array.from({ length: Math.min(plan.lanes[batches[0]!.target] ?? 1, batches.length) }, lane),
      );
      for (const b of batches.slice(next)) s.recordSkipped(b);
    }),
  );
  if (cancelled === undefined && requested())
    cancelled = new CancelledFailure('cancellation requested while the batches ran');
  if (cancelled !== undefined) throw cancelled;
  return failure === undefined ? { dispatched } : { failure, dispatched };
}

/** Compensate every applied operation: per target, its batches newest first; targets at once. Returns what is left for an operator. */
async function compensate(
  s: AmendmentState,
  a: Amendment,
  plan: PlannedAmendment,
  dispatched: BatchSpec[],
  budget: number,
  failure: string,
): Promise<string[]> {
  setStatus(s, 'running', `compensating after ${failure}`);
  const left: string[] = [];
  await Promise.all(
    byTarget(dispatched).map(async (batches) => {
      for (const b of [...batches].reverse()) {
        try {
          const r = await batchActivities(b, 'compensate', budget).compensateBatch({
            amendmentId: a.amendmentId,
            contractId: a.contractId,
            planHash: plan.planHash,
            target: b.target,
            from: b.from,
            to: b.to,
            batch: b.batch,
            of: b.of,
            budgetSeconds: budget,
          });
          s.recordCompensation(b.target, r);
          for (const f of r.failed) left.push(`${f.description} (${f.message})`);
        } catch (err) {
          left.push(
            `${b.target}: the compensation of batch ${b.batch} of ${b.of} could not run (${failureInfo(err).message}): check operations ${b.from}-${b.to - 1} with amendctl status --operations`,
          );
        }
        setCurrentDetails(details(s.view));
      }
    }),
  );
  return left;
}

/**
 * The final status, recorded in the durable, hash-chained audit log. `release` (the contract's
 * turn, where it is held) goes out in the same workflow task as the record: one round trip.
 */
async function finish(
  s: AmendmentState,
  status: AmendmentStatus,
  reason: string,
  release?: () => Promise<void>,
  p?: Progress,
): Promise<AmendmentView> {
  if (p) p.finishing = { status, reason, ...(release ? { release } : {}) };
  setStatus(s, status, reason);
  s.view.finishedAt ??= new Date().toISOString();
  await Promise.all([auditLog.recordAudit(s.view), release?.()]);
  await s.notifier?.settled();
  return s.view;
}

// ---- helpers -------------------------------------------------------------------------

/** Status and reason; the search attribute is upserted only when the status itself changes (one history event each). */
function setStatus(s: AmendmentState, status: AmendmentStatus, reason?: string): void {
  if (s.setStatus(status, reason)) upsertSearchAttributes([{ key: SA.AmendmentStatus, value: status }]);
  setCurrentDetails(details(s.view));
}

/** After a handler changed the status in place. */
function showStatus(s: AmendmentState): void {
  setCurrentDetails(details(s.view));
}

function byTarget(batches: BatchSpec[]): BatchSpec[][] {
  const m = new Map<string, BatchSpec[]>();
  for (const b of batches) {
    const list = m.get(b.target) ?? [];
    list.push(b);
    m.set(b.target, list);
  }
  return [...m.values()];
}

/**
 * A batch activity on the target's task queue. Each operation retries within the budget
 * inside the activity; the activity's own retries cover a lost worker (heartbeat timeout),
 * and a retried batch resumes from the operation store.
 */
function batchActivities(
  b: BatchSpec,
  kind: 'apply' | 'compensate',
  budgetSeconds: number,
  waitOnCancel = false,
): Pick<AmendmentActivities, 'applyBatch' | 'compensateBatch'> {
  return proxyActivities<AmendmentActivities>({
    // Cancelled, the batch stops taking new operations and records what it did; the compensation waits for that.
    ...(waitOnCancel ? { cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED } : {}),
    taskQueue: b.taskQueue,
    summary: `${b.target}: ${kind === 'compensate' ? 'compensating ' : ''}batch ${b.batch} of ${b.of}: ${b.to - b.from} operation${b.to - b.from === 1 ? '' : 's'} for ${b.subjects} account${b.subjects === 1 ? '' : 's'}`,
    heartbeatTimeout: '30s',
    startToCloseTimeout: `${budgetSeconds + 1800}s`,
    scheduleToCloseTimeout: `${budgetSeconds * 2 + 3600}s`,
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
  });
}

function failureInfo(err: unknown): { type: string; message: string } {
  let e: unknown = err;
  if (e instanceof ActivityFailure && e.cause) e = e.cause;
  if (e instanceof ApplicationFailure) return { type: e.type ?? 'Error', message: e.message };
  if (e instanceof Error) return { type: e.name, message: e.message };
  return { type: 'Error', message: String(e) };
}

/** The UI's "current details": markdown an operator reads. */
function details(v: AmendmentView): string {
  const lines = [`**${v.status}**${v.reason ? `: ${v.reason}` : ''}`];
  if (v.operationsTotal) {
    const per = Object.entries(v.operationCounts ?? {}).map(
      ([t, c]) =>
        `${t}: ${Object.entries(c)
          .map(([o, n]) => `${n} ${o.replace('_', ' ')}`)
          .join(', ')}`,
    );
    lines.push(`operations: ${v.operationsTotal} planned; ${per.join('; ')}`);
  }
  if (v.approval?.required) {
    lines.push(
      `approvals: ${v.approval.approvals.map((a) => a.by).join(', ') || 'none yet'} (${v.approval.needed} needed${v.approval.stage === 'escalated' ? ', escalated' : ''}${v.approval.deadline ? `, deadline ${v.approval.deadline}` : ''})`,
    );
    const last = v.approval.reminders[v.approval.reminders.length - 1];
    if (last) lines.push(`reminder ${v.approval.reminders.length} at ${last.at}: ${last.waitingFor}`);
  }
  if (v.rollback)
    lines.push(`operator rollback of ${v.rollback.of}, requested by ${v.rollback.requestedBy}: ${v.rollback.reason}`);
  return lines.join('\n\n');
}
