/**
 * Reconciliation (`reconcileWorkflow`): started by a Temporal Schedule (`amendctl reconcile
 * schedule`, `amendctl dev`) or by hand (`amendctl reconcile run`), for one contract or every
 * contract on the task queue.
 *
 * One contract:
 *   check [activity: read the targets, compare with the applied contract under the rules; the
 *         repairs of targets whose policy repairs go to the operation store, the workflow keeps
 *         the claim check: counts, the first differences and operations, the batches]
 *   -> report only (policy `report`, or an amendment holds the contract's turn)
 *   -> approval (policy `approve`, or more deactivations than the mass-change guard allows)
 *   -> repair [the amendment's batch activities on each target's task queue: the same
 *      operations, retries, shares and compensation] -> repaired | rolled_back | failed
 *   -> the audit record (kind `reconciliation`: what was found, what was repaired).
 * Search attributes `DriftStatus` and `DriftCount` (with `ContractId`) find contracts with drift.
 *
 * Every contract: each contract a child reconciliation, `concurrency` at once, a page of them
 * per run (continue-as-new with the next offset), so history stays bounded whatever their number.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  continueAsNew,
  executeChild,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { ApprovalState } from './approval';
import { proofs, proofView, untilApprovalWakes } from './proofs';
import { NO_PROOF, UNVERIFIED_KEPT } from './state';
import {
  type AmendmentActivities,
  type ApprovalPolicy,
  approveSignal,
  type BatchSpec,
  type OperationOutcome,
  rejectSignal,
  SA,
} from './definitions';
import {
  DRIFT_SA,
  type ReconcileActivities,
  type ReconcileAllView,
  type ReconcileInput,
  ReconcileInputSchema,
  type ReconcileOptions,
  reconcileStatusQuery,
  type ReconcileStatus,
  type ReconcileView,
} from './reconcile-definitions';

const checking = proxyActivities<Pick<ReconcileActivities, 'checkDrift' | 'listContracts'>>({
  startToCloseTimeout: '30m',
  heartbeatTimeout: '2m',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '60s', maximumAttempts: 5 },
});
const auditLog = proxyLocalActivities<Pick<ReconcileActivities, 'recordReconciliation'>>({
  startToCloseTimeout: '5m',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '60s' },
});

/** Contracts per run of an every-contract reconciliation (then continue-as-new). */
const CONTRACTS_PER_RUN = 100;
const SUBMITTER = 'amendctl-reconciliation';

