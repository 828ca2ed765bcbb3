/**
 * Drift and reconciliation: the input, views, search attributes and activities of the
 * reconciliation workflow (src/workflows/reconcile.ts), shared with the CLI. Workflow-safe: no I/O.
 */
import { defineQuery } from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { z } from 'zod';
import { BusinessIdSchema } from '../domain/amendment';
import type { Difference, DriftKind } from '../domain/drift';
import type { ApprovalReason } from '../domain/plan';
import type {
  AmendmentView,
  ApprovalPolicy,
  ApprovalView,
  BatchSpec,
  OperationOutcome,
  OperationView,
} from './definitions';

/** What a reconciliation does with the drift it finds on a target: report it, repair it, or repair it once approved. */
export const RECONCILE_POLICIES = ['report', 'repair', 'approve'] as const;
export type ReconcilePolicy = (typeof RECONCILE_POLICIES)[number];

const PolicySchema = z.enum(RECONCILE_POLICIES, { error: 'a policy: report, repair or approve' });

export const ReconcileInputSchema = z
  .object({
    /** One contract; absent: every contract whose workflow runs on this task queue. */
    contractId: BusinessIdSchema.optional(),
    /** The policy of every target not named in `targets` (default report). */
    policy: PolicySchema.default('report'),
    targets: z.record(z.string().regex(/^[a-z][a-z0-9-]{0,39}$/, 'a target name'), PolicySchema).default({}),
    /** Every contract: how many reconcile at once (default 4). */
    concurrency: z.number().int().min(1).max(50).default(4),
    /** How long one repair operation may keep retrying its target (default 300 s). */
    retryBudgetSeconds: z
      .number()
      .int()
      .min(1)
      .max(30 * 24 * 3600)
      .default(300),
    /** How long a repair waits for approval when the approval policy sets no deadline (default 24 h); then it is only reported. */
    approvalDeadlineSeconds: z
      .number()
      .int()
      .min(1)
      .max(30 * 24 * 3600)
      .default(24 * 3600),
    /** Every contract: where this run starts in the sorted list (continue-as-new carries it). */
    offset: z.number().int().min(0).default(0),
    /**
     * Loop mode: reconcile now and then every `everySeconds` in this one workflow (durable timers,
     * continue-as-new), for servers without Schedules (Temporal's time-skipping test server).
     * A Schedule (`amendctl reconcile schedule`) is the usual way.
     */
    everySeconds: z
      .number()
      .int()
      .min(1)
      .max(366 * 24 * 3600)
      .optional(),
    /** Loop mode: reconciliations so far (continue-as-new carries it; child ids are numbered by it). */
    round: z.number().int().min(0).default(0),
    /** Loop mode: stop after this many rounds (tests; default: never). */
    rounds: z.number().int().min(1).optional(),
  })
  .strict();
export type ReconcileInput = z.input<typeof ReconcileInputSchema>;
export type ReconcileOptions = z.output<typeof ReconcileInputSchema>;

export const RECONCILE_STATUSES = [
  'checking',
  'no_drift',
  'reported',
  'pending_approval',
  'repairing',
  'repaired',
  'rolled_back',
  'failed',
  'not_checked',
] as const;
export type ReconcileStatus = (typeof RECONCILE_STATUSES)[number];

/** The policy for one target under these options. */
export function policyFor(o: Pick<ReconcileOptions, 'policy' | 'targets'>, target: string): ReconcilePolicy {
  return o.targets[target] ?? o.policy;
}

/** Search attributes: find contracts with drift in the UI (`DriftStatus = "reported"`, `DriftCount > 0`). */
export const DRIFT_SA = {
  DriftStatus: defineSearchAttributeKey('DriftStatus', SearchAttributeType.KEYWORD),
  DriftCount: defineSearchAttributeKey('DriftCount', SearchAttributeType.INT),
} as const;
/** To register beside SEARCH_ATTRIBUTES (dev server, test servers, `temporal operator search-attribute create`). */
export const DRIFT_SEARCH_ATTRIBUTES: Record<keyof typeof DRIFT_SA, 'Keyword' | 'Int'> = {
  DriftStatus: 'Keyword',
  DriftCount: 'Int',
};

