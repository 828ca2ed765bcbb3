/**
 * Drift, the worker side: read what a contract's targets hold (read-only connector calls,
 * paged), compare it with what the applied contract and the rules say (src/domain/drift.ts),
 * and for the reconciliation workflow store the repairs in the operation store (the claim
 * check, as an amendment's plan), so they run as batches with the amendment's retries,
 * shares, compensation and audit.
 *
 * `checkContractDrift` is also what `amendctl drift` runs, in the CLI process.
 */
import { createHash } from 'node:crypto';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { type Client, WorkflowNotFoundError } from '@temporalio/client';
import { opFromStored, recordFromView } from '../audit/record';
import { AuditStore } from '../audit/store';
import { driftFoundTotal, driftRepairedTotal } from '../observability/metrics';
import type { ConnectorRegistry } from '../connectors/registry';
import type { StateQuery } from '../connectors/types';
import {
  type ActualState,
  compareTarget,
  countDifferences,
  type DesiredState,
  desiredState,
  type Difference,
  DriftError,
  governedSubjects,
  repairOperations,
} from '../domain/drift';
import { DEFAULT_MASS_CHANGE_GUARD, type MassChangeGuard, massChangeReason } from '../domain/guard';
import { canonicalJson } from '../domain/json';
import type { ApprovalReason } from '../domain/plan';
import type { Ruleset } from '../domain/rules';
import { heldByOthers } from '../store/drift-shares';
import type { OperationStore } from '../store/operations';
import type { ShareKey, ShareStore } from '../store/shares';
import {
  appliedStateQuery,
  type AppliedStateView,
  type ApprovalPolicy,
  contractQuery,
  type ContractView,
  contractWorkflowId,
  SHOWN_OPERATIONS,
} from '../workflows/definitions';
import {
  DRIFT_SEARCH_ATTRIBUTES,
  type DriftCheckBase,
  type DriftSummary,
  policyFor,
  type ReconcileActivities,
  type ReconcilePolicy,
  type ReconcileView,
  SHOWN_DIFFERENCES,
  type TargetCheck,
} from '../workflows/reconcile-definitions';
import { makeBatches, provisioningOrder } from './provisioning';
import { OWNER_ATTRIBUTES } from './shares';

export interface DriftDeps {
  registry: ConnectorRegistry;
  ruleset: () => Ruleset;
  client: Client;
  /** Which contracts share accounts; absent: every difference counts (no shares configured). */
  shares?: () => ShareStore;
}

/** A contract's drift, whole (the CLI prints it; the activity bounds it). */
export interface DriftReport extends DriftCheckBase {
  targets: Array<Omit<TargetCheck, 'policy'>>;
  desired: DesiredState;
  /** The applied contract the check compared with. */
  contract: AppliedStateView['contract'];
  durationMs: number;
}

export class NoContractError extends Error {
  override readonly name = 'NoContractError';
}

/** The applied state and the line of a contract, from its workflow. */
export async function readContract(
  client: Client,
  contractId: string,
): Promise<{ view: ContractView; applied: AppliedStateView | null }> {
  const h = client.workflow.getHandle(contractWorkflowId(contractId));
  try {
    return { view: await h.query(contractQuery), applied: await h.query(appliedStateQuery) };
  } catch (err) {
    if (err instanceof WorkflowNotFoundError)
      throw new NoContractError(`no contract ${contractId} (no amendment of it was ever submitted)`);
    throw err;
  }
}

/** Read every target the contract governs and compare. `onProgress` is called between targets (heartbeats). */
export async function checkContractDrift(
  deps: DriftDeps,
  contractId: string,
  onProgress: () => void = () => undefined,
): Promise<DriftReport> {
  const started = Date.now();
  const { view, applied } = await readContract(deps.client, contractId);
  if (!applied)
    throw new NoContractError(`contract ${contractId} has nothing applied yet: there is nothing to compare with`);
  const busy = view.holder
    ? `amendment ${view.holder} holds the contract's turn`
    : view.waiting.length > 0
      ? `amendment ${view.waiting[0]!.amendmentId} waits for the contract's turn`
      : undefined;
  const report = await checkAppliedDrift(deps, contractId, applied, onProgress);
  return { ...report, ...(busy ? { busy } : {}), durationMs: Date.now() - started };
}

