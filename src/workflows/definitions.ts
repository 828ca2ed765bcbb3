/**
 * Messages, queries, search attributes and views shared by the workflows, the client
 * and the CLI. Workflow-safe: no I/O.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { z } from 'zod';
import type { Contract } from '../domain/contract';
import type { Amendment } from '../domain/amendment';
import type { NotifyActivities } from '../notify/notice';
import type {
  Action,
  ApplyResult,
  ApprovalReason,
  Change,
  CompensateResult,
  Operation,
  Plan,
  Violation,
} from '../domain/plan';

export const TASK_QUEUE_DEFAULT = 'amendctl';

export const amendmentWorkflowId = (amendmentId: string): string => `amendment-${amendmentId}`;
/** Every amendment workflow type a worker runs, newest first: the older ones for the runs started on them. */
export const AMENDMENT_WORKFLOW_TYPES = ['amendmentV4', 'amendmentV3', 'amendmentV2', 'amendmentWorkflow'] as const;
/** The workflow type new amendments start (src/workflows/amendment.ts). */
export const AMENDMENT_WORKFLOW_TYPE = AMENDMENT_WORKFLOW_TYPES[0];
/** A visibility query clause for any amendment workflow type. */
export const AMENDMENT_TYPES_QUERY = AMENDMENT_WORKFLOW_TYPES.map((t) => `WorkflowType = '${t}'`).join(' OR ');
export const contractWorkflowId = (contractId: string): string => `contract-${contractId}`;

/** Search attributes (Keyword): business keys and the status; never personal data. */
export const SA = {
  ContractId: defineSearchAttributeKey('ContractId', SearchAttributeType.KEYWORD),
  CustomerId: defineSearchAttributeKey('CustomerId', SearchAttributeType.KEYWORD),
  AmendmentId: defineSearchAttributeKey('AmendmentId', SearchAttributeType.KEYWORD),
  AmendmentStatus: defineSearchAttributeKey('AmendmentStatus', SearchAttributeType.KEYWORD),
} as const;
export const SEARCH_ATTRIBUTES: Record<keyof typeof SA, 'Keyword'> = {
  ContractId: 'Keyword',
  CustomerId: 'Keyword',
  AmendmentId: 'Keyword',
  AmendmentStatus: 'Keyword',
};

export const AMENDMENT_STATUSES = [
  'queued',
  'scheduled',
  'pending_approval',
  'running',
  'completed',
  'invalid',
  'rejected',
  'rolled_back',
  'failed',
] as const;
export type AmendmentStatus = (typeof AMENDMENT_STATUSES)[number];
export const FINAL_STATUSES: ReadonlySet<AmendmentStatus> = new Set([
  'completed',
  'invalid',
  'rejected',
  'rolled_back',
  'failed',
]);

// ---- Approval signals: validated at the boundary (the CLI, `temporal workflow signal`, the UI) ----

/** Longest approval token (src/approvals/token.ts) a signal may carry. */
export const MAX_PROOF_LENGTH = 4096;
const Proof = z.string().max(MAX_PROOF_LENGTH, `the proof: at most ${MAX_PROOF_LENGTH} characters`).optional();

export const ApproveSchema = z
  .object({
    by: z.string().trim().min(1, 'the approver ("by") is required'),
    comment: z.string().max(2000).optional(),
    /** Optional: the client's clock. The workflow records its own time as well. */
    at: z.string().optional(),
    /** The signed approval token that proves who `by` is (issue 12); without a valid one the approval does not count. */
    proof: Proof,
  })
  .strict();
export type ApproveInput = z.input<typeof ApproveSchema>;

export const RejectSchema = z
  .object({
    by: z.string().trim().min(1, 'the approver ("by") is required'),
    reason: z.string().trim().min(1, 'a reason is required'),
    at: z.string().optional(),
    proof: Proof,
  })
  .strict();
export type RejectInput = z.input<typeof RejectSchema>;

export const CancelSchema = z
  .object({
    by: z.string().trim().min(1, 'who cancels ("by") is required'),
    reason: z.string().trim().min(1, 'a reason is required'),
    at: z.string().optional(),
  })
  .strict();