/** Differences a summary carries; the rest are counted (the repairs are all in the operation store). */
export const SHOWN_DIFFERENCES = 50;

export const reconcileScheduleId = (contractId?: string): string =>
  contractId ? `reconcile-${contractId}` : 'reconcile-all';
export const reconcileWorkflowIdPrefix = (contractId?: string): string =>
  contractId ? `reconcile-${contractId}` : 'reconcile-all';

/** What one target's check did. */
export interface TargetCheck {
  target: string;
  policy: ReconcilePolicy;
  checked: boolean;
  /** Why not checked (the connector cannot list, the target is not configured). */
  why?: string;
  accounts: number;
  groups: number;
  differences: number;
  ms: number;
}

/** Which contract a drift check compared, against what, and what it found (the report and the summary alike). */
export interface DriftCheckBase {
  contractId: string;
  customerId: string;
  appliedSequence: number;
  appliedAmendmentId: string;
  rulesetHash: string;
  /** An amendment holds (or waits for) the contract's turn: repairs wait for the next run. */
  busy?: string;
  differences: Difference[];
  /** Differences not counted as drift: another contract holds a share of the account or membership. */
  sharedSkipped: number;
}

/** What checkDrift returns to the workflow: bounded, whatever the contract's size. */
export interface DriftSummary extends DriftCheckBase {
  targets: TargetCheck[];
  total: number;
  counts: Record<string, Partial<Record<DriftKind, number>>>;
  /** DriftStatus and DriftCount are registered on the namespace (else the workflow writes neither: an unknown one would fail its task). */
  searchAttributes?: boolean;
  /** The repairs of the targets whose policy repairs, in the operation store under (reconciliationId, planHash). */
  repair?: {
    planHash: string;
    operationsTotal: number;
    operations: OperationView[];
    batches: BatchSpec[];
    lanes: Record<string, number>;
    /** Why the repair needs approval: a target's policy, the mass-change guard. */
    approvalReasons: ApprovalReason[];
  };
  approvalPolicy: ApprovalPolicy;
  durationMs: number;
}

/** A reconciliation of one contract, as its query and result show it. */
export interface ReconcileView {
  reconciliationId: string;
  contractId: string;
  workflowId: string;
  status: ReconcileStatus;
  reason?: string;
  startedAt: string;
  finishedAt?: string;
  policy: ReconcilePolicy;
  targetPolicies: Record<string, ReconcilePolicy>;
  found?: Omit<DriftSummary, 'repair' | 'approvalPolicy'>;
  repair?: {
    planHash: string;
    operationsTotal: number;
    operations: OperationView[];
    operationCounts: Record<string, Partial<Record<OperationOutcome, number>>>;
    approval?: ApprovalView;
    failure?: string;
    leftForOperator?: string[];
  };
}

/** Every contract: what the run did (per contract, the child reconciliation's status). */
export interface ReconcileAllView {
  workflowId: string;
  contracts: number;
  byStatus: Partial<Record<ReconcileStatus | 'error', number>>;
  /** Contracts with drift left (reported, pending, failed): the first 100. */
  withDrift: string[];
  startedAt: string;
  finishedAt?: string;
}

export const reconcileStatusQuery = defineQuery<ReconcileView>('reconcileStatus');

export interface ReconcileActivities {
  /** Read the targets, compare with the applied contract under the rules; store the repairs of repairing targets. */
  checkDrift(input: {
    contractId: string;
    reconciliationId: string;
    policy: ReconcilePolicy;
    targets: Record<string, ReconcilePolicy>;
  }): Promise<DriftSummary>;
  /** Contracts whose workflow runs on this worker's task queue, sorted; one page. */
  listContracts(input: { offset: number; limit: number }): Promise<{ contractIds: string[]; more: boolean }>;
  /** The reconciliation in the contract's durable audit chain (what was found, what was repaired); idempotent. */
  recordReconciliation(view: ReconcileView): Promise<{ seq: number; hash: string; duplicate: boolean }>;
}

/** The amendment-shaped view the audit log records for a reconciliation (src/audit/record.ts). */
export type ReconcileAuditView = AmendmentView;
