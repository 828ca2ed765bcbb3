/**
 * The audit record of one amendment: one shape for both sources.
 * - `workflow`: built by the recordAudit activity from the workflow's final view and kept
 *   in the durable log (src/audit/store.ts).
 * - `history`: built by `amendctl audit` from the workflow history (decoded through the codec),
 *   which adds what only history knows: the rules' plan as decided, every signal with its
 *   arrival time, and each activity's scheduling, attempts and timing.
 */
import type { ApprovalReason, Change, Violation } from '../domain/plan';
import type { StoredOperation } from '../store/operations';
import type { AmendmentView, OperationView, ProofView } from '../workflows/definitions';

export const AUDIT_FORMAT = 'amendctl.audit/1';

export interface AuditDecision {
  kind: 'approve' | 'reject' | 'cancel' | string;
  by: string;
  at: string;
  /** False: recorded but ignored (why says why). */
  accepted: boolean;
  comment?: string;
  reason?: string;
  why?: string;
  /** How `by` was proven (a verified approval token): absent for decisions from before proofs. */
  proof?: ProofView;
}

/** One line for a person: who vouched, how, when it was verified. */
export const proofText = (p: ProofView): string => `proven by ${p.via} (key ${p.keyId}), verified ${p.verifiedAt}`;

export interface AuditOperation {
  id: string;
  target: string;
  action: string;
  subject: string;
  description: string;
  ruleIds: string[];
  outcome: OperationView['outcome'];
  detail?: string;
  error?: { type: string; message: string };
  attempts?: number;
  scheduledAt?: string;
  startedAt?: string;
  finishedAt?: string;
  durationMs?: number;
  compensation?: { outcome: string; detail?: string; at?: string; attempts?: number; durationMs?: number };
}

export interface AuditRecord {
  format: typeof AUDIT_FORMAT;
  source: 'history' | 'workflow';
  amendmentId: string;
  contractId: string;
  sequence: number;
  customerId?: string;
  workflowId: string;
  runId?: string;
  /** The workflow's static summary (history only). */
  summary?: string;
  submittedBy: string;
  submittedAt: string;
  finishedAt?: string;
  status: AmendmentView['status'];
  reason?: string;
  reverses?: string;
  /** An operator's reversal (`amendctl reverse`): of which amendment, who asked for it and why. The field keeps its recorded name. */
  rollback?: { of: string; requestedBy: string; reason: string };
  rulesetHash?: string;
  changes: Change[];
  violations: Violation[];
  approval: { required: boolean; reasons: ApprovalReason[]; needed: number; decisions: AuditDecision[] };
  operations: AuditOperation[];
  leftForOperator: string[];
  /** amendmentV2: the plan's hash (its operations in the operation store), and counts by target and outcome. */
  planHash?: string;
  operationCounts?: AmendmentView['operationCounts'];
  /** The OpenTelemetry trace the amendment ran in (when tracing is on): its spans in the tracing backend. */
  traceId?: string;
}

const ms = (a?: string, b?: string): number | undefined =>
  a && b ? Math.max(0, Date.parse(b) - Date.parse(a)) : undefined;

function opFromView(o: OperationView): AuditOperation {
  const d = ms(o.startedAt, o.finishedAt);
  return {
    id: o.id,
    target: o.target,
    action: o.action,
    subject: o.subject,
    description: o.description,
    ruleIds: o.ruleIds,
    outcome: o.outcome,
    ...(o.detail ? { detail: o.detail } : {}),
    ...(o.error ? { error: o.error } : {}),
    ...(o.attempts !== undefined ? { attempts: o.attempts } : {}),
    ...(o.startedAt ? { startedAt: o.startedAt } : {}),
    ...(o.finishedAt ? { finishedAt: o.finishedAt } : {}),
    ...(d !== undefined ? { durationMs: d } : {}),
    ...(o.compensation ? { compensation: { ...o.compensation } } : {}),
  };
}

/** Decisions as the workflow judged them: accepted approvals, the rejection, and every ignored signal. */
export function decisionsFromView(v: AmendmentView): AuditDecision[] {
  const a = v.approval;
  if (!a) return [];
  const out: AuditDecision[] = [
    ...a.approvals.map((d) => ({
      kind: 'approve',
      by: d.by,
      at: d.at,
      accepted: true,
      ...(d.comment ? { comment: d.comment } : {}),
      ...(d.proof ? { proof: d.proof } : {}),
    })),
    ...(a.rejection
      ? [
          {
            kind: 'reject',
            by: a.rejection.by,
            at: a.rejection.at,
            accepted: true,
            reason: a.rejection.reason,
            ...(a.rejection.proof ? { proof: a.rejection.proof } : {}),
          },
        ]
      : []),
    ...a.ignored.map((d) => {
      const x = d as typeof d & { reason?: string };
      return {
        kind: /reject/i.test(d.why) || x.reason ? 'reject' : 'approve',
        by: d.by,
        at: d.at,
        accepted: false,
        why: d.why,
        ...(d.comment ? { comment: d.comment } : {}),
        ...(x.reason ? { reason: x.reason } : {}),
      };
    }),
  ];
  return out.sort((p, q) => p.at.localeCompare(q.at));
}

/** An operation as the operation store kept it (amendmentV2: the whole list, not only the view's first ones). */
export function opFromStored(row: StoredOperation): AuditOperation {
  const outcome: OperationView['outcome'] = row.compensation
    ? row.compensation.outcome === 'failed'
      ? 'compensation_failed'
      : 'compensated'
    : row.outcome;
  const o = row.op;
  return opFromView({
    id: o.id,
    target: o.target,
    action: o.action,
    subject: o.subject,
    description: o.description,
    ruleIds: o.ruleIds,
    outcome,
    ...(row.result?.detail ? { detail: row.result.detail } : {}),
    ...(row.result?.error ? { error: row.result.error } : {}),
    ...(row.attempts > 0 ? { attempts: row.attempts } : {}),
    ...(row.startedAt ? { startedAt: row.startedAt } : {}),
    ...(row.finishedAt ? { finishedAt: row.finishedAt } : {}),
    ...(row.compensation ? { compensation: { ...row.compensation } } : {}),
  });
}

/** The record from a final view (the durable log's record); `operations` replaces the view's (bounded) list. */
export function recordFromView(
  v: AmendmentView,
  extra: { runId?: string; operations?: AuditOperation[]; traceId?: string } = {},
): AuditRecord {
  return dropUndefined({
    format: AUDIT_FORMAT,
    source: 'workflow',
    amendmentId: v.amendmentId,
    contractId: v.contractId,
    sequence: v.sequence,
    customerId: v.customerId,
    workflowId: v.workflowId,
    runId: extra.runId,
    submittedBy: v.submittedBy,
    submittedAt: v.submittedAt,
    finishedAt: v.finishedAt,
    status: v.status,
    reason: v.reason,
    reverses: v.reverses,
    rollback: v.rollback,
    rulesetHash: v.rulesetHash,
    changes: v.changes,
    violations: v.violations,
    approval: {
      required: v.approval?.required ?? false,
      reasons: v.approval?.reasons ?? [],
      needed: v.approval?.needed ?? 0,
      decisions: decisionsFromView(v),
    },
    operations: extra.operations ?? v.operations.map(opFromView),
    leftForOperator: v.leftForOperator ?? [],
    planHash: v.planHash,
    operationCounts: v.operationCounts,
    traceId: extra.traceId,
  });
}

/** JSON-clean (no undefined anywhere), so the canonical form is the same before and after storage. */
export function dropUndefined<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}