export type CancelInput = z.input<typeof CancelSchema>;

export const approveSignal = defineSignal<[ApproveInput]>('approve');
export const rejectSignal = defineSignal<[RejectInput]>('reject');
/** Cancel a `scheduled` or `queued` amendment before it takes effect (final status `rejected`). */
export const cancelSignal = defineSignal<[CancelInput]>('cancel');
export const statusQuery = defineQuery<AmendmentView>('status');

/** What `approveUpdate` answers once the approval is recorded. */
export interface ApproveUpdateResult {
  amendmentId: string;
  /** True when this approval completed the approvals the amendment needs. */
  approved: boolean;
  stillNeeded: number;
  approvals: Decision[];
  eligible: string[];
  deadline?: string;
}
/**
 * The approval as an Update: its validator refuses (with an error naming why) an approver
 * who is not allowed, the submitter, a repeated approval, or an amendment not pending
 * approval, so nothing is written to history for a refused call.
 */
export const approveUpdate = defineUpdate<ApproveUpdateResult, [ApproveInput]>('approveUpdate');

// ---- Approval policy (worker configuration, returned with the plan) ----

export interface ApprovalPolicy {
  /** Who may approve: user ids, `group:NAME` for a group's members, or `*` for anyone. */
  approvers: string[];
  /** Groups of approvers (names to members). With no `group:` in `approvers`, every group's members may approve. */
  groups: Record<string, string[]>;
  /** How many distinct approvals are needed (N of the M eligible). */
  required: number;
  /** The submitter never approves its own amendment. */
  separationOfDuties: boolean;
  /** How long an amendment may stay pending approval; none means no deadline. */
  deadlineSeconds?: number;
  /** At the deadline: reject the amendment, or hand it to the escalation group (default reject). */
  onDeadline?: 'reject' | 'escalate';
  /** The second approver group, with its own count and deadline (then: rejected). */
  escalation?: { approvers: string[]; groups?: Record<string, string[]>; required: number; deadlineSeconds?: number };
  /** A reminder is recorded (status, details, memo `approvalReminder`, log) this often while pending. */
  reminderEverySeconds?: number;
}

/** Ordering: how long a gap in a contract's sequence may stay unfilled before the waiting amendment ends `invalid`. */
export interface OrderingPolicy {
  gapDeadlineSeconds: number;
}

export const DEFAULT_GAP_DEADLINE_SECONDS = 7 * 24 * 3600;

// ---- Views: what `status` and the workflow result show ----

export type OperationOutcome =
  'pending' | 'running' | 'applied' | 'unchanged' | 'failed' | 'skipped' | 'compensated' | 'compensation_failed';

export interface OperationView {
  id: string;
  target: string;
  action: Action;
  subject: string;
  description: string;
  ruleIds: string[];
  outcome: OperationOutcome;
  detail?: string;
  error?: { type: string; message: string };
  attempts?: number;
  startedAt?: string;
  finishedAt?: string;
  compensation?: { outcome: 'compensated' | 'unchanged' | 'failed'; detail?: string; at: string };
}

export interface Decision {
  by: string;
  at: string;
  comment?: string;
  /** How `by` was proven (a verified approval token): absent in histories from before proofs. */
  proof?: ProofView;
}

/** A verified approval token, as the audit shows it: who signed, how the approver proved themselves, when. */
export interface ProofView {
  via: 'oidc' | 'password' | 'api-key' | 'jwt' | 'personal-key' | 'service';
  keyId: string;
  issuedAt: string;
  expiresAt: string;
  tokenId: string;
  /** When the worker verified it. */
  verifiedAt: string;
}

/** What the worker's `verifyApproval` activity checks a token against. */
export interface VerifyApprovalInput {
  token: string | undefined;
  amendmentId: string;
  planHash: string;
  decision: 'approve' | 'reject';
  by: string;
  text?: string;
}
export type VerifyApprovalResult =
  ({ ok: true } & Omit<ProofView, 'verifiedAt'> & { by: string; verifiedAt: string }) | { ok: false; why: string };

