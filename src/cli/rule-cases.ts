/**
 * Table cases for a ruleset, so a policy author tests a policy like code:
 *
 *   cases:
 *     - name: "1. named user added"
 *       history: [amendments/01-baseline.json]       # planned and applied first, in order
 *       amendment: amendments/02-add-dave.json       # a file (relative to the cases file) or inline
 *       expect:
 *         operations: [idp:ensureAccount:dave@acme.com, ...]   # exactly these, in this order
 *         includes: [...]          # at least these
 *         excludes: [...]          # none of these
 *         approval: true           # approval required or not
 *         approvalRules: [...]     # exactly the rules that ask for it
 *         violations: ["6 named users", "5 seats"]   # each text appears in a violation; [] = valid
 *         changes: [namedUsers[dave@acme.com]]       # exactly these change paths
 *         inverses: { idp:joinGroup:x@y:g: leaveGroup }   # the compensation of an operation
 *
 * Instead of `history`, `applied` gives the applied state inline. The runner of `amendctl rules
 * test` (src/cli/commands/rules.ts). Pure: the caller reads files.
 */
import { z } from 'zod';
import { type Amendment, AmendmentDocumentSchema } from '../domain/amendment';
import { parseAmendmentText, parseStructuredText } from '../domain/document';
import { InputError, parseWith, zodIssues } from '../domain/errors';
import type { Plan } from '../domain/plan';
import { type AppliedState, AppliedStateSchema, appliedAfter, planAmendment } from '../domain/planner';
import type { Ruleset } from '../domain/rules';

const AmendmentRef = z.union([z.string().min(1), z.record(z.string(), z.unknown())]);

const CaseSchema = z
  .object({
    name: z.string().min(1),
    history: z.array(AmendmentRef).optional(),
    applied: z.record(z.string(), z.unknown()).optional(),
    amendment: AmendmentRef,
    expect: z
      .object({
        operations: z.array(z.string()).optional(),
        includes: z.array(z.string()).optional(),
        excludes: z.array(z.string()).optional(),
        approval: z.boolean().optional(),
        approvalRules: z.array(z.string()).optional(),
        violations: z.array(z.string()).optional(),
        changes: z.array(z.string()).optional(),
        /** Operation id -> the action of its inverse (what compensation runs). */
        inverses: z.record(z.string(), z.string()).optional(),
      })
      .strict(),
  })
  .strict()
  .refine((c) => !(c.history && c.applied), { message: 'give history or applied, not both', path: ['applied'] });

export const CasesSchema = z.object({ cases: z.array(CaseSchema).min(1) }).strict();
export type RuleCase = z.output<typeof CaseSchema>;

export interface CaseResult {
  name: string;
  ok: boolean;
  failures: string[];
  plan: Plan;
}

/** Reads a file named in the cases file (relative to it). */
export type CaseFileReader = (relativePath: string) => { text: string; file: string };

/** Parse a cases document; throws InputError naming the file and path. */
export function loadCases(text: string, file: string): RuleCase[] {
  return parseWith(CasesSchema, parseStructuredText(text, file), 'invalid rule cases', file).cases;
}

function amendmentOf(
  ref: string | Record<string, unknown>,
  where: string,
  file: string,
  read: CaseFileReader,
): Amendment {
  if (typeof ref === 'string') {
    const f = read(ref);
    return parseAmendmentText(f.text, f.file);
  }
  const r = AmendmentDocumentSchema.safeParse(ref);
  if (!r.success)
    throw new InputError(
      'invalid amendment in rule cases',
      zodIssues(r.error, file).map((i) => ({ ...i, path: `${where}${i.path ? `.${i.path}` : ''}` })),
    );
  return r.data;
}

/** Run every case; a case that cannot even be read throws InputError. */
export function runCases(
  ruleset: Ruleset,
  cases: readonly RuleCase[],
  file: string,
  read: CaseFileReader,
): CaseResult[] {
  return cases.map((c, i) => {
    const where = `cases[${i}]`;
    let applied: AppliedState | null = null;
    if (c.applied) applied = parseWith(AppliedStateSchema, c.applied, 'invalid applied state in rule cases', file);
    (c.history ?? []).forEach((h, j) => {
      const a = amendmentOf(h, `${where}.history[${j}]`, file, read);
      const p = planAmendment(a, applied, ruleset);
      applied = appliedAfter(p, applied);
    });
    const plan = planAmendment(amendmentOf(c.amendment, `${where}.amendment`, file, read), applied, ruleset);
    const failures = checkExpectations(plan, c.expect);
    return { name: c.name, ok: failures.length === 0, failures, plan };
  });
}

function checkExpectations(plan: Plan, e: RuleCase['expect']): string[] {
  const f: string[] = [];
  const ids = plan.operations.map((o) => o.id);
  if (e.operations) {
    if (JSON.stringify(ids) !== JSON.stringify(e.operations)) {
      const missing = e.operations.filter((x) => !ids.includes(x));
      const extra = ids.filter((x) => !e.operations!.includes(x));
      f.push(
        missing.length === 0 && extra.length === 0
          ? `operations in another order: got ${ids.join(', ')}`
          : `operations differ:${missing.length ? ` missing ${missing.join(', ')};` : ''}${extra.length ? ` unexpected ${extra.join(', ')}` : ''}`,
      );
    }
  }
  for (const x of e.includes ?? []) if (!ids.includes(x)) f.push(`missing operation ${x}`);
  for (const x of e.excludes ?? []) if (ids.includes(x)) f.push(`unexpected operation ${x}`);
  if (e.approval !== undefined && plan.approval.required !== e.approval) {
    f.push(
      `approval ${plan.approval.required ? 'required' : 'not required'}, expected ${e.approval ? 'required' : 'not required'}${plan.approval.reasons.length ? ` (${plan.approval.reasons.map((r) => `${r.ruleId}: ${r.message}`).join('; ')})` : ''}`,
    );
  }
  if (e.approvalRules) {
    const got = plan.approval.reasons.map((r) => r.ruleId);
    if (JSON.stringify(got) !== JSON.stringify(e.approvalRules))
      f.push(`approval rules ${JSON.stringify(got)}, expected ${JSON.stringify(e.approvalRules)}`);
  }
  if (e.violations) {
    const messages = plan.violations.map((v) => v.message);
    if (e.violations.length === 0 && messages.length > 0)
      f.push(`expected valid, got violations: ${messages.join('; ')}`);
    for (const text of e.violations)
      if (!messages.some((m) => m.includes(text)))
        f.push(`no violation mentions "${text}" (got ${messages.length ? messages.join('; ') : 'none'})`);
  }
  if (e.changes) {
    const got = plan.changes.map((c) => c.path);
    if (JSON.stringify(got) !== JSON.stringify(e.changes))
      f.push(`changes ${JSON.stringify(got)}, expected ${JSON.stringify(e.changes)}`);
  }
  for (const [id, action] of Object.entries(e.inverses ?? {})) {
    const op = plan.operations.find((o) => o.id === id);
    if (!op) f.push(`no operation ${id} to check the inverse of`);
    else if (op.inverse.action !== action) f.push(`inverse of ${id} is ${op.inverse.action}, expected ${action}`);
  }
  return f;
}
