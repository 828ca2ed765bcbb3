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
import type { ApprovalPolicy } from '../workflows/definitions';
import { TASK_QUEUE_DEFAULT } from '../workflows/definitions';

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

export const ApprovalPolicySchema = z
  .object({
    approvers: z.array(z.string().min(1)).default(['*']),
    groups: z.record(z.string(), z.array(z.string().min(1))).default({}),
    required: z.number().int().min(1).default(1),
    separationOfDuties: z.boolean().default(true),
  })
  .strict();

export const DEFAULT_APPROVAL_POLICY: ApprovalPolicy = { approvers: ['*'], groups: {}, required: 1, separationOfDuties: true };

export function loadApprovalPolicy(file: string | undefined): ApprovalPolicy {
  if (!file) return DEFAULT_APPROVAL_POLICY;
  return parseWith(ApprovalPolicySchema, parseStructuredText(readFileSync(file, 'utf8'), file), 'invalid approvals file', file);
}