export type ApprovalStage = 'primary' | 'escalated';

export interface ApprovalReminder {
  at: string;
  stage: ApprovalStage;
  waitingFor: string;
  /** Who the reminder is for (the eligible approvers then). */
  to: string[];
}

export interface ApprovalView {
  required: boolean;
  reasons: ApprovalReason[];
  /** `escalated` once the first deadline passed and the policy hands the decision to the escalation group. */
  stage: ApprovalStage;
  /** Approvals needed in the current stage. */
  needed: number;
  /** Approvals still missing in the current stage. */
  stillNeeded: number;
  approvals: Array<Decision & { stage?: ApprovalStage }>;
  requestedAt?: string;
  /** The current stage's deadline (ISO). */
  deadline?: string;
  escalatedAt?: string;
  /** True when the last deadline passed with no decision (status `rejected`). */
  expired?: boolean;
  reminders: ApprovalReminder[];
  rejection?: Decision & { reason: string };
  /** Signals recorded and ignored, and why (not allowed, own amendment, duplicate, not pending). */
  ignored: Array<Decision & { why: string }>;
  /** Who may still approve. */
  eligible: string[];
}

export interface AmendmentView {
  amendmentId: string;
  contractId: string;
  sequence: number;
  workflowId: string;
  submittedBy: string;
  status: AmendmentStatus;
  /** One line: why it is in this status (what it waits for, why it stopped). */
  reason?: string;
  customerId?: string;
  reverses?: string;
  rulesetHash?: string;
  changes: Change[];
  violations: Violation[];
  approval?: ApprovalView;
  operations: OperationView[];
  /** Operations an operator must fix by hand (status `failed`). */
  leftForOperator?: string[];
  effectiveAt?: string;
  /** While queued: what the contract is at and which earlier sequences have not arrived. */
  queue?: { appliedSequence: number; missing: number[]; gapDeadline?: string; holder?: TurnHolderView };
  /** An operator's reversal: who asked, why, and which amendment it reverses (recorded as `rollback`). */
  rollback?: { of: string; requestedBy: string; reason: string };
  /** A cancel or supersede that ended this amendment before it took effect. */
  cancellation?: { by: string; at: string; reason: string; kind: 'cancelled' | 'superseded' };
  /** Signals other than approve/reject that were recorded and ignored (e.g. a late cancel). */
  ignoredSignals?: Array<{ signal: string; by: string; at: string; why: string }>;
  submittedAt: string;
  finishedAt?: string;
  /**
   * Bounded views (amendmentV2): `operations` and `changes` hold the first of each, these the
   * whole. The full list of operations is in the operation store (`amendctl status --operations`).
   */
  planHash?: string;
  operationsTotal?: number;
  changesTotal?: number;
  /** Operations by target and outcome. */
  operationCounts?: Record<string, Partial<Record<OperationOutcome, number>>>;
  /** The first failed operations (also those beyond `operations`). */
  failures?: OperationView[];
  /** Batches whose activity failed as a whole (timed out with no worker to finish them): every operation in them counts as failed. */
  lostBatches?: Array<{
    target: string;
    batch: number;
    of: number;
    from: number;
    to: number;
    error: { type: string; message: string };
  }>;
  /** While running: each batch in flight, from its last heartbeat (added by the client, not the workflow). */
  progress?: BatchProgress[];
}

/** What a batch reports in its heartbeat and the client shows while it runs. */
export interface BatchProgress {
  target: string;
  batch: number;
  of: number;
  done: number;
  total: number;
  failed: number;
}

/** How many operations and changes the views of amendmentV2 show; the rest are counted. */
export const SHOWN_OPERATIONS = 50;
export const SHOWN_CHANGES = 100;
export const SHOWN_FAILURES = 20;

// ---- Contract entity workflow: sequencing and applied state ----

export interface AppliedStateView {
  contract: Contract;
  sequence: number;
  amendmentId: string;
  previous: Contract | null;
}

