/**
 * FROZEN: the workflow type `amendmentWorkflow` of the first release, kept unchanged so that
 * amendments started on it finish on the code they started with (new amendments start
 * `amendmentV2`, src/workflows/amendment.ts). Do not edit: its captured histories in
 * test/replay/histories must keep replaying. It is removed once none runs any more.
 *
 * One amendment, from document to access changes (`amendment-{amendmentId}`):
 *
 *   validate -> [scheduled until effectiveAt; a cancel signal or a later amendment for the
 *   same sequence ends it `rejected`] -> queued for its turn (a gap in the sequence is
 *   reported, and ends it `invalid` after the ordering policy's deadline) -> plan (diff, rules)
 *   -> [pending_approval: N of M, separation of duties, reminders, a deadline that rejects or
 *   escalates] -> running: per-target operations with retries
 *   -> completed | on a permanent failure: compensate every applied operation in reverse
 *   order -> rolled_back (or failed, naming what is left for an operator).
 *
 * Business outcomes are results, not workflow failures: the workflow returns its view
 * in every final status.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  getExternalWorkflowHandle,
  log,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import { AmendmentSchema, type Amendment } from '../../domain/amendment';
import { formatPath } from '../../domain/errors';
import type { ApplyResult, Operation } from '../../domain/plan';
import { ApprovalState } from '../approval';
import {
  type AmendmentActivities,
  type AmendmentStatus,
  type AmendmentView,
  type AmendmentWorkflowInput,
  ApproveSchema,
  approveSignal,
  approveUpdate,
  type ApproveUpdateResult,
  CancelSchema,
  cancelSignal,
  type ContractNotice,
  contractWorkflowId,
  type Decision,
  noticeSignal,
  type OperationView,
  RejectSchema,
  rejectSignal,
  releaseSignal,
  SA,
  statusQuery,
  turnSignal,
  type TurnMessage,
  withdrawSignal,
} from '../definitions';

const DEFAULT_RETRY_BUDGET_S = 300;

/** The durable audit log (issue 6): retried until the store takes the record, so no final status goes unrecorded. */
const auditLog = proxyActivities<Pick<AmendmentActivities, 'recordAudit'>>({
  summary: 'append the audit record to the durable audit log',
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '60s' },
});

const control = proxyActivities<AmendmentActivities>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '20s' },
});

