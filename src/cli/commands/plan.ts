/**
 * amendctl plan FILE [--applied STATE_FILE] [--rules RULES] [--json]
 *
 * The dry run: what the amendment would change in each target, what needs approval and
 * why, or why it is invalid. No Temporal, no side effects. Without --applied, the applied
 * state is replayed from the amendments next to FILE with a lower sequence (same contract).
 * Exit: 0 valid plan, 1 violations, 2 input error.
 */
import { guarded } from '../../domain/guard';
import { loadGovernancePolicy } from '../../worker/config';
import { existsSync, readdirSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Amendment } from '../../domain/amendment';
import { ContractDocumentSchema } from '../../domain/contract';
import { parseAmendmentText, parseStructuredText } from '../../domain/document';
import { InputError, zodIssues } from '../../domain/errors';
import type { Plan } from '../../domain/plan';
import { type AppliedState, AppliedStateSchema, appliedAfter, planAmendment } from '../../domain/planner';
import { type Ruleset, loadRuleset } from '../../domain/rules';
import { readDocumentFile } from '../../worker/config';
import { type CliIO, type Command, UsageError } from '../io';

const USAGE = 'amendctl plan FILE [--applied STATE_FILE] [--rules RULES] [--json]';

/** Read a file for a command; a missing, unreadable or oversized file is an input error naming it. */
export function readInputFile(file: string, what: string): string {
  return readDocumentFile(file, what);
}

/** The rules file: --rules, else $AMENDCTL_RULES, else the reference policy. */
export function rulesFile(explicit: string | undefined): string {
  if (explicit) return explicit;
  if (process.env.AMENDCTL_RULES) return process.env.AMENDCTL_RULES;
  const local = join('examples', 'reference', 'rules.yaml');
  return existsSync(local) ? local : resolve(__dirname, '..', '..', '..', local);
}

export function readRuleset(file: string): Ruleset {
  return loadRuleset(readInputFile(file, 'rules'), file);
}

/** An AppliedState JSON/YAML, or a bare contract (then the applied sequence is the one before). */
function readApplied(file: string, amendment: Amendment): AppliedState {
  const raw = parseStructuredText(readInputFile(file, 'applied state'), file);
  const asState = AppliedStateSchema.safeParse(raw);
  if (asState.success) return asState.data;
  if (raw !== null && typeof raw === 'object' && !('contract' in raw)) {
    const asContract = ContractDocumentSchema.safeParse(raw);
    if (asContract.success)
      return { contract: asContract.data, sequence: amendment.sequence - 1, amendmentId: '(unknown)', previous: null };
    throw new InputError(
      'invalid applied state (expected an AppliedState { contract, sequence, amendmentId, previous } or a contract)',
      zodIssues(asContract.error, file),
    );
  }
  throw new InputError(
    'invalid applied state (expected an AppliedState { contract, sequence, amendmentId, previous } or a contract)',
    zodIssues(asState.error, file),
  );
}

/** Replay the amendments beside `file` (same contract, lower sequence) to get the applied state. */
function replaySiblings(
  file: string,
  amendment: Amendment,
  ruleset: Ruleset,
): { state: AppliedState | null; used: string[] } {
  const dir = dirname(file);
  const self = resolve(file);
  const earlier: Array<{ name: string; a: Amendment }> = [];
  for (const name of readdirSync(dir)
    .filter((n) => /\.(json|ya?ml)$/.test(n))
    .sort()) {
    const path = join(dir, name);
    if (resolve(path) === self) continue;
    let a: Amendment;
    try {
      a = parseAmendmentText(readDocumentFile(path, 'amendment'), path);
    } catch {
      continue; // not an amendment of this story
    }
    if (a.contractId === amendment.contractId && a.sequence < amendment.sequence) earlier.push({ name, a });
  }
  earlier.sort((x, y) => x.a.sequence - y.a.sequence || (x.name < y.name ? -1 : 1));
  let state: AppliedState | null = null;
  const used: string[] = [];
  for (const { name, a } of earlier) {
    const p = planAmendment(a, state, ruleset);
    if (p.violations.length === 0) used.push(name);
    state = appliedAfter(p, state);
  }
  return { state, used };
}

