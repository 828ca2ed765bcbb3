/**
 * One amendment, from document to access changes (`amendment-{amendmentId}`):
 *
 *   validate -> [scheduled until effectiveAt] -> queued for its turn -> plan (diff, rules)
 *   -> [pending_approval] -> running: per-target operations with retries
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
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import { AmendmentSchema, type Amendment } from '../domain/amendment';
import { formatPath } from '../domain/errors';
import type { ApplyResult, Operation } from '../domain/plan';
import { ApprovalState } from './approval';
import {
  type AmendmentActivities,
  type AmendmentStatus,
  type AmendmentView,
  type AmendmentWorkflowInput,
  ApproveSchema,
  approveSignal,
  contractWorkflowId,
  type OperationView,
  RejectSchema,
  rejectSignal,
  releaseSignal,
  SA,
  statusQuery,
  turnSignal,
  type TurnMessage,
} from './definitions';

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
  const lateDecisions = { ignore: (d: { by: string; at: string }, why: string) => early.push({ by: d.by, at: d.at, why }) };

  setHandler(statusQuery, () => view);
  setHandler(turnSignal, (t) => {
    turn ??= t;
  });
  setHandler(approveSignal, (input) => {
    const at = new Date().toISOString();
    const parsed = ApproveSchema.safeParse(input);
    if (!parsed.success) {
      approval?.ignore({ by: String((input as { by?: unknown })?.by ?? '?'), at }, `malformed approve signal: ${issuesText(parsed.error.issues)}`);
      return;
    }
    const d = { by: parsed.data.by, at, ...(parsed.data.comment ? { comment: parsed.data.comment } : {}) };
    if (!approval || view.status !== 'pending_approval') {
      (approval ?? lateDecisions).ignore(d, `no approval is pending (status ${view.status})`);
      return;
    }
    approval.approve(d);
    if (view.status === 'pending_approval' && !approval.approved) setStatus('pending_approval', approval.waitingFor());
  });
  setHandler(rejectSignal, (input) => {
    const at = new Date().toISOString();
    const parsed = RejectSchema.safeParse(input);
    if (!parsed.success) {
      approval?.ignore({ by: String((input as { by?: unknown })?.by ?? '?'), at }, `malformed reject signal: ${issuesText(parsed.error.issues)}`);
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

  // 1. Validate the document.
  const parsed = AmendmentSchema.safeParse(input?.amendment);
  if (!parsed.success) return finish('invalid', `invalid amendment: ${issuesText(parsed.error.issues)}`);
  const amendment: Amendment = parsed.data;
  if (amendment.reverses) view.reverses = amendment.reverses;
  const contractWf = contractWorkflowId(amendment.contractId);

  // 2. Effective date: nothing changes before it.
  if (amendment.effectiveAt) {
    const waitMs = Date.parse(amendment.effectiveAt) - Date.now();
    if (waitMs > 0) {
      setStatus('scheduled', `takes effect at ${amendment.effectiveAt}`);
      await condition(() => false, waitMs);
    }
  }

  // 3. Wait for the turn: the predecessor must be applied first.
  setStatus('queued', `waiting for the turn of sequence ${amendment.sequence} of contract ${amendment.contractId}`);
  await control.enqueueAmendment({ contractId: amendment.contractId, amendmentId: amendment.amendmentId, sequence: amendment.sequence, workflowId: info.workflowId });
  await condition(() => turn !== undefined);
  if (turn!.kind === 'refused') return finish('invalid', turn!.reason);
  const applied = turn!.applied;
  const release = async (after?: Amendment['contract']): Promise<void> => {
    await getExternalWorkflowHandle(contractWf).signal(releaseSignal, { amendmentId: amendment.amendmentId, ...(after ? { applied: after } : {}) });
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

  // 5. Approval, where the plan asks for it.
  approval = new ApprovalState(approvalPolicy, amendment.submittedBy, plan.approval.required, plan.approval.reasons);
  view.approval = approval.view;
  for (const e of early) approval.ignore({ by: e.by, at: e.at }, e.why);
  if (plan.approval.required) {
    setStatus('pending_approval', approval.waitingFor());
    await condition(() => approval!.approved || approval!.rejected);
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
    return finish('completed', `${done.filter((d) => d.result.outcome === 'applied').length} changed, ${done.filter((d) => d.result.outcome === 'unchanged').length} already so`);
  }

  // 7. Compensate every applied operation, newest first; every undo runs even if one fails.
  setStatus('running', `compensating after ${failure.op.description} failed: ${failure.message}`);
  const left: string[] = [];
  for (const d of [...done].reverse()) {
    if (d.result.outcome !== 'applied') continue;
    try {
      const r = await provisioning(`undo ${d.op.description}`, budget).compensateOperation({ op: d.op, result: d.result });
      d.view.compensation = { outcome: r.outcome, ...(r.detail ? { detail: r.detail } : {}), at: new Date().toISOString() };
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
    return finish('failed', `${failure.op.description} failed (${failure.message}) and ${left.length} undo${left.length === 1 ? '' : 's'} failed: ${left.join('; ')}`);
  }
  return finish('rolled_back', `${failure.op.description} failed: ${failure.message}; every applied operation was undone`);
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
  return { id: op.id, target: op.target, action: op.action, subject: op.subject, description: op.description, ruleIds: op.ruleIds, outcome: 'pending' };
}

function failureInfo(err: unknown): { type: string; message: string } {
  let e: unknown = err;
  if (e instanceof ActivityFailure && e.cause) e = e.cause;
  if (e instanceof ApplicationFailure) return { type: e.type ?? 'Error', message: e.message };
  if (e instanceof Error) return { type: e.name, message: e.message };
  return { type: 'Error', message: String(e) };
}

function issuesText(issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }>): string {
  return issues.map((i) => `${formatPath(i.path) || '(root)'}: ${i.message}`).join('; ');
}

/** The UI's "current details": markdown an operator reads. */
function details(v: AmendmentView): string {
  const lines = [`**${v.status}**${v.reason ? `: ${v.reason}` : ''}`];
  if (v.operations.length > 0) {
    const count = (o: OperationView['outcome']): number => v.operations.filter((x) => x.outcome === o).length;
    lines.push(`operations: ${v.operations.length} planned, ${count('applied')} applied, ${count('unchanged')} already so, ${count('failed')} failed, ${count('compensated')} undone`);
  }
  if (v.approval?.required) lines.push(`approvals: ${v.approval.approvals.map((a) => a.by).join(', ') || 'none yet'} (${v.approval.needed} needed)`);
  return lines.join('\n\n');
}
