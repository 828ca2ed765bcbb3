/**
 * Worker configuration: which Temporal (src/client/connection.ts), which task queue, and
 * the files that make the policy: targets (connectors and where their credentials are),
 * rules, approvals. Defaults are the reference policy in examples/reference.
 */
import { DEFAULT_MASS_CHANGE_GUARD, type MassChangeGuard } from '../domain/guard';
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { parseStructuredText } from '../domain/document';
import { InputError, parseWith } from '../domain/errors';
import { MAX_DOCUMENT_BYTES } from '../domain/text';
import type { ApprovalPolicy, OrderingPolicy } from '../workflows/definitions';
import { DEFAULT_GAP_DEADLINE_SECONDS, TASK_QUEUE_DEFAULT } from '../workflows/definitions';

export const PROJECT_ROOT = resolve(__dirname, '..', '..');

export interface WorkerFiles {
  targetsFile: string;
  rulesFile: string;
  approvalsFile: string | undefined;
  /** The approval keys file (src/approvals/token.ts): whose signatures prove an approver. */
  approvalKeysFile: string | undefined;
  taskQueue: string;
}

export function workerFiles(env: NodeJS.ProcessEnv = process.env): WorkerFiles {
  return {
    targetsFile: env.AMENDCTL_TARGETS ?? resolve(PROJECT_ROOT, 'examples/reference/targets.yaml'),
    rulesFile: env.AMENDCTL_RULES ?? resolve(PROJECT_ROOT, 'examples/reference/rules.yaml'),
    approvalsFile: env.AMENDCTL_APPROVALS || undefined,
    approvalKeysFile: env.AMENDCTL_APPROVAL_KEYS || undefined,
    taskQueue: env.AMENDCTL_TASK_QUEUE ?? TASK_QUEUE_DEFAULT,
  };
}

/**
 * Read a document file (amendment, rules, targets, approvals, cases): a missing, unreadable or
 * oversized file, a directory or a device is an InputError naming the file and what it is for
 * (`source`: where its name came from, such as AMENDCTL_RULES). Never reads more than
 * MAX_DOCUMENT_BYTES: /dev/zero or a FIFO cannot hang the reader.
 */
export function readDocumentFile(file: string, what: string, source?: string): string {
  const fail = (message: string): never => {
    throw new InputError(`cannot read the ${what}${source ? ` (${source})` : ''}`, [{ file, path: '', message }]);
  };
  const reason = (err: unknown): string => {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return 'no such file';
    if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
    if (code === 'ENAMETOOLONG') return 'the file name is too long';
    if (code === 'ENOTDIR') return 'a part of the path is not a directory';
    if (code === 'ERR_INVALID_ARG_VALUE' || code === 'ERR_INVALID_ARG_TYPE')
      return 'not a usable file name (it contains a NUL character)';
    return (err as Error).message;
  };
  let st;
  try {
    st = statSync(file);
  } catch (err) {
    return fail(reason(err));
  }
  if (st.isDirectory()) return fail('a directory, expected a file');
  if (!st.isFile()) return fail('not a regular file (a device, FIFO or socket)');
  if (st.size > MAX_DOCUMENT_BYTES)
    return fail(
      `${st.size} bytes; a document is at most ${MAX_DOCUMENT_BYTES} bytes (${MAX_DOCUMENT_BYTES / (1024 * 1024)} MB)`,
    );
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    return fail(reason(err));
  }
}

/** A duration: whole seconds, or a number with a unit: `90s`, `30m`, `72h`, `30d`. */
export const DurationSchema = z.union(
  [
    z.number().int().positive(),
    z
      .string()
      .trim()
      .regex(/^\d+\s*[smhd]$/, 'a duration such as 90s, 30m, 72h or 7d')
      .transform(
        (t) => Number(t.slice(0, -1).trim()) * { s: 1, m: 60, h: 3600, d: 86400 }[t.slice(-1) as 's' | 'm' | 'h' | 'd'],
      ),
  ],
  { error: 'a duration: whole seconds, or a number with s, m, h or d (90s, 30m, 72h, 7d)' },
);

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
    escalation: z
      .object({ ...ApproverStageSchema, deadline: DurationSchema.optional() })
      .strict()
      .optional(),
    reminderEvery: DurationSchema.optional(),
    ordering: z.object({ gapDeadline: DurationSchema.optional() }).strict().default({}),
    /** src/domain/guard.ts: deactivating more than this needs approval whatever the rules say. */
    massChangeGuard: z
      .object({
        maxAccounts: z.number().int().min(0).default(DEFAULT_MASS_CHANGE_GUARD.maxAccounts),
        maxPercent: z.number().min(0).max(100).default(DEFAULT_MASS_CHANGE_GUARD.maxPercent),
        minAccounts: z.number().int().min(1).default(DEFAULT_MASS_CHANGE_GUARD.minAccounts),
      })
      .strict()
      .default(DEFAULT_MASS_CHANGE_GUARD),
  })
  .strict()
  .superRefine((p, ctx) => {
    if (p.onDeadline === 'escalate' && !p.escalation)
      ctx.addIssue({ code: 'custom', path: ['escalation'], message: 'onDeadline: escalate needs an escalation group' });
    if (p.onDeadline === 'escalate' && p.deadline === undefined)
      ctx.addIssue({ code: 'custom', path: ['deadline'], message: 'onDeadline: escalate needs a deadline' });
    const groupRefs = (approvers: string[], groups: Record<string, string[]>, path: string[]) => {
      for (const a of approvers)
        if (a.startsWith('group:') && !groups[a.slice(6)])
          ctx.addIssue({ code: 'custom', path, message: `${a} names no group in groups` });
    };
    groupRefs(p.approvers, p.groups, ['approvers']);
    if (p.escalation) groupRefs(p.escalation.approvers, p.escalation.groups, ['escalation', 'approvers']);
  });

export const DEFAULT_APPROVAL_POLICY: ApprovalPolicy = {
  approvers: ['*'],
  groups: {},
  required: 1,
  separationOfDuties: true,
};
export const DEFAULT_ORDERING_POLICY: OrderingPolicy = { gapDeadlineSeconds: DEFAULT_GAP_DEADLINE_SECONDS };

export interface GovernancePolicy {
  approval: ApprovalPolicy;
  ordering: OrderingPolicy;
  guard: MassChangeGuard;
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
      ? {
          escalation: {
            approvers: p.escalation.approvers,
            groups: p.escalation.groups,
            required: p.escalation.required,
            ...(p.escalation.deadline !== undefined ? { deadlineSeconds: p.escalation.deadline } : {}),
          },
        }
      : {}),
  };
  return {
    approval,
    ordering: { gapDeadlineSeconds: p.ordering.gapDeadline ?? DEFAULT_GAP_DEADLINE_SECONDS },
    guard: p.massChangeGuard,
  };
}

export function loadGovernancePolicy(file: string | undefined): GovernancePolicy {
  if (!file)
    return { approval: DEFAULT_APPROVAL_POLICY, ordering: DEFAULT_ORDERING_POLICY, guard: DEFAULT_MASS_CHANGE_GUARD };
  return governancePolicyFrom(
    parseStructuredText(readDocumentFile(file, 'approvals file', 'AMENDCTL_APPROVALS'), file),
    file,
  );
}