/** The comparison itself, for an applied state in hand (the bench calls it directly). */
export async function checkAppliedDrift(
  deps: Omit<DriftDeps, 'client'>,
  contractId: string,
  applied: AppliedStateView,
  onProgress: () => void = () => undefined,
): Promise<DriftReport> {
  const started = Date.now();
  const desired = desiredState(deps.ruleset(), contractId, applied);
  const targets: DriftReport['targets'] = [];
  const found: Difference[] = [];
  for (const d of desired.targets.values()) {
    const t0 = Date.now();
    const subjects = governedSubjects(d);
    const query: StateQuery = { subjects, groups: [...d.groups].map(([name, g]) => ({ name, kind: g.kind })) };
    const base = { target: d.target, accounts: subjects.length, groups: query.groups.length };
    const connector = deps.registry.get(d.target);
    if (!connector) {
      targets.push({
        ...base,
        checked: false,
        why: `not checked: no target "${d.target}" is configured`,
        differences: 0,
        ms: 0,
      });
      continue;
    }
    if (!connector.readState) {
      targets.push({
        ...base,
        checked: false,
        why: `not checked: the ${connector.type} connector cannot list accounts`,
        differences: 0,
        ms: 0,
      });
      continue;
    }
    const state = await connector.readState(query);
    const actual: ActualState = {
      accounts: new Map(state.accounts.map((a) => [a.subject, a])),
      members: new Map(Object.entries(state.members).map(([k, v]) => [k, v === null ? null : new Set(v)])),
      managedAttributes: new Set(state.managedAttributes),
    };
    const diffs = compareTarget(d, actual);
    found.push(...diffs);
    targets.push({ ...base, checked: true, differences: diffs.length, ms: Date.now() - t0 });
    onProgress();
  }
  const { kept, skipped } = await withoutShared(deps, contractId, found);
  for (const t of targets) t.differences = kept.filter((x) => x.target === t.target).length;
  return {
    contractId,
    customerId: desired.customerId,
    appliedSequence: applied.sequence,
    appliedAmendmentId: applied.amendmentId,
    rulesetHash: desired.rulesetHash,
    targets,
    differences: kept,
    sharedSkipped: skipped,
    desired,
    contract: applied.contract,
    durationMs: Date.now() - started,
  };
}

/** The share a difference is about, when another contract's share would make it right. */
function shareOf(d: Difference): ShareKey | undefined {
  if (d.kind === 'account_active') return { target: d.target, subject: d.subject, resource: '' };
  if (d.kind === 'membership_extra')
    return {
      target: d.target,
      subject: d.subject,
      resource: `${d.groupKind === 'role' ? 'role' : 'group'}:${d.group}`,
    };
  return undefined;
}

/**
 * An owner attribute (externalId) set to another value: the account was linked, and provisioning
 * keeps the owner it was made for (src/activities/shares.ts), so that is not drift. Unset, it is.
 */
function linkedOwner(d: Difference): boolean {
  return (
    d.kind === 'attribute_wrong' &&
    d.actual !== undefined &&
    (OWNER_ATTRIBUTES as readonly string[]).includes(d.attribute ?? '')
  );
}

/** An account or membership another contract holds a share of is not this contract's drift (nor a linked account's owner). */
async function withoutShared(
  deps: Pick<DriftDeps, 'shares'>,
  contractId: string,
  all: Difference[],
): Promise<{ kept: Difference[]; skipped: number }> {
  const found = all.filter((d) => !linkedOwner(d));
  const linked = all.length - found.length;
  const keys = found.flatMap((d) => shareOf(d) ?? []);
  if (keys.length === 0 || !deps.shares) return { kept: found, skipped: linked };
  const held = await heldByOthers(deps.shares(), contractId, keys);
  const kept = found.filter((d) => {
    const k = shareOf(d);
    return !k || !held.has(`${k.target}\u0000${k.subject}\u0000${k.resource}`);
  });
  return { kept, skipped: linked + found.length - kept.length };
}

