/**
 * The audit record from a workflow's history: a pure function of the history events and a
 * payload decoder (the codec plus the JSON converter). Works on a running workflow too: the
 * status then comes from the last AmendmentStatus search attribute upsert.
 */
import type { WorkflowHandle } from '@temporalio/client';
import type { Payload } from '@temporalio/common';
import type { Amendment } from '../domain/amendment';
import type { ApplyResult, CompensateResult, Operation, Plan } from '../domain/plan';
import type { StoredOperation } from '../store/operations';
import type { AmendmentView, BatchResult, PlanResult } from '../workflows/definitions';
import {
  AUDIT_FORMAT,
  type AuditDecision,
  type AuditOperation,
  type AuditRecord,
  decisionsFromView,
  dropUndefined,
  opFromStored,
} from './record';

export type History = Awaited<ReturnType<WorkflowHandle['fetchHistory']>>;
export type HistoryEvent = NonNullable<History['events']>[number];
export type Decode = (p: Payload | null | undefined) => Promise<unknown>;

interface Failure {
  message?: string | null;
  encodedAttributes?: Payload | null;
  applicationFailureInfo?: { type?: string | null } | null;
  cause?: Failure | null;
}

function iso(ts: { seconds?: unknown; nanos?: number | null } | null | undefined): string | undefined {
  if (!ts || ts.seconds === undefined || ts.seconds === null) return undefined;
  return new Date(Number(String(ts.seconds)) * 1000 + Math.floor((ts.nanos ?? 0) / 1e6)).toISOString();
}

const n = (v: unknown): number => Number(String(v ?? 0));

async function failureText(f: Failure | null | undefined, decode: Decode): Promise<{ type: string; message: string }> {
  // The activity's own failure is the innermost cause with application info.
  let cur = f;
  while (cur?.cause && !cur.applicationFailureInfo) cur = cur.cause;
  let message = cur?.message ?? '';
  if (cur?.encodedAttributes) {
    const attrs = (await decode(cur.encodedAttributes)) as { message?: string } | undefined;
    if (typeof attrs?.message === 'string') message = attrs.message;
  }
  return { type: cur?.applicationFailureInfo?.type ?? 'Error', message };
}

interface ActivityTrack {
  type: string;
  input: unknown;
  summary?: string;
  scheduledAt?: string;
  startedAt?: string;
  attempt?: number;
  finishedAt?: string;
  result?: unknown;
  failure?: { type: string; message: string };
}

/** amendmentV2's operations, from the operation store (the history holds the batches, not the list). */
export type LoadOperations = (amendmentId: string, planHash: string) => Promise<StoredOperation[]>;