export interface EnqueueRequest {
  amendmentId: string;
  sequence: number;
  workflowId: string;
  /** The run that asks (absent from amendments started before runs were tracked): a new run of a holder (a reset) takes its turn over. */
  runId?: string;
  /** Set while the amendment waits for its effective date: registered, not yet in line for a turn. */
  effectiveAt?: string;
  /**
   * amendmentV4: the holder starts its turn keeper only once it has held the turn for
   * KEEPER_AFTER_MS, so until the keeper runs the contract checks on the holder itself
   * (every HOLDER_CHECK_MS). Holders without it started their keeper before they asked.
   */
  lateKeeper?: boolean;
}

/** amendmentV4 starts its turn keeper once it has held the turn this long (most amendments release sooner). */
export const KEEPER_AFTER_MS = 2_000;
/** The contract checks on a holder with a late keeper this long after the turn, and again until the keeper runs. */
export const HOLDER_CHECK_MS = 5_000;

/** What the contract's check of a holder with a late keeper found (src/activities/reclaim.ts). */
export type HolderCheck =
  | 'kept' // the holder's run runs and so does its keeper: the keeper reports its end
  | 'running' // the run runs, its keeper not yet: check again
  | 'closed'; // the run closed without releasing the turn (terminated, timed out, failed): take the turn back

export type TurnMessage = { kind: 'turn'; applied: AppliedStateView | null } | { kind: 'refused'; reason: string };

/** What the contract tells a waiting amendment: where the line is, or that it was superseded. */
export type ContractNotice =
  | {
      kind: 'waiting';
      appliedSequence: number;
      missing: number[];
      scheduledAhead: Array<{ sequence: number; amendmentId: string; effectiveAt: string }>;
      holder?: TurnHolderView;
    }
  | { kind: 'superseded'; by: string; reason: string };

export interface WithdrawMessage {
  amendmentId: string;
}

export interface HolderGone {
  amendmentId: string;
  workflowId: string;
  runId?: string;
}

export interface OperatorRelease {
  amendmentId: string;
  by: string;
  reason: string;
}

export interface KeeperInput {
  contractId: string;
  amendmentId: string;
  workflowId: string;
}

/** The keeper of an amendment's turn: a child that outlives nothing (src/workflows/keeper.ts). */
export const keeperWorkflowId = (amendmentWorkflowId: string): string => `${amendmentWorkflowId}.keeper`;

/** What the reclaim activity found and did (src/activities/reclaim.ts). */
export type ReclaimResult =
  | { kind: 'running' } // the run still runs: nothing to reclaim
  | { kind: 'rerun'; runId: string } // a new run of the same workflow (a reset): it asks for the turn again
  | { kind: 'ended' } // it ended normally: its own release is on its way
  | { kind: 'reclaimed'; view: ReclaimView };

export interface ReleaseMessage {
  amendmentId: string;
  /** Set when the amendment was applied: the new applied contract. */
  applied?: Contract;
}

/** Who holds a contract's turn, since when. */
export interface TurnHolderView {
  amendmentId: string;
  sequence: number;
  /** When the turn was handed to it (absent for a turn handed out before this was recorded). */
  since?: string;
  /** Set while the contract takes the turn back from a holder that ended without releasing it. */
  reclaiming?: { why: string; at: string };
}

/** What the contract did when a holder ended without releasing its turn (or an operator released it). */
export interface ReclaimView {
  amendmentId: string;
  sequence: number;
  at: string;
  /** How the holder's run ended (Temporal's close status), and who released it for an operator release. */
  ended: string;
  by?: string;
  reason?: string;
  /** Operations the holder had applied that were compensated (the field keeps its recorded name), and those that could not be (left for an operator). */
  undone: number;
  flagged: string[];
  /** The audit record's sequence in the durable log. */
  auditSeq?: number;
}

