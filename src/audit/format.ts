/** An audit record as JSON, CSV (one row per fact, for spreadsheets) or Markdown (a report a reviewer reads). */
import type { Change } from '../domain/plan';
import { type AuditRecord, proofText } from './record';

export type AuditFormat = 'json' | 'csv' | 'md';
export const AUDIT_FORMATS: AuditFormat[] = ['json', 'csv', 'md'];

export function formatRecords(records: AuditRecord[], format: AuditFormat, single: boolean): string {
  if (format === 'json') return JSON.stringify(single ? records[0] : records, null, 2);
  if (format === 'csv') return toCsv(records);
  return records.map(toMarkdown).join('\n\n---\n\n');
}

// ---- CSV ----

const CSV_COLUMNS = [
  'amendment_id',
  'contract_id',
  'sequence',
  'status',
  'kind',
  'at',
  'who_or_target',
  'subject',
  'what',
  'outcome',
  'attempts',
  'duration_ms',
  'rules',
  'detail',
] as const;

function csvCell(v: unknown): string {
  const s = v === undefined || v === null ? '' : String(v);
  // Quote always when needed; a leading =,+,-,@ is neutralised so a spreadsheet never runs it as a formula.
  const safe = /^[=+\-@\t\r]/.test(s) ? `'${s}` : s;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function toCsv(records: AuditRecord[]): string {
  const rows: string[][] = [];
  for (const r of records) {
    const base = [r.amendmentId, r.contractId, String(r.sequence), r.status];
    const row = (
      kind: string,
      at: string | undefined,
      who: string,
      subject: string,
      what: string,
      outcome: string,
      attempts?: number,
      durationMs?: number,
      rules?: string[],
      detail?: string,
    ) =>
      rows.push(
        [
          ...base,
          kind,
          at ?? '',
          who,
          subject,
          what,
          outcome,
          attempts === undefined ? '' : String(attempts),
          durationMs === undefined ? '' : String(durationMs),
          (rules ?? []).join(' '),
          detail ?? '',
        ].map(csvCell),
      );
    row(
      'submitted',
      r.submittedAt,
      r.submittedBy,
      '',
      r.summary ?? `amendment ${r.amendmentId}`,
      '',
      undefined,
      undefined,
      undefined,
      r.rulesetHash ? `ruleset ${r.rulesetHash}` : '',
    );
    for (const c of r.changes)
      row(
        'change',
        undefined,
        '',
        c.key ?? '',
        changeText(c),
        c.kind,
        undefined,
        undefined,
        undefined,
        c.source ? `${c.source.ref}: ${c.source.span}` : '',
      );
    for (const v of r.violations)
      row('violation', undefined, '', '', v.message, 'invalid', undefined, undefined, v.ruleId ? [v.ruleId] : []);
    for (const a of r.approval.reasons)
      row('approval_required', undefined, '', '', a.message, '', undefined, undefined, a.ruleId ? [a.ruleId] : []);
    for (const d of r.approval.decisions)
      row(
        d.kind,
        d.at,
        d.by,
        '',
        d.reason ?? d.comment ?? '',
        d.accepted ? 'accepted' : 'ignored',
        undefined,
        undefined,
        undefined,
        d.why ?? (d.proof ? proofText(d.proof) : undefined),
      );
    for (const o of r.operations) {
      row(
        'operation',
        o.startedAt ?? o.scheduledAt,
        o.target,
        o.subject,
        o.description,
        o.outcome,
        o.attempts,
        o.durationMs,
        o.ruleIds,
        o.error ? `${o.error.type}: ${o.error.message}` : o.detail,
      );
      if (o.compensation)
        row(
          'compensation',
          o.compensation.at,
          o.target,
          o.subject,
          `compensate ${o.description}`,
          o.compensation.outcome,
          o.compensation.attempts,
          o.compensation.durationMs,
          o.ruleIds,
          o.compensation.detail,
        );
    }
    row('finished', r.finishedAt, '', '', r.reason ?? '', r.status);
    for (const l of r.leftForOperator) row('left_for_operator', r.finishedAt, '', '', l, 'open');
  }
  return [CSV_COLUMNS.join(','), ...rows.map((r) => r.join(','))].join('\n');
}

// ---- Markdown ----

const json = (v: unknown): string => (v === undefined ? '(none)' : typeof v === 'string' ? v : JSON.stringify(v));
const md = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function changeText(c: Change): string {
  if (c.kind === 'added')
    return `added ${c.path}${c.after !== undefined && typeof c.after !== 'object' ? ` = ${json(c.after)}` : c.after !== undefined ? `: ${json(c.after)}` : ''}`;
  if (c.kind === 'removed') return `removed ${c.path}${c.before !== undefined ? ` (was ${json(c.before)})` : ''}`;
  return `changed ${c.path} from ${json(c.before)} to ${json(c.after)}`;
}

function took(msValue: number | undefined): string {
  if (msValue === undefined) return '';
  return msValue < 1000 ? `${msValue} ms` : `${(msValue / 1000).toFixed(1)} s`;
}

const OUTCOME_WORD: Record<string, string> = {
  applied: 'done',
  unchanged: 'already so (nothing to do)',
  failed: 'FAILED',
  skipped: 'skipped (an earlier step failed)',
  compensated: 'done, then compensated',
  compensation_failed: 'done; COMPENSATION FAILED',
  pending: 'not started',
  running: 'in progress',
};

export function toMarkdown(r: AuditRecord): string {
  const out: string[] = [];
  out.push(`# Audit record: amendment ${r.amendmentId}`);
  out.push('');
  out.push(`**Outcome: ${r.status.replace('_', ' ')}**${r.reason ? ` — ${r.reason}` : ''}`);
  out.push('');
  out.push('| | |', '|---|---|');
  out.push(
    `| Contract | ${md(r.contractId)}, version ${r.sequence}${r.customerId ? ` (customer ${md(r.customerId)})` : ''} |`,
  );
  if (r.summary) out.push(`| Summary | ${md(r.summary)} |`);
  out.push(`| Submitted | by ${md(r.submittedBy)} at ${r.submittedAt} |`);
  if (r.finishedAt)
    out.push(
      `| Finished | ${r.finishedAt}${r.submittedAt ? ` (${took(Date.parse(r.finishedAt) - Date.parse(r.submittedAt))} after submission)` : ''} |`,
    );
  if (r.reverses) out.push(`| Reverses | amendment ${md(r.reverses)} |`);
  if (r.rollback) out.push(`| Reversal | requested by ${md(r.rollback.requestedBy)}: ${md(r.rollback.reason)} |`);
  out.push(
    `| Policy | ruleset ${r.rulesetHash ? `\`${r.rulesetHash.slice(0, 16)}…\` (sha256 ${r.rulesetHash})` : 'not reached (the amendment stopped before planning)'} |`,
  );
  out.push(`| Workflow | ${md(r.workflowId)}${r.runId ? ` run ${r.runId}` : ''} |`);
  out.push(
    `| Record built from | ${r.source === 'history' ? 'the workflow history (every event)' : "the workflow's final state (durable audit log)"} |`,
  );

  out.push('', '## 1. What changed in the contract', '');
  if (r.changes.length === 0) out.push('No change to the contract.');
  for (const c of r.changes)
    out.push(`- ${md(changeText(c))}${c.source ? ` — from clause ${c.source.ref}: “${c.source.span}”` : ''}`);

  out.push('', '## 2. The plan and the rules that produced it', '');
  if (r.violations.length > 0) {
    out.push('The amendment was refused before anything changed:');
    for (const v of r.violations) out.push(`- ${md(v.message)}${v.ruleId ? ` (rule \`${v.ruleId}\`)` : ''}`);
    out.push('');
  }
  if (r.operations.length === 0) out.push('No operation on any target was needed.');
  else {
    const byRule = new Map<string, number>();
    for (const o of r.operations) for (const id of o.ruleIds) byRule.set(id, (byRule.get(id) ?? 0) + 1);
    out.push(
      `${r.operations.length} operation${r.operations.length === 1 ? '' : 's'} planned, by rule: ${[...byRule].map(([id, k]) => `\`${id}\` (${k})`).join(', ') || 'none named'}.`,
    );
  }

  out.push('', '## 3. Approval', '');
  if (!r.approval.required)
    out.push('Not required: the plan grants no admin role and does not terminate the contract.');
  else {
    out.push(`Required (${r.approval.needed} approval${r.approval.needed === 1 ? '' : 's'} needed), because:`);
    for (const a of r.approval.reasons) out.push(`- ${md(a.message)}${a.ruleId ? ` (rule \`${a.ruleId}\`)` : ''}`);
  }
  if (r.approval.decisions.length > 0) {
    out.push('', '| When | Who | Decision | Counted? | Note |', '|---|---|---|---|---|');
    for (const d of r.approval.decisions) {
      out.push(
        `| ${d.at} | ${md(d.by)}${d.proof ? ` (${md(proofText(d.proof))})` : ''} | ${d.kind === 'approve' ? 'approved' : d.kind === 'reject' ? 'rejected' : d.kind} | ${d.accepted ? 'yes' : `no — ${md(d.why ?? 'ignored')}`} | ${md(d.reason ?? d.comment ?? '')} |`,
      );
    }
  } else if (r.approval.required) out.push('', 'No decision was received.');

  out.push('', '## 4. Operations on the targets', '');
  if (r.operations.length === 0) out.push('None.');
  else {
    out.push(
      '| # | Target | What | Rules | Result | Attempts | Started | Took | Detail |',
      '|---|---|---|---|---|---|---|---|---|',
    );
    r.operations.forEach((o, i) => {
      const detail = o.error ? `${o.error.type}: ${o.error.message}` : (o.detail ?? '');
      out.push(
        `| ${i + 1} | ${md(o.target)} | ${md(o.description)} | ${o.ruleIds.map((x) => `\`${x}\``).join(' ')} | ${OUTCOME_WORD[o.outcome] ?? o.outcome} | ${o.attempts ?? ''} | ${o.startedAt ?? ''} | ${took(o.durationMs)} | ${md(detail)} |`,
      );
    });
  }

  const compensated = r.operations.filter((o) => o.compensation);
  out.push('', '## 5. Compensations (after a failure or a cancellation)', '');
  if (compensated.length === 0) out.push('None: nothing had to be compensated.');
  else {
    out.push(
      'Applied operations were compensated newest first:',
      '',
      '| Compensation of | Result | When | Detail |',
      '|---|---|---|---|',
    );
    for (const o of [...compensated].sort((a, b) => (a.compensation!.at ?? '').localeCompare(b.compensation!.at ?? '')))
      out.push(
        `| ${md(o.description)} | ${o.compensation!.outcome} | ${o.compensation!.at ?? ''} | ${md(o.compensation!.detail ?? '')} |`,
      );
  }
  if (r.leftForOperator.length > 0) {
    out.push('', '## Left for an operator', '');
    for (const l of r.leftForOperator) out.push(`- ${md(l)}`);
  }
  return out.join('\n');
}