export async function reconcileWorkflow(input: ReconcileInput = {}): Promise<ReconcileView | ReconcileAllView> {
  const parsed = ReconcileInputSchema.safeParse(input ?? {});
  if (!parsed.success) {
    throw ApplicationFailure.nonRetryable(
      `invalid reconciliation input: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
      'InvalidInput',
    );
  }
  const o = parsed.data;
  if (o.everySeconds !== undefined) return reconcileLoop(o, o.everySeconds);
  return o.contractId ? reconcileOne(o, o.contractId) : reconcileAll(o);
}

/** Rounds per run of a loop (then continue-as-new): history stays a few hundred events. */
const ROUNDS_PER_RUN = 50;

/** Loop mode: a reconciliation (a child: one contract, or every contract) now and every `every` seconds. */
async function reconcileLoop(o: ReconcileOptions, every: number): Promise<ReconcileAllView> {
  const info = workflowInfo();
  const view: ReconcileAllView = {
    workflowId: info.workflowId,
    contracts: 0,
    byStatus: {},
    withDrift: [],
    startedAt: new Date(info.startTime).toISOString(),
  };
  const { everySeconds: _every, round: _round, rounds, ...once } = o;
  let round = o.round;
  for (let i = 0; i < ROUNDS_PER_RUN; i++) {
    if (rounds !== undefined && round >= rounds) break;
    round++;
    let status: ReconcileStatus | 'error';
    try {
      const r = await executeChild(reconcileWorkflow, {
        workflowId: `${info.workflowId}/round-${round}`,
        args: [once],
        staticSummary: `Reconciliation round ${round}`,
      });
      status = 'reconciliationId' in r ? r.status : r.withDrift.length > 0 ? 'reported' : 'no_drift';
    } catch {
      status = 'error';
    }
    view.contracts++;
    view.byStatus[status] = (view.byStatus[status] ?? 0) + 1;
    setCurrentDetails(`**round ${round}**: ${status}; next in ${every} s`);
    if (rounds !== undefined && round >= rounds) break;
    await sleep(every * 1000);
  }
  if (rounds === undefined || round < rounds) await continueAsNew<typeof reconcileWorkflow>({ ...o, round });
  view.finishedAt = new Date().toISOString();
  return view;
}

async function reconcileAll(o: ReconcileOptions): Promise<ReconcileAllView> {
  const info = workflowInfo();
  const view: ReconcileAllView = {
    workflowId: info.workflowId,
    contracts: 0,
    byStatus: {},
    withDrift: [],
    startedAt: new Date(info.startTime).toISOString(),
  };
  const { contractIds, more } = await checking.listContracts({ offset: o.offset, limit: CONTRACTS_PER_RUN });
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < contractIds.length) {
      const contractId = contractIds[next++]!;
      let status: ReconcileStatus | 'error';
      try {
        const r = (await executeChild(reconcileWorkflow, {
          workflowId: `${info.workflowId}/${contractId}`,
          args: [{ ...o, contractId, offset: 0 }],
          staticSummary: `Reconciles contract ${contractId}`,
        })) as ReconcileView;
        status = r.status;
      } catch {
        status = 'error';
      }
      view.contracts++;
      view.byStatus[status] = (view.byStatus[status] ?? 0) + 1;
      if (
        ['reported', 'pending_approval', 'failed', 'rolled_back', 'error'].includes(status) &&
        view.withDrift.length < 100
      )
        view.withDrift.push(contractId);
      setCurrentDetails(
        `**${view.contracts} of ${contractIds.length}** contracts reconciled (from ${o.offset}): ${Object.entries(
          view.byStatus,
        )
          .map(([s, n]) => `${n} ${s}`)
          .join(', ')}`,
      );
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.concurrency, contractIds.length) }, lane));
  if (more) await continueAsNew<typeof reconcileWorkflow>({ ...o, offset: o.offset + contractIds.length });
  view.finishedAt = new Date().toISOString();
  return view;
}

async function reconcileOne(o: ReconcileOptions, contractId: string): Promise<ReconcileView> {
  const info = workflowInfo();
  const reconciliationId = `${info.workflowId}.${info.runId.slice(0, 8)}`;
  const view: ReconcileView = {
    reconciliationId,
    contractId,
    workflowId: info.workflowId,
    status: 'checking',
    startedAt: new Date(info.startTime).toISOString(),
    policy: o.policy,
    targetPolicies: o.targets,
  };
  let approval: ApprovalState | undefined;
  setHandler(reconcileStatusQuery, () => view);
  const now = (): string => new Date().toISOString();
  // Anyone with Temporal access can signal: a payload of the wrong shape or size is recorded and ignored, never thrown on.
  // A decision counts only with a proof of who made it (issue 12), verified by the worker, once per token.
  const who = (x: unknown): string =>
    x !== null && typeof x === 'object' && typeof (x as { by?: unknown }).by === 'string'
      ? (x as { by: string }).by.trim().slice(0, 256)
      : '';
  const field = (x: unknown, name: string): string | undefined => {
    const v = x !== null && typeof x === 'object' ? (x as Record<string, unknown>)[name] : undefined;
    return typeof v === 'string' ? v : undefined;
  };
  const unverified: Array<{ kind: 'approve' | 'reject'; by: string; at: string; text?: string; token: string }> = [];
  const used = new Set<string>();
  const receive = (kind: 'approve' | 'reject', x: unknown): void => {
    if (!approval || approval.approved || approval.rejected) return;
    const by = who(x);
    const text = field(x, kind === 'approve' ? 'comment' : 'reason')?.slice(0, 2000);
    const token = field(x, 'proof');
    const d = {
      by: by || '?',
      at: now(),
      ...(kind === 'reject' ? { reason: text ?? '' } : text ? { comment: text } : {}),
    };
    const why = !by
      ? 'no approver ("by") given'
      : kind === 'reject' && !text?.trim()
        ? 'a reason is required'
        : !token
          ? NO_PROOF
          : unverified.length >= UNVERIFIED_KEPT
            ? `more than ${UNVERIFIED_KEPT} decisions are waiting to be verified`
            : undefined;
    if (why) return approval.ignore(d, why);
    unverified.push({ kind, by, at: d.at, ...(text !== undefined ? { text } : {}), token: token! });
  };
  setHandler(approveSignal, (x) => receive('approve', x));
  setHandler(rejectSignal, (x) => receive('reject', x));
  /** Each queued decision verified in arrival order, then counted under the policy or ignored with why. */
  const verifyDecisions = async (planHash: string): Promise<void> => {
    while (unverified.length > 0 && approval && !approval.approved && !approval.rejected && !approval.expired) {
      const u = unverified.shift()!;
      const r = await proofs.verifyApproval({
        token: u.token,
        amendmentId: reconciliationId,
        planHash,
        decision: u.kind,
        by: u.by,
        ...(u.text !== undefined ? { text: u.text } : {}),
      });
      const base = { by: u.by, at: u.at, ...(u.kind === 'approve' && u.text ? { comment: u.text } : {}) };
      if (!r.ok) approval.ignore(u.kind === 'reject' ? { ...base, reason: u.text ?? '' } : base, r.why);
      else if (used.has(r.tokenId)) approval.ignore(base, 'this proof was already used (a token counts once)');
      else {
        used.add(r.tokenId);
        const proven = { ...base, proof: proofView(r) };
        if (u.kind === 'approve') approval.approve(proven, true);
        else approval.reject({ ...proven, reason: u.text ?? '' }, true);
      }
    }
  };
  upsertSearchAttributes([{ key: SA.ContractId, value: contractId }]);

  let summary;
  try {
    summary = await checking.checkDrift({ contractId, reconciliationId, policy: o.policy, targets: o.targets });
  } catch (err) {
    return finish(view, 'failed', `the check failed: ${failureMessage(err)}`, 0);
  }
  const { repair, approvalPolicy, ...found } = summary;
  view.found = found;
  const notChecked = found.targets.filter((t) => !t.checked);
  const what = foundText(found.total, found.counts);
  const notCheckedText =
    notChecked.length > 0 ? `; ${notChecked.map((t) => `${t.target} ${t.why ?? 'not checked'}`).join('; ')}` : '';
  if (found.total === 0)
    return finish(
      view,
      notChecked.length === found.targets.length && notChecked.length > 0 ? 'not_checked' : 'no_drift',
      `no drift${notCheckedText}`,
      0,
    );
  setDrift(view, 'reported', found.total);
  if (!repair) return finish(view, 'reported', `${what}; reported only (policy report)${notCheckedText}`, found.total);
  if (found.busy)
    return finish(
      view,
      'reported',
      `${what}; not repaired now: ${found.busy} (the next reconciliation repairs what is still wrong)`,
      found.total,
    );

  view.repair = {
    planHash: repair.planHash,
    operationsTotal: repair.operationsTotal,
    operations: repair.operations,
    operationCounts: {},
  };
  if (repair.approvalReasons.length > 0) {
    approval = new ApprovalState(
      withDeadline(approvalPolicy, o.approvalDeadlineSeconds),
      SUBMITTER,
      true,
      repair.approvalReasons,
    );
    view.repair.approval = approval.view;
    approval.start(Date.now());
    setStatus(
      view,
      'pending_approval',
      `${what}; the repair of ${repair.operationsTotal} operation${repair.operationsTotal === 1 ? '' : 's'} waits for approval: ${repair.approvalReasons.map((r) => r.message).join('; ')}`,
    );
    setDrift(view, 'pending_approval', found.total);
    const decided = (): boolean => approval!.approved || approval!.rejected;
    const wakeOn = (): boolean => decided() || unverified.length > 0;
    while (!decided()) {
      await verifyDecisions(repair.planHash);
      if (decided()) break;
      if ((await untilApprovalWakes(approval, wakeOn)).woke) continue;
      if (approval.expired) break;
    }
    for (const u of unverified.splice(0))
      approval.ignore({ by: u.by, at: u.at }, 'decided before this decision was verified');
    view.repair.approval = approval.view;
    if (!approval.approved) {
      const why = approval.rejected
        ? `rejected by ${approval.view.rejection!.by}: ${approval.view.rejection!.reason}`
        : 'no approval by the deadline';
      return finish(view, 'reported', `${what}; not repaired: ${why}`, found.total);
    }
  }

  setStatus(
    view,
    'repairing',
    `${what}; repairing with ${repair.operationsTotal} operation${repair.operationsTotal === 1 ? '' : 's'}`,
  );
  setDrift(view, 'repairing', found.total);
  const counts = view.repair.operationCounts;
  const count = (target: string, outcome: OperationOutcome, n = 1): void => {
    const c = (counts[target] ??= {});
    c[outcome] = (c[outcome] ?? 0) + n;
  };
  const byIdx = new Map(repair.operations.map((op, i) => [i, op]));
  let failure: string | undefined;
  const dispatched: BatchSpec[] = [];
  const input = (b: BatchSpec) => ({
    amendmentId: reconciliationId,
    contractId,
    planHash: repair.planHash,
    target: b.target,
    from: b.from,
    to: b.to,
    batch: b.batch,
    of: b.of,
    budgetSeconds: o.retryBudgetSeconds,
  });
  await Promise.all(
    byTarget(repair.batches).map(async (batches) => {
      let next = 0;
      const lane = async (): Promise<void> => {
        while (next < batches.length && failure === undefined) {
          const b = batches[next++]!;
          dispatched.push(b);
          try {
            const r = await batchActivities(b, o.retryBudgetSeconds).applyBatch(input(b));
            for (const [idx, outcome, attempts] of r.operations) {
              count(b.target, outcome);
              const shown = byIdx.get(idx);
              if (shown) Object.assign(shown, { outcome, attempts });
            }
            if (r.failure) failure ??= `${r.failure.description} failed: ${r.failure.message}`;
          } catch (err) {
            failure ??= `${b.target}: batch ${b.batch} of ${b.of} could not run: ${failureMessage(err)}`;
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(repair.lanes[batches[0]!.target] ?? 1, batches.length) }, lane));
    }),
  );
  if (failure === undefined) {
    const applied = Object.values(counts).reduce((n, c) => n + (c.applied ?? 0), 0);
    return finish(
      view,
      'repaired',
      `${what}; repaired: ${applied} changed, ${repair.operationsTotal - applied} already so`,
      0,
    );
  }

  // The same compensation as an amendment's: every applied repair compensated, newest first.
  view.repair.failure = failure;
  const left: string[] = [];
  for (const b of [...dispatched].reverse()) {
    try {
      const r = await batchActivities(b, o.retryBudgetSeconds, 'compensate').compensateBatch(input(b));
      for (const [, outcome] of r.operations)
        count(b.target, outcome === 'failed' ? 'compensation_failed' : 'compensated');
      for (const f of r.failed) left.push(`${f.description} (${f.message})`);
    } catch (err) {
      left.push(`${b.target}: the compensation of batch ${b.batch} of ${b.of} could not run (${failureMessage(err)})`);
    }
  }
  if (left.length > 0) {
    view.repair.leftForOperator = left.slice(0, 50);
    return finish(
      view,
      'failed',
      `${what}; the repair failed (${failure}) and ${left.length} compensation${left.length === 1 ? '' : 's'} failed`,
      found.total,
    );
  }
  return finish(
    view,
    'rolled_back',
    `${what}; the repair failed (${failure}); every applied repair was compensated`,
    found.total,
  );
}

/** Without a deadline in the approval policy, a repair waits `seconds`, then is only reported (never escalated forever). */
function withDeadline(p: ApprovalPolicy, seconds: number): ApprovalPolicy {
  return p.deadlineSeconds !== undefined ? p : { ...p, deadlineSeconds: seconds, onDeadline: 'reject' };
}

function foundText(total: number, counts: Record<string, Partial<Record<string, number>>>): string {
  const per = Object.entries(counts).map(
    ([t, c]) =>
      `${t}: ${Object.entries(c)
        .map(([k, n]) => `${n} ${k.replace(/_/g, ' ')}`)
        .join(', ')}`,
  );
  return `${total} difference${total === 1 ? '' : 's'} (${per.join('; ')})`;
}

function setStatus(view: ReconcileView, status: ReconcileStatus, reason: string): void {
  view.status = status;
  view.reason = reason;
  setCurrentDetails(`**${status}**: ${reason}`);
}

/** DriftStatus and DriftCount, where the check found them registered on the namespace. */
function setDrift(view: ReconcileView, status: ReconcileStatus, count: number): void {
  if (view.found?.searchAttributes !== true) return;
  upsertSearchAttributes([
    { key: DRIFT_SA.DriftStatus, value: status },
    { key: DRIFT_SA.DriftCount, value: count },
  ]);
}

/** The final status, its search attributes (`left`: the drift still there), and the audit record. */
async function finish(
  view: ReconcileView,
  status: ReconcileStatus,
  reason: string,
  left: number,
): Promise<ReconcileView> {
  setStatus(view, status, reason);
  setDrift(view, status, left);
  view.finishedAt = new Date().toISOString();
  await auditLog.recordReconciliation(view);
  return view;
}

function byTarget(batches: BatchSpec[]): BatchSpec[][] {
  const m = new Map<string, BatchSpec[]>();
  for (const b of batches) m.set(b.target, [...(m.get(b.target) ?? []), b]);
  return [...m.values()];
}

/** The amendment's batch activities on the target's task queue (the same retries, shares and compensation). */
function batchActivities(
  b: BatchSpec,
  budgetSeconds: number,
  kind: 'apply' | 'compensate' = 'apply',
): Pick<AmendmentActivities, 'applyBatch' | 'compensateBatch'> {
  return proxyActivities<AmendmentActivities>({
    taskQueue: b.taskQueue,
    summary: `${b.target}: ${kind === 'compensate' ? 'compensating ' : ''}repair batch ${b.batch} of ${b.of}: ${b.to - b.from} operation${b.to - b.from === 1 ? '' : 's'} for ${b.subjects} account${b.subjects === 1 ? '' : 's'}`,
    heartbeatTimeout: '30s',
    startToCloseTimeout: `${budgetSeconds + 1800}s`,
    scheduleToCloseTimeout: `${budgetSeconds * 2 + 3600}s`,
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
  });
}

function failureMessage(err: unknown): string {
  let e: unknown = err;
  if (e instanceof ActivityFailure && e.cause) e = e.cause;
  return e instanceof Error ? e.message : String(e);
}