export const planCommand: Command = async (argv, io) => {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        applied: { type: 'string' },
        rules: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\nusage: ${USAGE}`);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.out(
      `usage: ${USAGE}\n\nThe dry run: the plan an amendment gets, with no side effects and no Temporal.\n  --applied STATE_FILE  the applied state (AppliedState JSON, or a contract); default: replay the\n                        amendments of the same contract next to FILE with a lower sequence\n  --rules RULES         the ruleset (default $AMENDCTL_RULES, else examples/reference/rules.yaml)\n  --json                print the Plan as JSON\nExit: 0 valid, 1 invalid (violations), 2 input error.`,
    );
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError(`expected one amendment FILE\nusage: ${USAGE}`);
  const file = positionals[0]!;
  const amendment = parseAmendmentText(readInputFile(file, 'amendment'), file);
  const rules = rulesFile(values.rules);
  const ruleset = readRuleset(rules);

  let applied: AppliedState | null = null;
  let note: string;
  if (values.applied) {
    applied = readApplied(values.applied, amendment);
    note = `applied state from ${values.applied} (sequence ${applied.sequence}, ${applied.amendmentId})`;
  } else if (amendment.sequence > 1 || amendment.reverses) {
    const r = replaySiblings(file, amendment, ruleset);
    applied = r.state;
    note =
      r.used.length > 0
        ? `applied state replayed from ${r.used.join(', ')} in ${dirname(file)} (pass --applied to use a state file)`
        : 'no applied state (none given, none to replay)';
  } else note = 'baseline: nothing applied yet';

  // As the worker plans: the mass-change guard of the approvals file (AMENDCTL_APPROVALS), else its default.
  const plan = guarded(
    planAmendment(amendment, applied, ruleset),
    loadGovernancePolicy(process.env.AMENDCTL_APPROVALS).guard,
  );
  if (values.json) io.out(JSON.stringify(plan, null, 2));
  else io.out(planText(plan, { rules, note, file: basename(file) }));
  return plan.violations.length > 0 ? 1 : 0;
};

function value(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** The plan for a person: changes, then per target what changes, approval and why, violations. */
export function planText(plan: Plan, ctx: { rules: string; note: string; file: string }): string {
  const out: string[] = [];
  out.push(`${ctx.file}: amendment ${plan.amendmentId} (contract ${plan.contractId}, sequence ${plan.sequence})`);
  out.push(`  ${ctx.note}`);
  out.push(`  rules ${ctx.rules} (sha256 ${plan.rulesetHash.slice(0, 12)})`);
  out.push('');
  out.push(plan.changes.length === 0 ? 'changes: none' : `changes (${plan.changes.length}):`);
  for (const c of plan.changes) {
    const mark = c.kind === 'added' ? '+' : c.kind === 'removed' ? '-' : '~';
    const detail =
      c.kind === 'modified'
        ? `${value(c.before)} -> ${value(c.after)}`
        : value(c.kind === 'added' ? c.after : c.before);
    out.push(
      `  ${mark} ${c.path}: ${detail}${c.source ? `   [clause ${c.source.ref}: "${c.source.span.split('\n')[0]}"]` : ''}`,
    );
  }
  out.push('');
  if (plan.violations.length > 0) {
    out.push(
      `INVALID: the amendment is refused and nothing changes (${plan.violations.length} violation${plan.violations.length > 1 ? 's' : ''}):`,
    );
    for (const v of plan.violations) out.push(`  - ${v.message}   [${v.ruleId}]`);
    return out.join('\n');
  }
  out.push(plan.operations.length === 0 ? 'operations: none' : `operations (${plan.operations.length}, in order):`);
  const targets = [...new Set(plan.operations.map((o) => o.target))];
  for (const t of targets) {
    out.push(`  ${t}:`);
    plan.operations.forEach((o, i) => {
      if (o.target !== t) return;
      const text = o.description.startsWith(`${t}: `) ? o.description.slice(t.length + 2) : o.description;
      out.push(
        `    ${String(i + 1).padStart(3)}. ${text}${o.risk === 'high' ? '   (risk: high)' : ''}   [${o.ruleIds.join(', ')}]`,
      );
    });
  }
  out.push('');
  if (!plan.approval.required) out.push('approval: not required; applies with no human in the loop');
  else {
    out.push('approval: REQUIRED before anything changes');
    for (const r of plan.approval.reasons) {
      const why = [
        r.changes?.length ? `changes ${r.changes.join(', ')}` : '',
        r.refs?.length ? `clauses ${r.refs.join(', ')}` : '',
      ]
        .filter(Boolean)
        .join('; ');
      out.push(`  - ${r.message}   [rule ${r.ruleId}${why ? `; ${why}` : ''}]`);
    }
  }
  return out.join('\n');
}

export type { CliIO };