export async function amendmentWorkflow(input: AmendmentWorkflowInput): Promise<AmendmentView> {
  const info = workflowInfo();
  const raw = (input?.amendment ?? {}) as Partial<Record<string, unknown>>;
  const view: AmendmentView = {
    amendmentId: typeof raw.amendmentId === 'string' ? raw.amendmentId : info.workflowId,
    contractId: typeof raw.contractId === 'string' ? raw.contractId : '',
    sequence: typeof raw.sequence === 'number' ? raw.sequence : 0,
    workflowId: info.workflowId,
    submittedBy: typeof raw.submittedBy === 'string' ? raw.submittedBy : '',
    status: 'queued',
    changes: [],
    violations: [],
    operations: [],
    submittedAt: new Date(info.startTime).toISOString(),
  };
  // eslint-disable-next-line prefer-const -- the signal handlers read it before the plan assigns it
  let approval: ApprovalState | undefined;
  let turn: TurnMessage | undefined;

  const setStatus = (status: AmendmentStatus, reason?: string): void => {
    view.status = status;
    if (reason === undefined) delete view.reason;
    else view.reason = reason;
    upsertSearchAttributes([{ key: SA.AmendmentStatus, value: status }]);
    setCurrentDetails(details(view));
  };

  // Signals before a plan exists are recorded here and shown once the approval view exists.
  const early: Array<{ by: string; at: string; why: string }> = [];
  const lateDecisions = {
    ignore: (d: { by: string; at: string }, why: string) => early.push({ by: d.by, at: d.at, why }),
  };
  let cancelled: { by: string; at: string; reason: string } | undefined;
  let superseded: { by: string; reason: string } | undefined;
  let waiting: Extract<ContractNotice, { kind: 'waiting' }> | undefined;
  let notices = 0;
  let contractWf = '';
  const ignoreSignal = (signal: string, by: string, at: string, why: string): void => {
    (view.ignoredSignals ??= []).push({ signal, by, at, why });
  };

  setHandler(statusQuery, () => view);
  setHandler(turnSignal, (t) => {
    turn ??= t;
  });
  setHandler(noticeSignal, (n) => {
    if (n.kind === 'superseded') superseded ??= { by: n.by, reason: n.reason };
    else waiting = n;
    notices++;
  });
  setHandler(cancelSignal, (input) => {
    const at = new Date().toISOString();
    const parsed = CancelSchema.safeParse(input);
    const by = parsed.success ? parsed.data.by : String((input as { by?: unknown })?.by ?? '?');
    if (!parsed.success)
      return ignoreSignal('cancel', by, at, `malformed cancel signal: ${issuesText(parsed.error.issues)}`);
    // Only before it takes effect: once it holds its turn, reject (pending approval) is the way to stop it.
    if ((view.status !== 'scheduled' && view.status !== 'queued') || turn !== undefined || cancelled) {
      return ignoreSignal(
        'cancel',
        by,
        at,
        `too late to cancel: the amendment is ${view.status}${view.status === 'pending_approval' ? ' (use reject)' : ''}`,
      );
    }
    cancelled = { by, at, reason: parsed.data.reason };
  });
  setHandler(approveSignal, (input) => {
    const at = new Date().toISOString();
    const parsed = ApproveSchema.safeParse(input);
    if (!parsed.success) {
      (approval ?? lateDecisions).ignore(
        { by: String((input as { by?: unknown })?.by ?? '?'), at },
        `malformed approve signal: ${issuesText(parsed.error.issues)}`,
      );
      return;
    }
    const d = decision(parsed.data, at);
    if (!approval || view.status !== 'pending_approval') {
      (approval ?? lateDecisions).ignore(d, `no approval is pending (status ${view.status})`);
      return;
    }
    approval.approve(d);
    if (view.status === 'pending_approval' && !approval.approved) setStatus('pending_approval', approval.waitingFor());
  });
  setHandler(
    approveUpdate,
    (input): ApproveUpdateResult => {
      const d = decision(ApproveSchema.parse(input), new Date().toISOString());
      approval!.approve(d);
      if (!approval!.approved) setStatus('pending_approval', approval!.waitingFor());
      const v = approval!.view;
      return {
        amendmentId: view.amendmentId,
        approved: approval!.approved,
        stillNeeded: v.stillNeeded,
        approvals: v.approvals,
        eligible: v.eligible,
        ...(v.deadline ? { deadline: v.deadline } : {}),
      };
    },
    {
      // Refused here, nothing is written to history: the caller gets the reason at once.
      validator: (input) => {
        const parsed = ApproveSchema.safeParse(input);
        if (!parsed.success)
          throw ApplicationFailure.create({
            message: `malformed approval: ${issuesText(parsed.error.issues)}`,
            type: 'InvalidApproval',
            nonRetryable: true,
          });
        if (!approval || view.status !== 'pending_approval' || approval.approved || approval.rejected) {
          throw ApplicationFailure.create({
            message: `${view.amendmentId} is not pending approval (status ${view.status}${view.reason ? `: ${view.reason}` : ''})`,
            type: 'NotPendingApproval',
            nonRetryable: true,
          });
        }
        const why = approval.whyNot(parsed.data.by);
        if (why) throw ApplicationFailure.create({ message: why, type: 'ApproverNotAllowed', nonRetryable: true });
      },
    },
  );
  setHandler(rejectSignal, (input) => {
    const at = new Date().toISOString();
    const parsed = RejectSchema.safeParse(input);
    if (!parsed.success) {
      (approval ?? lateDecisions).ignore(
        { by: String((input as { by?: unknown })?.by ?? '?'), at },
        `malformed reject signal: ${issuesText(parsed.error.issues)}`,
      );
      return;
    }
    const d = { by: parsed.data.by, at, reason: parsed.data.reason };
    if (!approval || view.status !== 'pending_approval') {
      (approval ?? lateDecisions).ignore(d, `no approval is pending (status ${view.status})`);
      return;
    }
    approval.reject(d);
  });

  const finish = async (status: AmendmentStatus, reason?: string): Promise<AmendmentView> => {
    setStatus(status, reason);
    view.finishedAt = new Date().toISOString();
    await auditLog.recordAudit(view); // the durable, hash-chained audit log (issue 6), for every final status
    return view;
  };
  const withdraw = async (): Promise<void> => {
    await getExternalWorkflowHandle(contractWf).signal(withdrawSignal, { amendmentId: view.amendmentId });
  };
  const endCancelled = async (kind: 'cancelled' | 'superseded'): Promise<AmendmentView> => {
    if (kind === 'cancelled') {
      view.cancellation = { kind, ...cancelled! };
      await withdraw();
      return finish('rejected', `cancelled by ${cancelled!.by} before it took effect: ${cancelled!.reason}`);
    }
    view.cancellation = { kind, by: superseded!.by, at: new Date().toISOString(), reason: superseded!.reason };
    return finish('rejected', `superseded by amendment ${superseded!.by} before it took effect: ${superseded!.reason}`);
  };

  // 1. Validate the document.
  const parsed = AmendmentSchema.safeParse(input?.amendment);
  if (!parsed.success) return finish('invalid', `invalid amendment: ${issuesText(parsed.error.issues)}`);
  const amendment: Amendment = parsed.data;
  if (amendment.reverses) view.reverses = amendment.reverses;
  const rollback = input.options?.rollback;
  if (rollback && amendment.reverses)
    view.rollback = { of: amendment.reverses, requestedBy: rollback.requestedBy, reason: rollback.reason };
  contractWf = contractWorkflowId(amendment.contractId);
  const enqueue = (effectiveAt?: string): Promise<unknown> =>
    control.enqueueAmendment({
      contractId: amendment.contractId,
      amendmentId: amendment.amendmentId,
      sequence: amendment.sequence,
      workflowId: info.workflowId,
      ...(effectiveAt ? { effectiveAt } : {}),
    });

  // 2. Effective date: nothing changes before it. Registered with the contract meanwhile, so a
  //    later amendment for the same sequence supersedes it; a cancel signal ends it too.
  if (amendment.effectiveAt) {
    view.effectiveAt = amendment.effectiveAt;
    const waitMs = Date.parse(amendment.effectiveAt) - Date.now();
    if (waitMs > 0) {
      setStatus('scheduled', `takes effect at ${amendment.effectiveAt}`);
      await enqueue(amendment.effectiveAt);
      await condition(() => cancelled !== undefined || superseded !== undefined, waitMs);
      if (superseded) return endCancelled('superseded');
      if (cancelled) return endCancelled('cancelled');
    }
  }

  // 3. Wait for the turn: the predecessor must be applied first. A gap (an earlier sequence
  //    that never arrives) is reported, and after the ordering policy's deadline ends it invalid.
  setStatus('queued', `waiting for the turn of sequence ${amendment.sequence} of contract ${amendment.contractId}`);
  const { gapDeadlineSeconds } = await control.orderingPolicy();
  await enqueue();
  let gapSince: number | undefined;
  while (turn === undefined && !cancelled && !superseded) {
    const missing = waiting?.missing ?? [];
    const seen = notices;
    if (missing.length === 0) {
      gapSince = undefined;
      if (waiting) {
        delete view.queue;
        view.queue = { appliedSequence: waiting.appliedSequence, missing: [] };
        const ahead = waiting.scheduledAhead.map(
          (s) => `${s.amendmentId} (sequence ${s.sequence}) is scheduled for ${s.effectiveAt}`,
        );
        setStatus(
          'queued',
          `waiting for sequence ${amendment.sequence - 1} of contract ${amendment.contractId} to be applied (the contract is at sequence ${waiting.appliedSequence})${ahead.length ? `; ${ahead.join('; ')}` : ''}`,
        );
      }
      await condition(
        () => turn !== undefined || cancelled !== undefined || superseded !== undefined || notices !== seen,
      );
      continue;
    }
    gapSince ??= Date.now();
    const deadline = gapSince + gapDeadlineSeconds * 1000;
    const gapText = `sequence ${missing.join(', ')} of contract ${amendment.contractId} has not arrived (the contract is at sequence ${waiting!.appliedSequence})`;
    if (Date.now() >= deadline) {
      view.queue = {
        appliedSequence: waiting!.appliedSequence,
        missing,
        gapDeadline: new Date(deadline).toISOString(),
      };
      await withdraw();
      if (turn === undefined)
        return finish(
          'invalid',
          `${gapText} by the gap deadline ${new Date(deadline).toISOString()}; amendment ${amendment.amendmentId} (sequence ${amendment.sequence}) cannot apply without it`,
        );
      break; // the turn came at the last moment; the withdraw released it, so ask again
    }
    view.queue = { appliedSequence: waiting!.appliedSequence, missing, gapDeadline: new Date(deadline).toISOString() };
    setStatus(
      'queued',
      `${gapText}; this amendment ends invalid at ${new Date(deadline).toISOString()} unless it does`,
    );
    await condition(
      () => turn !== undefined || cancelled !== undefined || superseded !== undefined || notices !== seen,
      deadline - Date.now(),
    );
  }
  if (cancelled && turn === undefined) return endCancelled('cancelled');
  if (superseded && turn === undefined) return endCancelled('superseded');
  if (turn === undefined) {
    // Withdrawn at the gap deadline just as the turn arrived: enqueue again and wait plainly.
    await enqueue();
    await condition(() => turn !== undefined);
  }
  delete view.queue;
  if (turn!.kind === 'refused') return finish('invalid', turn!.reason);
  const applied = turn!.applied;
  const release = async (after?: Amendment['contract']): Promise<void> => {
    await getExternalWorkflowHandle(contractWf).signal(releaseSignal, {
      amendmentId: amendment.amendmentId,
      ...(after ? { applied: after } : {}),
    });
  };

  // 4. Plan: diff against the applied state, match rules, order operations.
  setStatus('running', 'planning');
  const { plan, approvalPolicy } = await control.planAmendment({ amendment, applied });
  view.changes = plan.changes;
  view.violations = plan.violations;
  view.rulesetHash = plan.rulesetHash;
  upsertMemo({ rulesetHash: plan.rulesetHash });
  view.customerId = plan.after.customer.id;
  upsertSearchAttributes([{ key: SA.CustomerId, value: plan.after.customer.id }]);
  view.operations = plan.operations.map(toView);
  if (plan.violations.length > 0) {
    await release();
    return finish('invalid', plan.violations.map((v) => v.message).join('; '));
  }

  // 5. Approval, where the plan asks for it, and always for an operator rollback.
  const reasons = [...plan.approval.reasons];
  if (view.rollback)
    reasons.push({
      ruleId: 'operator-rollback',
      message: `operator rollback of ${view.rollback.of} requested by ${view.rollback.requestedBy}: ${view.rollback.reason}`,
    });
  const needsApproval = plan.approval.required || view.rollback !== undefined;
  approval = new ApprovalState(approvalPolicy, amendment.submittedBy, needsApproval, reasons);
  view.approval = approval.view;
  for (const e of early) approval.ignore({ by: e.by, at: e.at }, e.why);
  if (needsApproval) {
    approval.start(Date.now());
    setStatus('pending_approval', approval.waitingFor());
    for (;;) {
      const decided = (): boolean => approval!.approved || approval!.rejected;
      if (decided()) break;
      const wake = approval.nextWakeMs();
      if (wake === undefined) {
        await condition(decided);
        break;
      }
      if (wake > Date.now() && (await condition(decided, wake - Date.now()))) break;
      const event = approval.tick(Date.now());
      if (event?.kind === 'reminded') {
        // In history for the audit: the memo change (WorkflowPropertiesModified) and the details.
        upsertMemo({ approvalReminder: { count: approval.view.reminders.length, ...event.reminder } });
        log.info('approval reminder', { amendmentId: view.amendmentId, ...event.reminder });
      } else if (event?.kind === 'escalated') {
        upsertMemo({
          approvalEscalated: { at: event.at, to: approval.view.eligible, deadline: approval.view.deadline ?? null },
        });
        log.info('approval escalated', { amendmentId: view.amendmentId, at: event.at, to: approval.view.eligible });
      } else if (event?.kind === 'expired') {
        upsertMemo({ approvalExpired: { at: event.at } });
        break;
      }
      setStatus('pending_approval', approval.waitingFor());
    }
    if (approval.expired) {
      await release();
      const what =
        approval.view.stage === 'escalated'
          ? `no decision by the escalation deadline ${approval.view.deadline ?? ''}`
          : `no decision by the approval deadline ${approval.view.deadline ?? ''}`;
      return finish(
        'rejected',
        `${what}: rejected by the approval policy (${approval.view.approvals.length} approval${approval.view.approvals.length === 1 ? '' : 's'} of ${approval.view.needed} in time)`,
      );
    }
    if (approval.rejected) {
      await release();
      const r = approval.view.rejection!;
      return finish('rejected', `rejected by ${r.by}: ${r.reason}`);
    }
  }

  // 6. Provision: one lane per target, operations in plan order within a lane.
  setStatus('running', `applying ${plan.operations.length} operations`);
  const budget = input.options?.retryBudgetSeconds ?? DEFAULT_RETRY_BUDGET_S;
  const done: Array<{ op: Operation; view: OperationView; result: ApplyResult }> = [];
  let failure: { op: Operation; type: string; message: string } | undefined;
  const lanes = new Map<string, Array<[Operation, OperationView]>>();
  plan.operations.forEach((op, i) => {
    const lane = lanes.get(op.target) ?? [];
    lane.push([op, view.operations[i]!]);
    lanes.set(op.target, lane);
  });
  await Promise.all(
    [...lanes.values()].map(async (lane) => {
      for (const [op, ov] of lane) {
        if (failure) {
          ov.outcome = 'skipped';
          continue;
        }
        ov.outcome = 'running';
        ov.startedAt = new Date().toISOString();
        try {
          const result = await provisioning(op.description, budget).applyOperation(op);
          ov.outcome = result.outcome;
          ov.attempts = result.attempt;
          if (result.detail) ov.detail = result.detail;
          done.push({ op, view: ov, result });
        } catch (err) {
          const f = failureInfo(err);
          ov.outcome = 'failed';
          ov.error = f;
          failure ??= { op, ...f };
        } finally {
          ov.finishedAt = new Date().toISOString();
          setCurrentDetails(details(view));
        }
      }
    }),
  );

  if (!failure) {
    await release(plan.after);
    return finish(
      'completed',
      `${done.filter((d) => d.result.outcome === 'applied').length} changed, ${done.filter((d) => d.result.outcome === 'unchanged').length} already so`,
    );
  }

  // 7. Compensate every applied operation, newest first; every undo runs even if one fails.
  setStatus('running', `compensating after ${failure.op.description} failed: ${failure.message}`);
  const left: string[] = [];
  for (const d of [...done].reverse()) {
    if (d.result.outcome !== 'applied') continue;
    try {
      const r = await provisioning(`undo ${d.op.description}`, budget).compensateOperation({
        op: d.op,
        result: d.result,
      });
      d.view.compensation = {
        outcome: r.outcome,
        ...(r.detail ? { detail: r.detail } : {}),
        at: new Date().toISOString(),
      };
      d.view.outcome = 'compensated';
    } catch (err) {
      const f = failureInfo(err);
      d.view.compensation = { outcome: 'failed', detail: f.message, at: new Date().toISOString() };
      d.view.outcome = 'compensation_failed';
      left.push(`${d.op.description} (${f.message})`);
    }
  }
  await release();
  if (left.length > 0) {
    view.leftForOperator = left;
    return finish(
      'failed',
      `${failure.op.description} failed (${failure.message}) and ${left.length} undo${left.length === 1 ? '' : 's'} failed: ${left.join('; ')}`,
    );
  }
  return finish(
    'rolled_back',
    `${failure.op.description} failed: ${failure.message}; every applied operation was undone`,
  );
}