export interface ContractView {
  contractId: string;
  appliedSequence: number;
  lastAmendmentId?: string;
  holder?: string;
  holding?: TurnHolderView;
  /** The last turns taken back from holders that ended without releasing (newest last, bounded). */
  reclaimed?: ReclaimView[];
  waiting: Array<{ amendmentId: string; sequence: number }>;
  scheduled: Array<{ amendmentId: string; sequence: number; effectiveAt: string }>;
  recent: Array<{ amendmentId: string; sequence: number; at: string }>;
  /** Runs so far (continue-as-new count + 1). */
  run: number;
}

export const enqueueSignal = defineSignal<[EnqueueRequest]>('enqueue');
export const releaseSignal = defineSignal<[ReleaseMessage]>('release');
export const turnSignal = defineSignal<[TurnMessage]>('turn');
export const noticeSignal = defineSignal<[ContractNotice]>('contractNotice');
export const withdrawSignal = defineSignal<[WithdrawMessage]>('withdraw');
/** From an amendment's turn keeper (src/workflows/keeper.ts): the amendment's run has closed, however it closed. */
export const holderGoneSignal = defineSignal<[HolderGone]>('holderGone');
/** `amendctl contract release`: an operator frees the turn of a holder whose workflow has ended (recorded in the audit log). */
export const releaseTurnSignal = defineSignal<[OperatorRelease]>('releaseTurn');
export const contractQuery = defineQuery<ContractView>('contract');
export const appliedStateQuery = defineQuery<AppliedStateView | null>('appliedState');

export interface AmendmentWorkflowInput {
  /** The amendment document (validated again inside the workflow). */
  amendment: unknown;
  options?: {
    /** How long one operation may keep retrying a target before it counts as failed (default 300 s). */
    retryBudgetSeconds?: number;
    /** An operator's reversal (`amendctl reverse`; recorded as `rollback`): always needs approval under the approval policy. */
    rollback?: { requestedBy: string; reason: string };
  };
}

export interface ContractWorkflowState {
  contractId: string;
  applied: AppliedStateView | null;
  waiting: EnqueueRequest[];
  /** `kept`: a holder with a late keeper whose keeper was found running (the contract stops checking on it). */
  holder: (EnqueueRequest & { since?: string; kept?: boolean }) | null;
  recent: Array<{ amendmentId: string; sequence: number; at: string }>;
  /** A reclaim asked for (the holder's keeper reported it gone, or an operator released it), until done. */
  reclaim?: { amendmentId: string; runId?: string; by?: string; reason?: string; at: string } | null;
  reclaimed?: ReclaimView[];
  /** Amendments waiting for their effective date (a later one for the same sequence supersedes them). */
  scheduled?: EnqueueRequest[];
  /** Continue as new after this many history events (default 2000; tests lower it). */
  maxHistoryEvents?: number;
  run?: number;
}

// ---- Activities, as the workflows see them (implemented in src/activities) ----

export interface PlanResult {
  plan: Plan;
  approvalPolicy: ApprovalPolicy;
}

/**
 * One batch: a contiguous range of a plan's operations on one target (in provisioning order:
 * by subject, each subject's operations whole and in plan order), run by one activity on
 * the target's own task queue.
 */
export interface BatchSpec {
  target: string;
  taskQueue: string;
  /** First operation index (inclusive) and last (exclusive). */
  from: number;
  to: number;
  /** Accounts in the batch. */
  subjects: number;
  /** 1-based position among the target's batches, and how many it has. */
  batch: number;
  of: number;
}

/**
 * The plan as amendmentV2 holds it (the claim check): counts, the first operations and changes,
 * and the batches; every operation itself is in the operation store under the plan hash.
 */
export interface PlannedAmendment {
  planHash: string;
  rulesetHash: string;
  customerId: string;
  changes: Change[];
  changesTotal: number;
  violations: Violation[];
  approval: Plan['approval'];
  operationsTotal: number;
  /** The first SHOWN_OPERATIONS operations, in provisioning order (index = position). */
  operations: OperationView[];
  batches: BatchSpec[];
  /** Batches of one target that may run at once (per target configuration). */
  lanes: Record<string, number>;
  /** The contract the amendment produces (released to the contract when it completes). */
  after: Contract;
  approvalPolicy: ApprovalPolicy;
}

