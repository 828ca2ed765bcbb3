/**
 * Messages, queries, search attributes and views shared by the workflows, the client
 * and the CLI. Workflow-safe: no I/O.
 */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { z } from 'zod';
import type { Contract } from '../domain/contract';
import type { Amendment } from '../domain/amendment';
import type { Action, ApplyResult, ApprovalReason, Change, CompensateResult, Operation, Plan, Violation } from '../domain/plan';

export const TASK_QUEUE_DEFAULT = 'amendctl';

export const amendmentWorkflowId = (amendmentId: string): string => `amendment-${amendmentId}`;
export const contractWorkflowId = (contractId: string): string => `contract-${contractId}`;

/** Search attributes (Keyword): business keys and the status; never personal data. */
export const SA = {
  ContractId: defineSearchAttributeKey('ContractId', SearchAttributeType.KEYWORD),
  CustomerId: defineSearchAttributeKey('CustomerId', SearchAttributeType.KEYWORD),
  AmendmentId: defineSearchAttributeKey('AmendmentId', SearchAttributeType.KEYWORD),
  AmendmentStatus: defineSearchAttributeKey('AmendmentStatus', SearchAttributeType.KEYWORD),
} as const;
export const SEARCH_ATTRIBUTES: Record<keyof typeof SA, 'Keyword'> = { ContractId: 'Keyword', CustomerId: 'Keyword', AmendmentId: 'Keyword', AmendmentStatus: 'Keyword' };

export const AMENDMENT_STATUSES = ['queued', 'scheduled', 'pending_approval', 'running', 'completed', 'invalid', 'rejected', 'rolled_back', 'failed'] as const;
export type AmendmentStatus = (typeof AMENDMENT_STATUSES)[number];
export const FINAL_STATUSES: ReadonlySet<AmendmentStatus> = new Set(['completed', 'invalid', 'rejected', 'rolled_back', 'failed']);

// ---- Approval signals: validated at the boundary (the CLI, `temporal workflow signal`, the UI) ----

export const ApproveSchema = z
  .object({
    by: z.string().trim().min(1, 'the approver ("by") is required'),
    comment: z.string().max(2000).optional(),
    /** Optional: the client's clock. The workflow records its own time as well. */
    at: z.string().optional(),
  })
  .strict();
export type ApproveInput = z.input<typeof ApproveSchema>;

export const RejectSchema = z
  .object({
    by: z.string().trim().min(1, 'the approver ("by") is required'),
    reason: z.string().trim().min(1, 'a reason is required'),
    at: z.string().optional(),
  })
  .strict();
export type RejectInput = z.input<typeof RejectSchema>;

export const approveSignal = defineSignal<[ApproveInput]>('approve');
export const rejectSignal = defineSignal<[RejectInput]>('reject');
export const statusQuery = defineQuery<AmendmentView>('status');

// ---- Approval policy (worker configuration, returned with the plan) ----

export interface ApprovalPolicy {
  /** Who may approve: user ids, or `*` for anyone. */
  approvers: string[];
  /** Groups of approvers (names to members), for N-of-M across groups. */
  groups: Record<string, string[]>;
  /** How many distinct approvals are needed. */
  required: number;
  /** The submitter never approves its own amendment. */
  separationOfDuties: boolean;
}

// ---- Views: what `status` and the workflow result show ----

export type OperationOutcome = 'pending' | 'running' | 'applied' | 'unchanged' | 'failed' | 'skipped' | 'compensated' | 'compensation_failed';

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
}

export interface ApprovalView {
  required: boolean;
  reasons: ApprovalReason[];
  needed: number;
  approvals: Decision[];
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
  submittedAt: string;
  finishedAt?: string;
}

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
}

export type TurnMessage = { kind: 'turn'; applied: AppliedStateView | null } | { kind: 'refused'; reason: string };

export interface ReleaseMessage {
  amendmentId: string;
  /** Set when the amendment was applied: the new applied contract. */
  applied?: Contract;
}

export interface ContractView {
  contractId: string;
  appliedSequence: number;
  lastAmendmentId?: string;
  holder?: string;
  waiting: Array<{ amendmentId: string; sequence: number }>;
  recent: Array<{ amendmentId: string; sequence: number; at: string }>;
}

export const enqueueSignal = defineSignal<[EnqueueRequest]>('enqueue');
export const releaseSignal = defineSignal<[ReleaseMessage]>('release');
export const turnSignal = defineSignal<[TurnMessage]>('turn');
export const contractQuery = defineQuery<ContractView>('contract');
export const appliedStateQuery = defineQuery<AppliedStateView | null>('appliedState');

export interface AmendmentWorkflowInput {
  /** The amendment document (validated again inside the workflow). */
  amendment: unknown;
  options?: {
    /** How long one operation may keep retrying a target before it counts as failed (default 300 s). */
    retryBudgetSeconds?: number;
  };
}

export interface ContractWorkflowState {
  contractId: string;
  applied: AppliedStateView | null;
  waiting: EnqueueRequest[];
  holder: EnqueueRequest | null;
  recent: Array<{ amendmentId: string; sequence: number; at: string }>;
}

// ---- Activities, as the workflows see them (implemented in src/activities) ----

export interface PlanResult {
  plan: Plan;
  approvalPolicy: ApprovalPolicy;
}

export interface AmendmentActivities {
  /** Diff, rules and plan, in the worker (the ruleset is worker configuration). */
  planAmendment(input: { amendment: Amendment; applied: AppliedStateView | null }): Promise<PlanResult>;
  /** One operation on its target, idempotent. */
  applyOperation(op: Operation): Promise<ApplyResult & { attempt: number }>;
  /** The exact undo of an applied operation, idempotent. */
  compensateOperation(input: { op: Operation; result: ApplyResult }): Promise<CompensateResult>;
  /** Register with the contract's entity workflow (signal-with-start), so amendments apply in sequence. */
  enqueueAmendment(input: EnqueueRequest & { contractId: string }): Promise<void>;
  /** Append the amendment's audit record (from its final view) to the durable hash-chained log; idempotent (src/activities/audit.ts). */
  recordAudit(view: AmendmentView): Promise<{ seq: number; hash: string; duplicate: boolean }>;
}