export interface DriftActivityDeps extends DriftDeps {
  store: () => OperationStore;
  approvalPolicy: ApprovalPolicy;
  guard?: MassChangeGuard;
  taskQueue: string;
}

/** The activities of the reconciliation workflow (src/workflows/reconcile.ts). */
export function createDriftActivities(
  deps: DriftActivityDeps,
  env: NodeJS.ProcessEnv = process.env,
): ReconcileActivities {
  let audit: AuditStore | undefined;
  let registered: Promise<boolean> | undefined;
  /** Whether DriftStatus and DriftCount exist on the namespace: a workflow that upserts an unknown one fails its task. Asked once a minute at most. */
  const driftAttributes = (): Promise<boolean> => {
    registered ??= (async () => {
      try {
        const r = await deps.client.connection.operatorService.listSearchAttributes({
          namespace: deps.client.options.namespace,
        });
        return Object.keys(DRIFT_SEARCH_ATTRIBUTES).every((k) => Object.hasOwn(r.customAttributes ?? {}, k));
      } catch {
        return false;
      } finally {
        setTimeout(() => (registered = undefined), 60_000).unref();
      }
    })();
    return registered;
  };
  return {
    async checkDrift({ contractId, reconciliationId, policy, targets }) {
      const ctx = Context.current();
      const beat = setInterval(() => ctx.heartbeat(), 5_000);
      let report: DriftReport;
      try {
        report = await checkContractDrift(deps, contractId, () => ctx.heartbeat());
      } catch (err) {
        if (err instanceof NoContractError || err instanceof DriftError)
          throw ApplicationFailure.nonRetryable(err.message, err.name);
        throw err;
      } finally {
        clearInterval(beat);
      }
      const options = { policy, targets };
      for (const [target, kinds] of Object.entries(countDifferences(report.differences)))
        for (const [kind, n] of Object.entries(kinds)) driftFoundTotal.inc({ target, kind }, n ?? 0);
      const summary: DriftSummary = {
        contractId,
        customerId: report.customerId,
        appliedSequence: report.appliedSequence,
        appliedAmendmentId: report.appliedAmendmentId,
        rulesetHash: report.rulesetHash,
        ...(report.busy ? { busy: report.busy } : {}),
        targets: report.targets.map((t) => ({ ...t, policy: policyFor(options, t.target) })),
        total: report.differences.length,
        counts: countDifferences(report.differences),
        differences: report.differences.slice(0, SHOWN_DIFFERENCES),
        sharedSkipped: report.sharedSkipped,
        searchAttributes: await driftAttributes(),
        approvalPolicy: deps.approvalPolicy,
        durationMs: report.durationMs,
      };
      const repairable = report.differences.filter((d) => policyFor(options, d.target) !== 'report');
      if (repairable.length === 0) return summary;
      const operations = provisioningOrder(repairOperations(repairable, report.desired));
      if (operations.length === 0) return summary;
      const planHash = createHash('sha256')
        .update(canonicalJson({ rulesetHash: report.rulesetHash, operations }))
        .digest('hex');
      await deps.store().savePlan(reconciliationId, planHash, operations);
      const batches = makeBatches(operations, (t) => deps.registry.provisioning(t), deps.taskQueue);
      const lanes: Record<string, number> = {};
      for (const b of batches) lanes[b.target] = deps.registry.provisioning(b.target).lanes;
      const approvalReasons: ApprovalReason[] = [];
      const approving = [...new Set(operations.map((o) => o.target))].filter(
        (t) => policyFor(options, t) === 'approve',
      );
      if (approving.length > 0)
        approvalReasons.push({
          ruleId: 'reconcile-policy',
          message: `the reconciliation policy of ${approving.join(', ')} repairs only after approval`,
        });
      const guard = massChangeReason({ operations, before: report.contract }, deps.guard ?? DEFAULT_MASS_CHANGE_GUARD);
      if (guard) approvalReasons.push(guard);
      summary.repair = {
        planHash,
        operationsTotal: operations.length,
        operations: operations.slice(0, SHOWN_OPERATIONS).map((op) => ({
          id: op.id,
          target: op.target,
          action: op.action,
          subject: op.subject,
          description: op.description,
          ruleIds: op.ruleIds,
          outcome: 'pending',
        })),
        batches,
        lanes,
        approvalReasons,
      };
      return summary;
    },

    async listContracts({ offset, limit }) {
      const ids: string[] = [];
      const query = `WorkflowType = 'contractWorkflow' AND ExecutionStatus = 'Running' AND TaskQueue = '${deps.taskQueue.replace(/'/g, '')}'`;
      for await (const w of deps.client.workflow.list({ query, pageSize: 1000 })) {
        if (w.workflowId.startsWith('contract-')) ids.push(w.workflowId.slice('contract-'.length));
      }
      ids.sort();
      return { contractIds: ids.slice(offset, offset + limit), more: ids.length > offset + limit };
    },

    async recordReconciliation(view) {
      audit ??= AuditStore.fromEnv(env);
      const all =
        view.repair && view.repair.operationsTotal > 0
          ? (await deps.store().all(view.reconciliationId, view.repair.planHash)).map(opFromStored)
          : [];
      const amendmentView = auditView(view);
      const record = {
        ...recordFromView(amendmentView, { runId: Context.current().info.workflowExecution?.runId, operations: all }),
        kind: 'reconciliation',
        drift: view.found
          ? {
              total: view.found.total,
              counts: view.found.counts,
              sharedSkipped: view.found.sharedSkipped,
              differences: view.found.differences,
              targets: view.found.targets,
              busy: view.found.busy ?? null,
            }
          : null,
      };
      const appended = await audit.append(record);
      // Counted once per reconciliation: a retried append finds its record already there.
      if (!appended.duplicate)
        for (const [target, outcomes] of Object.entries(view.repair?.operationCounts ?? {}))
          for (const [outcome, n] of Object.entries(outcomes))
            if (outcome !== 'pending') driftRepairedTotal.inc({ target, outcome }, n ?? 0);
      return appended;
    },
  };
}

