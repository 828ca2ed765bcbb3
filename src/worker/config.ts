/**
 * Worker configuration: which Temporal (src/client/connection.ts), which task queue, and
 * the files that make the policy: targets (connectors and where their credentials are),
 * rules, approvals. Defaults are the reference policy in examples/reference.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { parseStructuredText } from '../domain/document';
import { parseWith } from '../domain/errors';
import type { ApprovalPolicy, OrderingPolicy } from '../workflows/definitions';
import { DEFAULT_GAP_DEADLINE_SECONDS, TASK_QUEUE_DEFAULT } from '../workflows/definitions';

export const PROJECT_ROOT = resolve(__dirname, '..', '..');

export interface WorkerFiles {
  targetsFile: string;
  rulesFile: string;
  approvalsFile: string | undefined;
  taskQueue: string;
}

export function workerFiles(env: NodeJS.ProcessEnv = process.env): WorkerFiles {
  return {
    targetsFile: env.AMENDCTL_TARGETS ?? resolve(PROJECT_ROOT, 'examples/reference/targets.yaml'),
    rulesFile: env.AMENDCTL_RULES ?? resolve(PROJECT_ROOT, 'examples/reference/rules.yaml'),
    approvalsFile: env.AMENDCTL_APPROVALS || undefined,
    taskQueue: env.AMENDCTL_TASK_QUEUE ?? TASK_QUEUE_DEFAULT,
  };
}

/** A duration: whole seconds, or a number with a unit: `90s`, `30m`, `72h`, `30d`. */
export const DurationSchema = z.union([
  z.number().int().positive(),
  z
    .string()
    .trim()
    .regex(/^\d+\s*[smhd]$/, 'a duration such as 90s, 30m, 72h or 7d')
    .transform((t) => Number(t.slice(0, -1).trim()) * { s: 1, m: 60, h: 3600, d: 86400 }[t.slice(-1) as 's' | 'm' | 'h' | 'd']),
], { error: 'a duration: whole seconds, or a number with s, m, h or d (90s, 30m, 72h, 7d)' });

const ApproverStageSchema = {
  approvers: z.array(z.string().min(1)),
  groups: z.record(z.string(), z.array(z.string().min(1))).default({}),
  required: z.number().int().min(1).default(1),
};

/**
 * AMENDCTL_APPROVALS (JSON or YAML): who approves, how many, separation of duties, the
 * deadline and what happens at it, reminders; and the ordering policy (gap deadline).
 */
export const ApprovalPolicySchema = z
  .object({
    approvers: ApproverStageSchema.approvers.default(['*']),
    groups: ApproverStageSchema.groups,
    required: ApproverStageSchema.required,
    separationOfDuties: z.boolean().default(true),
    deadline: DurationSchema.optional(),
    onDeadline: z.enum(['reject', 'escalate']).default('reject'),
    escalation: z.object({ ...ApproverStageSchema, deadline: DurationSchema.optional() }).strict().optional(),
    reminderEvery: DurationSchema.optional(),
    ordering: z.object({ gapDeadline: DurationSchema.optional() }).strict().default({}),
  })
  .strict()
  .superRefine((p, ctx) => {
    if (p.onDeadline === 'escalate' && !p.escalation) ctx.addIssue({ code: 'custom', path: ['escalation'], message: 'onDeadline: escalate needs an escalation group' });
    if (p.onDeadline === 'escalate' && p.deadline === undefined) ctx.addIssue({ code: 'custom', path: ['deadline'], message: 'onDeadline: escalate needs a deadline' });
    const groupRefs = (approvers: string[], groups: Record<string, string[]>, path: string[]) => {
      for (const a of approvers) if (a.startsWith('group:') && !groups[a.slice(6)]) ctx.addIssue({ code: 'custom', path, message: `${a} names no group in groups` });
    };
    groupRefs(p.approvers, p.groups, ['approvers']);
    if (p.escalation) groupRefs(p.escalation.approvers, p.escalation.groups, ['escalation', 'approvers']);
  });

export const DEFAULT_APPROVAL_POLICY: ApprovalPolicy = { approvers: ['*'], groups: {}, required: 1, separationOfDuties: true };
export const DEFAULT_ORDERING_POLICY: OrderingPolicy = { gapDeadlineSeconds: DEFAULT_GAP_DEADLINE_SECONDS };

export interface GovernancePolicy {
  approval: ApprovalPolicy;
  ordering: OrderingPolicy;
}

/** The policy from its parsed file content (JSON or YAML already parsed). */
export function governancePolicyFrom(raw: unknown, file?: string): GovernancePolicy {
  const p = parseWith(ApprovalPolicySchema, raw, 'invalid approvals file', file);
  const approval: ApprovalPolicy = {
    approvers: p.approvers,
    groups: p.groups,
    required: p.required,
    separationOfDuties: p.separationOfDuties,
    onDeadline: p.onDeadline,
    ...(p.deadline !== undefined ? { deadlineSeconds: p.deadline } : {}),
    ...(p.reminderEvery !== undefined ? { reminderEverySeconds: p.reminderEvery } : {}),
    ...(p.escalation
      ? { escalation: { approvers: p.escalation.approvers, groups: p.escalation.groups, required: p.escalation.required, ...(p.escalation.deadline !== undefined ? { deadlineSeconds: p.escalation.deadline } : {}) } }
      : {}),
  };
  return { approval, ordering: { gapDeadlineSeconds: p.ordering.gapDeadline ?? DEFAULT_GAP_DEADLINE_SECONDS } };
}

export function loadGovernancePolicy(file: string | undefined): GovernancePolicy {
  if (!file) return { approval: DEFAULT_APPROVAL_POLICY, ordering: DEFAULT_ORDERING_POLICY };
  return governancePolicyFrom(parseStructuredText(readFileSync(file, 'utf8'), file), file);
}