/** Activity options per operation: the summary names the change, the budget bounds the retries. */
function provisioning(summary: string, budgetSeconds: number): AmendmentActivities {
  const options: ActivityOptions = {
    summary,
    startToCloseTimeout: '30s',
    scheduleToCloseTimeout: `${budgetSeconds}s`,
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
  };
  return proxyActivities<AmendmentActivities>(options);
}

function toView(op: Operation): OperationView {
  return {
    id: op.id,
    target: op.target,
    action: op.action,
    subject: op.subject,
    description: op.description,
    ruleIds: op.ruleIds,
    outcome: 'pending',
  };
}

function failureInfo(err: unknown): { type: string; message: string } {
  let e: unknown = err;
  if (e instanceof ActivityFailure && e.cause) e = e.cause;
  if (e instanceof ApplicationFailure) return { type: e.type ?? 'Error', message: e.message };
  if (e instanceof Error) return { type: e.name, message: e.message };
  return { type: 'Error', message: String(e) };
}

function decision(d: { by: string; comment?: string | undefined }, at: string): Decision {
  return { by: d.by, at, ...(d.comment ? { comment: d.comment } : {}) };
}

function issuesText(issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }>): string {
  return issues.map((i) => `${formatPath(i.path) || '(root)'}: ${i.message}`).join('; ');
}

/** The UI's "current details": markdown an operator reads. */
function details(v: AmendmentView): string {
  const lines = [`**${v.status}**${v.reason ? `: ${v.reason}` : ''}`];
  if (v.operations.length > 0) {
    const count = (o: OperationView['outcome']): number => v.operations.filter((x) => x.outcome === o).length;
    lines.push(
      `operations: ${v.operations.length} planned, ${count('applied')} applied, ${count('unchanged')} already so, ${count('failed')} failed, ${count('compensated')} undone`,
    );
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