export async function recordFromHistory(
  history: History,
  decode: Decode,
  extra: { runId?: string; operations?: LoadOperations } = {},
): Promise<AuditRecord> {
  const events = history.events ?? [];
  const acts = new Map<number, ActivityTrack>();
  const signals: Array<{ kind: string; at: string; input: Record<string, unknown> }> = [];
  let input:
    { amendment?: Partial<Amendment>; options?: { rollback?: { requestedBy: string; reason: string } } } | undefined;
  let summary: string | undefined;
  let startedAt: string | undefined;
  let workflowId = '';
  let final: AmendmentView | undefined;
  let closedAt: string | undefined;
  let lastStatus: string | undefined;
  let memoPlanHash: string | undefined;

  for (const e of events) {
    const at = iso(e.eventTime);
    const id = n(e.eventId);
    if (e.workflowExecutionStartedEventAttributes) {
      const a = e.workflowExecutionStartedEventAttributes;
      input = (await decode(a.input?.payloads?.[0])) as typeof input;
      summary = (await decode(e.userMetadata?.summary)) as string | undefined;
      startedAt = at;
      workflowId = a.workflowId ?? '';
    } else if (e.activityTaskScheduledEventAttributes) {
      const a = e.activityTaskScheduledEventAttributes;
      acts.set(id, {
        type: a.activityType?.name ?? '',
        input: await decode(a.input?.payloads?.[0]),
        summary: (await decode(e.userMetadata?.summary)) as string | undefined,
        scheduledAt: at,
      });
    } else if (e.activityTaskStartedEventAttributes) {
      const t = acts.get(n(e.activityTaskStartedEventAttributes.scheduledEventId));
      if (t) Object.assign(t, { startedAt: at, attempt: e.activityTaskStartedEventAttributes.attempt ?? 1 });
    } else if (e.activityTaskCompletedEventAttributes) {
      const t = acts.get(n(e.activityTaskCompletedEventAttributes.scheduledEventId));
      if (t)
        Object.assign(t, {
          finishedAt: at,
          result: await decode(e.activityTaskCompletedEventAttributes.result?.payloads?.[0]),
        });
    } else if (e.activityTaskFailedEventAttributes || e.activityTaskTimedOutEventAttributes) {
      const a = (e.activityTaskFailedEventAttributes ?? e.activityTaskTimedOutEventAttributes)!;
      const t = acts.get(n(a.scheduledEventId));
      if (t) Object.assign(t, { finishedAt: at, failure: await failureText(a.failure as Failure, decode) });
    } else if (e.workflowExecutionSignaledEventAttributes) {
      const a = e.workflowExecutionSignaledEventAttributes;
      if (['approve', 'reject', 'cancel'].includes(a.signalName ?? ''))
        signals.push({
          kind: a.signalName!,
          at: at ?? '',
          input: ((await decode(a.input?.payloads?.[0])) ?? {}) as Record<string, unknown>,
        });
    } else if (e.workflowExecutionUpdateAcceptedEventAttributes) {
      const req = e.workflowExecutionUpdateAcceptedEventAttributes.acceptedRequest?.input;
      if (req?.name === 'approveUpdate')
        signals.push({
          kind: 'approve',
          at: at ?? '',
          input: ((await decode(req.args?.payloads?.[0])) ?? {}) as Record<string, unknown>,
        });
    } else if (e.workflowPropertiesModifiedEventAttributes) {
      const p = e.workflowPropertiesModifiedEventAttributes.upsertedMemo?.fields?.planHash;
      if (p) memoPlanHash = String(await decode(p));
    } else if (e.upsertWorkflowSearchAttributesEventAttributes) {
      const p = e.upsertWorkflowSearchAttributesEventAttributes.searchAttributes?.indexedFields?.AmendmentStatus;
      if (p) lastStatus = String(await decode(p));
    } else if (e.workflowExecutionCompletedEventAttributes) {
      final = (await decode(e.workflowExecutionCompletedEventAttributes.result?.payloads?.[0])) as AmendmentView;
      closedAt = at;
    } else if (
      e.workflowExecutionFailedEventAttributes ||
      e.workflowExecutionTerminatedEventAttributes ||
      e.workflowExecutionCanceledEventAttributes ||
      e.workflowExecutionTimedOutEventAttributes
    ) {
      closedAt = at;
      lastStatus = 'failed';
    }
  }

  const all = [...acts.values()];
  const planned = all.find((t) => t.type === 'planAmendment' && t.result) as
    (ActivityTrack & { result: PlanResult }) | undefined;
  const plan: Plan | undefined = planned?.result.plan;
  const doc = input?.amendment ?? {};

  // Operations: the plan's order; outcome from the final view when there is one, timing and attempts from the activities.
  const viewOps = new Map((final?.operations ?? []).map((o) => [o.id, o]));
  const applies = new Map(all.filter((t) => t.type === 'applyOperation').map((t) => [(t.input as Operation).id, t]));
  const compensations = new Map(
    all.filter((t) => t.type === 'compensateOperation').map((t) => [(t.input as { op: Operation }).op.id, t]),
  );
  const ops: Operation[] = plan?.operations ?? [];
  let operations: AuditOperation[] = ops.map((op) => {
    const apply = applies.get(op.id);
    const comp = compensations.get(op.id);
    const v = viewOps.get(op.id);
    const res = apply?.result as (ApplyResult & { attempt: number }) | undefined;
    const outcome: AuditOperation['outcome'] =
      v?.outcome ?? (apply?.failure ? 'failed' : res ? res.outcome : apply ? 'running' : 'pending');
    const dur =
      apply?.scheduledAt && apply.finishedAt ? Date.parse(apply.finishedAt) - Date.parse(apply.scheduledAt) : undefined;
    const u = comp?.result as CompensateResult | undefined;
    return dropUndefined({
      id: op.id,
      target: op.target,
      action: op.action,
      subject: op.subject,
      description: op.description,
      ruleIds: op.ruleIds,
      outcome,
      detail: res?.detail ?? v?.detail,
      error: apply?.failure ?? v?.error,
      attempts: apply?.attempt,
      scheduledAt: apply?.scheduledAt,
      startedAt: apply?.startedAt,
      finishedAt: apply?.finishedAt,
      durationMs: dur,
      compensation: comp
        ? {
            outcome: comp.failure ? 'failed' : (u?.outcome ?? 'running'),
            detail: comp.failure?.message ?? u?.detail,
            at: comp.finishedAt,
            attempts: comp.attempt,
            durationMs:
              comp.scheduledAt && comp.finishedAt
                ? Date.parse(comp.finishedAt) - Date.parse(comp.scheduledAt)
                : undefined,
          }
        : undefined,
    });
  });

  // amendmentV2: the operations are in the operation store under the plan hash; each batch's
  // result in history gives every operation's outcome and attempts, the store the rest.
  const planHash = final?.planHash ?? memoPlanHash;
  const amendmentId = final?.amendmentId ?? String(doc.amendmentId ?? '');
  if (!plan && planHash) {
    const batches = all.filter((t) => t.type === 'applyBatch' && t.result).map((t) => t.result as BatchResult);
    const attempts = new Map(batches.flatMap((b) => b.operations.map(([idx, , a]) => [idx, a] as const)));
    const rows = extra.operations ? await extra.operations(amendmentId, planHash) : [];
    operations =
      rows.length > 0
        ? rows.map((row) => {
            const o = opFromStored(row);
            const a = attempts.get(row.idx);
            return a !== undefined && a > 0 ? { ...o, attempts: a } : o;
          })
        : (final?.operations ?? []).map((o) =>
            dropUndefined({
              ...o,
              durationMs: o.startedAt && o.finishedAt ? Date.parse(o.finishedAt) - Date.parse(o.startedAt) : undefined,
            }),
          );
  }

  // Decisions: as the workflow judged them (final view), else the raw signals (not judged yet).
  const decisions: AuditDecision[] = final?.approval
    ? decisionsFromView(final)
    : signals.map((s) =>
        dropUndefined({
          kind: s.kind,
          by: String(s.input.by ?? '?'),
          at: s.at,
          accepted: false,
          why: 'not yet judged (the workflow is still running)',
          comment: s.input.comment as string | undefined,
          reason: s.input.reason as string | undefined,
        }),
      );
  // The arrival time in history is authoritative for when a decision was received.
  for (const d of decisions) {
    const s = signals.find(
      (x) => x.kind === d.kind && x.input.by === d.by && Math.abs(Date.parse(x.at) - Date.parse(d.at)) < 5_000,
    );
    if (s) d.at = s.at;
  }

  return dropUndefined({
    format: AUDIT_FORMAT,
    source: 'history' as const,
    amendmentId,
    contractId: final?.contractId ?? String(doc.contractId ?? ''),
    sequence: final?.sequence ?? Number(doc.sequence ?? 0),
    customerId: final?.customerId ?? plan?.after.customer.id,
    workflowId: final?.workflowId ?? workflowId,
    runId: extra.runId,
    summary,
    submittedBy: final?.submittedBy ?? String(doc.submittedBy ?? ''),
    submittedAt: startedAt ?? final?.submittedAt ?? '',
    finishedAt: closedAt ?? final?.finishedAt,
    status: (final?.status ?? lastStatus ?? 'queued') as AuditRecord['status'],
    reason: final?.reason,
    reverses: final?.reverses ?? doc.reverses,
    rollback:
      final?.rollback ??
      (input?.options?.rollback && doc.reverses ? { of: doc.reverses, ...input.options.rollback } : undefined),
    rulesetHash: plan?.rulesetHash ?? final?.rulesetHash,
    changes: plan?.changes ?? final?.changes ?? [],
    violations: plan?.violations ?? final?.violations ?? [],
    approval: {
      required: plan?.approval.required ?? final?.approval?.required ?? false,
      reasons: plan?.approval.reasons ?? final?.approval?.reasons ?? [],
      needed: final?.approval?.needed ?? (plan?.approval.required ? (planned?.result.approvalPolicy.required ?? 1) : 0),
      decisions,
    },
    operations,
    leftForOperator: final?.leftForOperator ?? [],
    planHash,
    operationCounts: final?.operationCounts,
  });
}