export interface BatchInput {
  amendmentId: string;
  /** The amendment's contract, whose shares of accounts the batch takes and gives up (absent in batches of runs from before shares). */
  contractId?: string;
  planHash: string;
  target: string;
  from: number;
  to: number;
  batch: number;
  of: number;
  /** How long one operation may keep retrying its target before it counts as failed. */
  budgetSeconds: number;
}

/** One operation's outcome in a batch result: [index, outcome, attempts, started (ms after the batch started), duration ms]. */
export type OperationRecord = [number, 'applied' | 'unchanged' | 'failed' | 'skipped', number, number, number];

export interface BatchResult {
  target: string;
  from: number;
  to: number;
  startedAt: string;
  /** Every operation of the batch, in index order. */
  operations: OperationRecord[];
  /** The first operation that failed for good; the batch started nothing after it. */
  failure?: FailedOperation;
  /** Operations that also failed (in flight when the first did), beyond `failure`. */
  alsoFailed?: FailedOperation[];
}

export interface FailedOperation extends Pick<OperationView, 'id' | 'action' | 'subject' | 'description' | 'ruleIds'> {
  idx: number;
  type: string;
  message: string;
}

export interface CompensateBatchResult {
  target: string;
  /** [index, outcome] of every operation the batch compensated or found already as before. */
  operations: Array<[number, 'compensated' | 'unchanged' | 'failed']>;
  at: string;
  /** Compensations that failed for good: left for an operator. */
  failed: Array<{ idx: number; description: string; message: string }>;
}

export interface AmendmentActivities extends NotifyActivities {
  /** Diff, rules and plan, in the worker (the ruleset is worker configuration). */
  planAmendment(input: { amendment: Amendment; applied: AppliedStateView | null }): Promise<PlanResult>;
  /** One operation on its target, idempotent. */
  applyOperation(op: Operation): Promise<ApplyResult & { attempt: number }>;
  /** The compensation of an applied operation (its exact inverse, from the recorded prior state), idempotent. */
  compensateOperation(input: { op: Operation; result: ApplyResult }): Promise<CompensateResult>;
  /** Register with the contract's entity workflow (signal-with-start), so amendments apply in sequence; answers the ordering policy. */
  enqueueAmendment(input: EnqueueRequest & { contractId: string }): Promise<OrderingPolicy | void>;
  /** amendmentV2's plan: diff, rules and plan; the operations go to the operation store, the workflow gets the claim check. */
  planAmendmentV2(input: { amendment: Amendment; applied: AppliedStateView | null }): Promise<PlannedAmendment>;
  /** One batch of operations on its target, each operation idempotent and retried on its own; resumes from the store. */
  applyBatch(input: BatchInput): Promise<BatchResult>;
  /** The compensation of a batch's applied operations, newest first; idempotent. */
  compensateBatch(input: BatchInput): Promise<CompensateBatchResult>;
  /** Append the amendment's audit record (from its final view) to the durable hash-chained log; idempotent (src/activities/audit.ts). */
  recordAudit(view: AmendmentView): Promise<{ seq: number; hash: string; duplicate: boolean }>;
  /**
   * The contract takes the turn back from a holder that ended without releasing it: how the run
   * ended; what it had applied, compensated; the audit record (src/activities/reclaim.ts).
   */
  reclaimTurn(input: {
    contractId: string;
    holder: EnqueueRequest;
    by?: string;
    reason?: string;
  }): Promise<ReclaimResult>;
  /** The contract's check of a holder with a late keeper (amendmentV4): is its run, and its keeper, running? */
  checkHolder(input: { holder: EnqueueRequest }): Promise<HolderCheck>;
  /** The worker's ordering policy (gap deadline). */
  orderingPolicy(): Promise<OrderingPolicy>;
  /** Verify an approval token against the worker's trusted keys (issue 12); never throws for a bad token, answers why. */
  verifyApproval(input: VerifyApprovalInput): Promise<VerifyApprovalResult>;
}