const RECONCILE_STATUS_AS_AMENDMENT: Record<
  ReconcileView['status'],
  'completed' | 'failed' | 'rolled_back' | 'rejected' | 'running'
> = {
  checking: 'running',
  no_drift: 'completed',
  reported: 'completed',
  pending_approval: 'running',
  repairing: 'running',
  repaired: 'completed',
  rolled_back: 'rolled_back',
  failed: 'failed',
  not_checked: 'completed',
};

/** The reconciliation in the audit log's shape: an amendment-like record, `reason` saying what was found and done. */
function auditView(v: ReconcileView): Parameters<typeof recordFromView>[0] {
  return {
    amendmentId: v.reconciliationId,
    contractId: v.contractId,
    sequence: v.found?.appliedSequence ?? 0,
    workflowId: v.workflowId,
    submittedBy: 'amendctl-reconciliation',
    status: RECONCILE_STATUS_AS_AMENDMENT[v.status],
    reason: `reconciliation ${v.status}${v.reason ? `: ${v.reason}` : ''}`,
    ...(v.found ? { customerId: v.found.customerId, rulesetHash: v.found.rulesetHash } : {}),
    changes: [],
    violations: [],
    ...(v.repair?.approval ? { approval: v.repair.approval } : {}),
    operations: v.repair?.operations ?? [],
    ...(v.repair?.leftForOperator ? { leftForOperator: v.repair.leftForOperator } : {}),
    submittedAt: v.startedAt,
    ...(v.finishedAt ? { finishedAt: v.finishedAt } : {}),
    ...(v.repair
      ? {
          planHash: v.repair.planHash,
          operationsTotal: v.repair.operationsTotal,
          operationCounts: v.repair.operationCounts,
        }
      : {}),
  };
}

/** Re-exported for the CLI. */
export type { ReconcilePolicy };
