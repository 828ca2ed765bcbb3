/** Helpers shared by the Temporal-facing commands: argument parsing, connecting, printing a view. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { AmendctlClient, temporalTarget } from '../client';
import { parseAmendmentText } from '../domain/document';
import type { Amendment } from '../domain/amendment';
import type { AmendmentView, OperationView } from '../workflows/definitions';
import { readDocumentFile } from '../worker/config';
import { type CliIO, UsageError } from './io';

export const connectionOptions = {
  address: { type: 'string' },
  namespace: { type: 'string' },
  profile: { type: 'string' },
  'task-queue': { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

/** Options that take a value (`--by dana`), by name. */
export function strings<N extends string>(...names: N[]): { [K in N]: { type: 'string' } } {
  return Object.fromEntries(names.map((n) => [n, { type: 'string' }])) as { [K in N]: { type: 'string' } };
}

/** Options that are flags (`--json`), by name. */
export function flags<N extends string>(...names: N[]): { [K in N]: { type: 'boolean' } } {
  return Object.fromEntries(names.map((n) => [n, { type: 'boolean' }])) as { [K in N]: { type: 'boolean' } };
}

export function parse<O extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: O, usage: string) {
  try {
    return parseArgs({
      args: argv,
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\nusage: ${usage}`);
  }
}

export class TemporalUnreachable extends Error {}

export async function connect(values: {
  address?: string;
  namespace?: string;
  profile?: string;
  'task-queue'?: string;
}): Promise<AmendctlClient> {
  const target = temporalTarget({
    ...(values.address ? { address: values.address } : {}),
    ...(values.namespace ? { namespace: values.namespace } : {}),
    ...(values.profile ? { profile: values.profile } : {}),
  });
  try {
    return await AmendctlClient.connect(target, values['task-queue'] ?? process.env.AMENDCTL_TASK_QUEUE);
  } catch (err) {
    throw new TemporalUnreachable(
      `cannot reach Temporal at ${target.address} (namespace ${target.namespace}): ${(err as Error).message}. Start it with \`amendctl dev\`, or set TEMPORAL_ADDRESS.`,
    );
  }
}

export function readAmendmentFile(file: string): Amendment {
  return parseAmendmentText(readDocumentFile(file, 'amendment'), file);
}

/** What `--json` prints: the documented fields first, then the rest of the view. */
export function viewJson(v: AmendmentView): string {
  const { amendmentId, contractId, workflowId, status, reason, operations, ...rest } = v;
  return JSON.stringify(
    { amendmentId, contractId, workflowId, status, ...(reason ? { reason } : {}), operations, ...rest },
    null,
    2,
  );
}

const OUTCOME_MARK: Record<OperationView['outcome'], string> = {
  pending: '·',
  running: '…',
  applied: '✓',
  unchanged: '=',
  failed: '✗',
  skipped: '-',
  compensated: '↺',
  compensation_failed: '!',
};

/** A concise human summary of an amendment. */
export function viewText(v: AmendmentView): string {
  const lines = [
    `${v.amendmentId} (contract ${v.contractId}, sequence ${v.sequence}): ${v.status}${v.reason ? ` — ${v.reason}` : ''}`,
  ];
  for (const viol of v.violations)
    lines.push(`  invalid: ${viol.message}${viol.ruleId ? ` [rule ${viol.ruleId}]` : ''}`);
  if (v.approval?.required) {
    lines.push(`  approval: ${v.approval.reasons.map((r) => r.message).join('; ')}`);
    for (const a of v.approval.approvals)
      lines.push(`    approved by ${a.by} at ${a.at}${a.comment ? `: ${a.comment}` : ''}`);
    if (v.approval.rejection)
      lines.push(
        `    rejected by ${v.approval.rejection.by} at ${v.approval.rejection.at}: ${v.approval.rejection.reason}`,
      );
    for (const i of v.approval.ignored) lines.push(`    ignored ${i.by} at ${i.at}: ${i.why}`);
  }
  const total = v.operationsTotal ?? v.operations.length;
  if (v.operationCounts && total > v.operations.length) {
    for (const [target, counts] of Object.entries(v.operationCounts)) {
      lines.push(
        `  ${target}: ${Object.entries(counts)
          .map(([o, n]) => `${n} ${o.replace('_', ' ')}`)
          .join(', ')}`,
      );
    }
  }
  for (const p of v.progress ?? [])
    lines.push(
      `  … ${p.target}: batch ${p.batch} of ${p.of}: ${p.done} of ${p.total} operations done${p.failed ? `, ${p.failed} failed` : ''}`,
    );
  const opLine = (op: OperationView): string => {
    const extra = op.error
      ? ` (${op.error.type}: ${op.error.message})`
      : op.compensation
        ? ` (compensation: ${op.compensation.outcome}${op.compensation.detail ? `, ${op.compensation.detail}` : ''})`
        : '';
    return `  ${OUTCOME_MARK[op.outcome]} ${op.outcome.padEnd(11)} ${op.description}${extra}`;
  };
  for (const op of v.operations) lines.push(opLine(op));
  if (total > v.operations.length) {
    const shown = new Set(v.operations.map((o) => o.id));
    for (const f of (v.failures ?? []).filter((x) => !shown.has(x.id))) lines.push(opLine(f));
    lines.push(
      `  … the first ${v.operations.length} of ${total} operations; all of them: amendctl status ${v.amendmentId} --operations`,
    );
  }
  for (const b of v.lostBatches ?? [])
    lines.push(
      `  ✗ ${b.target}: batch ${b.batch} of ${b.of} (operations ${b.from}-${b.to - 1}) could not run: ${b.error.message}`,
    );
  const left = v.leftForOperator ?? [];
  for (const l of left.slice(0, 20)) lines.push(`  left for an operator: ${l}`);
  if (left.length > 20)
    lines.push(`  … and ${left.length - 20} more left for an operator (amendctl status ${v.amendmentId} --operations)`);
  return lines.join('\n');
}

/** Exit code and stderr line for a final status. */
export function finalExit(v: AmendmentView, io: CliIO): number {
  if (v.status === 'completed') return 0;
  if (['invalid', 'rejected', 'rolled_back', 'failed'].includes(v.status)) {
    io.err(`amendctl: ${v.amendmentId} ${v.status}: ${v.reason ?? 'no reason recorded'}`);
    return 1;
  }
  return 0;
}
