/**
 * The planner: an amendment, the applied state and a ruleset in; a Plan out.
 *
 * 1. Normalise the amendment (any form) into the contract it produces and the canonical
 *    change set `diff(before, after)`; what cannot be read is a violation.
 * 2. Validations: any that holds makes the amendment invalid (no operations).
 * 3. Rules: for each change, only the rules indexed under it are considered; each action
 *    renders operations (with `forEach`).
 * 4. Net effect: duplicates merge (rule ids united); opposite operations on one subject
 *    resolve to the removing one (leave over join, revoke over grant, deactivate over
 *    reactivate), ensureAccount makes a reactivate redundant; ensure + deactivate keep both.
 * 5. Order: ensure, reactivate, update, leave, revoke, join, grant, deactivate; then target
 *    (ruleset order), subject, group/role.
 * 6. Approval: each rule that fired with `approval` decides, over the finished plan.
 *
 * Business problems are violations in the plan, never exceptions. Pure: no I/O.
 */
import { z } from 'zod';
import { type Amendment, BusinessIdSchema } from './amendment';
import { type CelContext, CelEvalError, celText, toCel } from './cel';
import { contractFromClauses, sourceFor } from './clauses';
import { applyEdits } from './edits';
import { type Contract, ContractDocumentSchema, canonicalContract } from './contract';
import { changeField, diff } from './diff';
import { zodIssues } from './errors';
import type { JsonObject, JsonValue } from './json';
import type { Action, ApprovalReason, Change, ChangeSource, Operation, Plan, Risk, Violation } from './plan';
import { ANY, type CompiledAction, type CompiledRule, NONE, type Ruleset, indexKey, isRisk } from './rules';

export interface AppliedState {
  contract: Contract;
  sequence: number;
  amendmentId: string;
  /** The contract before the last applied amendment (null when that was the baseline). */
  previous: Contract | null;
}

/** An applied state read from a document (`amendctl plan --applied`, rule cases): its contracts read as documents from outside are. */
export const AppliedStateSchema = z
  .object({
    contract: ContractDocumentSchema,
    sequence: z.number().int().min(1),
    amendmentId: BusinessIdSchema,
    previous: ContractDocumentSchema.nullable().default(null),
  })
  .strict();

/** The applied state once `plan` has completed; an invalid plan changes nothing (and consumes no sequence). */
export function appliedAfter(plan: Plan, applied: AppliedState | null): AppliedState | null {
  if (plan.violations.length > 0) return applied;
  return { contract: plan.after, sequence: plan.sequence, amendmentId: plan.amendmentId, previous: plan.before };
}

/** Rule id of violations found while reading the amendment itself (not by a rule). */
export const AMENDMENT_RULE = 'amendment';

export interface Normalised {
  before: Contract | null;
  /** Null when the amendment could not be turned into a valid contract. */
  after: Contract | null;
  changes: Change[];
  violations: Violation[];
}

/** Any amendment form -> the contract it produces and the canonical change set. */
export function normaliseAmendment(amendment: Amendment, applied: AppliedState | null): Normalised {
  const before = applied?.contract ? canonicalContract(applied.contract) : null;
  const violations: Violation[] = [];
  const refuse = (message: string): Normalised => ({
    before,
    after: null,
    changes: [],
    violations: [{ ruleId: AMENDMENT_RULE, message }],
  });

  if (amendment.reverses !== undefined) {
    const x = amendment.reverses;
    if (!applied)
      return refuse(`cannot reverse ${x}: nothing has been applied to contract ${amendment.contractId} yet`);
    if (applied.amendmentId !== x) {
      return refuse(
        `cannot reverse ${x}: only the last applied amendment of contract ${amendment.contractId} can be reversed, and that is ${applied.amendmentId} (sequence ${applied.sequence})`,
      );
    }
    if (applied.previous === null)
      return refuse(
        `cannot reverse ${x}: it is the baseline of contract ${amendment.contractId}; a baseline has no earlier state to restore (terminate the contract instead)`,
      );
    const after = canonicalContract(applied.previous);
    return { before, after, changes: diff(before, after), violations };
  }

  let draft: unknown;
  let sources: Map<string, ChangeSource> | undefined;
  let where: string;
  if (amendment.contract) {
    draft = amendment.contract;
    where = 'contract';
  } else if (amendment.changes) {
    if (!before)
      return refuse(
        `a changes amendment needs the applied contract; contract ${amendment.contractId} has none (sequence 1 must carry the whole contract as contract or clauses)`,
      );
    const r = applyEdits(before, amendment.changes);
    for (const p of r.problems) violations.push({ ruleId: AMENDMENT_RULE, message: `${p.path}: ${p.message}` });
    draft = r.draft;
    where = 'the amended contract';
  } else if (amendment.clauses) {
    const r = contractFromClauses(before, amendment.clauses);
    for (const p of r.problems) violations.push({ ruleId: AMENDMENT_RULE, message: `clause ${p.ref}: ${p.message}` });
    draft = r.draft;
    sources = r.sources;
    where = 'the contract the clauses describe';
  } else {
    return refuse('the amendment carries no contract, changes or clauses');
  }
  if (violations.length > 0) return { before, after: null, changes: [], violations };

  // Whatever the form, the contract it produces is read as a document from outside would be
  // (unknown fields, ASCII emails, calendar dates, clean text): one bad part refuses the whole.
  const parsed = ContractDocumentSchema.safeParse(draft);
  if (!parsed.success) {
    for (const i of zodIssues(parsed.error))
      violations.push({ ruleId: AMENDMENT_RULE, message: `${where}: ${i.path || '(root)'}: ${i.message}` });
    return { before, after: null, changes: [], violations };
  }
  const after = canonicalContract(parsed.data);
  if (before && before.customer.id !== after.customer.id) {
    return refuse(
      `the customer id cannot change (${before.customer.id} -> ${after.customer.id}): groups and accounts are named after it`,
    );
  }
  const changes = diff(before, after);
  if (sources) {
    for (const c of changes) {
      const s = sourceFor(sources, c.path, c.clause);
      if (s) c.source = s;
    }
  }
  return { before, after, changes, violations };
}

// ------------------------------------------------------------------------------------------

const PHASE: Record<Action, number> = {
  ensureAccount: 0,
  reactivateAccount: 1,
  updateAttributes: 2,
  leaveGroup: 3,
  revokeRole: 4,
  joinGroup: 5,
  grantRole: 6,
  deactivateAccount: 7,
};

const DEFAULT_RISK: Record<Action, Risk> = {
  ensureAccount: 'low',
  updateAttributes: 'low',
  joinGroup: 'low',
  grantRole: 'medium',
  reactivateAccount: 'medium',
  leaveGroup: 'medium',
  revokeRole: 'medium',
  deactivateAccount: 'medium',
};
const RISK_RANK: Record<Risk, number> = { low: 0, medium: 1, high: 2 };

interface Candidate {
  id: string;
  target: string;
  action: Action;
  subject: string;
  name?: string;
  attributes?: Record<string, string>;
  inverseAttributes?: Record<string, string>;
  risk: Risk;
  ruleIds: string[];
}

interface Fired {
  rule: CompiledRule;
  changes: string[];
  refs: string[];
}

const PLACEHOLDER: Contract = {
  customer: { id: 'unknown', name: '(no contract)' },
  status: 'suspended',
  tier: 'unknown',
  seats: 0,
  modules: [],
  namedUsers: [],
  term: { start: '1970-01-01' },
  region: 'unknown',
  custom: {},
};

/** Plan an amendment against the applied state (null: nothing applied yet) with a ruleset. */
export function planAmendment(amendment: Amendment, applied: AppliedState | null, ruleset: Ruleset): Plan {
  const n = normaliseAmendment(amendment, applied);
  const head = {
    amendmentId: amendment.amendmentId,
    contractId: amendment.contractId,
    sequence: amendment.sequence,
    rulesetHash: ruleset.hash,
  };
  const refused = (violations: Violation[], changes: Change[]): Plan => ({
    ...head,
    changes,
    operations: [],
    approval: { required: false, reasons: [] },
    violations,
    before: n.before,
    after: n.before ?? PLACEHOLDER,
  });
  if (n.violations.length > 0 || !n.after) return refused(n.violations, n.changes);

  const planner = new Planner(ruleset, n.before, n.after, n.changes);
  planner.validate();
  if (planner.violations.length > 0) return refused(planner.violations, n.changes);
  planner.runRules();
  const operations = planner.operations();
  const approval = planner.approvals(operations);
  if (planner.violations.length > 0) return refused(planner.violations, n.changes);
  return { ...head, changes: n.changes, operations, approval, violations: [], before: n.before, after: n.after };
}

class Planner {
  readonly violations: Violation[] = [];
  private readonly base: CelContext;
  private readonly candidates = new Map<string, Candidate>();
  private readonly fired = new Map<string, Fired>();
  private readonly usersBefore: Map<string, unknown>;
  private readonly usersAfter: Map<string, unknown>;
  /** `${target}\u0000${group or role}` -> contract role, from the role map. */
  private readonly grantsRole = new Map<string, string>();

  constructor(
    private readonly ruleset: Ruleset,
    before: Contract | null,
    after: Contract,
    private readonly changes: Change[],
  ) {
    const customer = after.customer.id;
    const celBefore = before ? (toCel(before) as Record<string, unknown>) : null;
    const celAfter = toCel(after) as Record<string, unknown>;
    const roleMaps: Record<string, Record<string, string>> = {};
    for (const [role, perTarget] of ruleset.roleMap) {
      const m: Record<string, string> = {};
      for (const [target, t] of perTarget) {
        m[target] = t.render({ customer });
        this.grantsRole.set(`${target}\u0000${m[target]}`, role);
      }
      roleMaps[role] = m;
    }
    const moduleMaps: Record<string, Record<string, string>> = {};
    for (const module of new Set([...(before?.modules ?? []), ...after.modules])) {
      const perTarget = ruleset.moduleMap.get(module) ?? ruleset.moduleMap.get(ANY);
      if (!perTarget) continue;
      const m: Record<string, string> = {};
      for (const [target, t] of perTarget) m[target] = t.render({ customer, module });
      moduleMaps[module] = m;
    }
    this.base = {
      before: celBefore,
      after: celAfter,
      customer,
      maps: { role: roleMaps, module: moduleMaps },
      changes: toCel(changes),
      change: null,
      user: null,
      userBefore: null,
      module: null,
      plan: null,
      rule: null,
      item: null,
    };
    this.usersBefore = new Map(
      ((celBefore?.['namedUsers'] as Array<{ email: string }>) ?? []).map((u) => [u.email, u]),
    );
    this.usersAfter = new Map((celAfter['namedUsers'] as Array<{ email: string }>).map((u) => [u.email, u]));
  }

  private guard<T>(ruleId: string, what: string, f: () => T): T | undefined {
    try {
      return f();
    } catch (err) {
      if (!(err instanceof CelEvalError)) throw err;
      this.violations.push({ ruleId, message: `${what} could not be evaluated: ${err.message}` });
      return undefined;
    }
  }

  private truthy(ruleId: string, what: string, v: unknown): boolean {
    if (typeof v === 'boolean') return v;
    this.violations.push({ ruleId, message: `${what} must be true or false, but gave ${celText(v) || 'null'}` });
    return false;
  }

  private list(ruleId: string, what: string, v: unknown): unknown[] {
    if (Array.isArray(v)) return v;
    if (v instanceof Set) return [...(v as Set<unknown>)];
    this.violations.push({ ruleId, message: `${what} must give a list, but gave ${celText(v) || 'null'}` });
    return [];
  }

  validate(): void {
    for (const v of this.ruleset.validations) {
      const items = v.forEach
        ? (this.guard(v.id, 'forEach', () => this.list(v.id, 'forEach', v.forEach!(this.base))) ?? [])
        : [undefined];
      for (const item of items) {
        const ctx = v.forEach ? { ...this.base, [v.as]: item } : this.base;
        const hit = this.guard(v.id, 'when', () => this.truthy(v.id, 'when', v.when(ctx)));
        if (!hit) continue;
        const message = this.guard(v.id, 'message', () => v.message.render(ctx));
        if (message !== undefined) this.violations.push({ ruleId: v.id, message });
      }
    }
  }

  private changeContext(c: Change): CelContext {
    const field = changeField(c.path);
    const ctx: CelContext = {
      ...this.base,
      change: {
        kind: c.kind,
        clause: c.clause,
        path: c.path,
        key: c.key ?? null,
        field: field ?? null,
        before: toCel(c.before ?? null),
        after: toCel(c.after ?? null),
        ref: c.source?.ref ?? null,
      },
    };
    if (c.clause === 'namedUsers' && c.key !== undefined) {
      ctx['userBefore'] = this.usersBefore.get(c.key) ?? null;
      ctx['user'] = this.usersAfter.get(c.key) ?? ctx['userBefore'];
    } else if (c.clause === 'modules' && c.key !== undefined) ctx['module'] = c.key;
    return ctx;
  }

  private rulesFor(c: Change): CompiledRule[] {
    const field = c.clause === 'custom' ? NONE : (changeField(c.path) ?? NONE);
    const key = c.clause === 'custom' ? c.path.slice('custom.'.length) : (c.key ?? NONE);
    const found: CompiledRule[] = [];
    for (const cl of [c.clause, ANY]) {
      for (const k of [c.kind, ANY]) {
        for (const f of [field, ANY]) {
          for (const y of [key, ANY]) {
            const hit = this.ruleset.index.get(indexKey(cl, k, f, y));
            if (hit) for (const r of hit) if (!found.includes(r)) found.push(r);
          }
        }
      }
    }
    return found.length > 1 ? found.sort((a, b) => a.index - b.index) : found;
  }

  runRules(): void {
    for (const c of this.changes) {
      const rules = this.rulesFor(c);
      if (rules.length === 0) continue;
      const ctx = this.changeContext(c);
      for (const rule of rules) {
        if (rule.when) {
          const ok = this.guard(rule.id, 'when', () => this.truthy(rule.id, 'when', rule.when!(ctx)));
          if (!ok) continue;
        }
        const f = this.fired.get(rule.id) ?? { rule, changes: [], refs: [] };
        f.changes.push(c.path);
        if (c.source && !f.refs.includes(c.source.ref)) f.refs.push(c.source.ref);
        this.fired.set(rule.id, f);
        for (const action of rule.actions)
          this.guard(rule.id, `action ${action.action} on ${action.target}`, () => this.runAction(rule, action, ctx));
      }
    }
  }

  private runAction(rule: CompiledRule, a: CompiledAction, ctx: CelContext): void {
    const items = a.forEach ? this.list(rule.id, `forEach of ${a.action}`, a.forEach(ctx)) : [undefined];
    for (const item of items) {
      const ictx = a.forEach ? { ...ctx, [a.as]: item } : ctx;
      if (a.when && !this.truthy(rule.id, `when of ${a.action}`, a.when(ictx))) continue;
      const subject = a.subject.render(ictx);
      const name = (a.group ?? a.role)?.render(ictx);
      if (!subject || name === '') {
        this.violations.push({
          ruleId: rule.id,
          message: `${a.action} on ${a.target} rendered an empty ${subject ? (a.group ? 'group' : 'role') : 'subject'}`,
        });
        continue;
      }
      let risk: Risk = DEFAULT_RISK[a.action];
      if (a.risk) {
        const r = a.risk.render(ictx);
        if (!isRisk(r)) {
          this.violations.push({
            ruleId: rule.id,
            message: `risk of ${a.action} on ${a.target} must be low, medium or high, but gave "${r}"`,
          });
          continue;
        }
        risk = r;
      }
      const cand: Candidate = {
        id: `${a.target}:${a.action}:${subject}${name !== undefined ? `:${name}` : ''}`,
        target: a.target,
        action: a.action,
        subject,
        risk,
        ruleIds: [rule.id],
      };
      if (name !== undefined) cand.name = name;
      if (a.attributes) {
        cand.attributes = Object.fromEntries(a.attributes.map(([k, t]) => [k, t.render(ictx)]));
        if (a.action === 'updateAttributes') {
          const prior = { ...ictx, user: ictx['userBefore'] ?? ictx['user'] };
          cand.inverseAttributes = Object.fromEntries(a.attributes.map(([k, t]) => [k, t.render(prior)]));
        }
      }
      this.add(cand);
    }
  }

  private add(c: Candidate): void {
    const prior = this.candidates.get(c.id);
    if (!prior) {
      this.candidates.set(c.id, c);
      return;
    }
    for (const r of c.ruleIds) if (!prior.ruleIds.includes(r)) prior.ruleIds.push(r);
    if (RISK_RANK[c.risk] > RISK_RANK[prior.risk]) prior.risk = c.risk;
    if (c.attributes) prior.attributes = { ...c.attributes, ...prior.attributes };
    if (c.inverseAttributes) prior.inverseAttributes = { ...c.inverseAttributes, ...prior.inverseAttributes };
  }

  operations(): Operation[] {
    const opposite: Partial<Record<Action, Action[]>> = {
      leaveGroup: ['joinGroup'],
      revokeRole: ['grantRole'],
      deactivateAccount: ['reactivateAccount'],
      ensureAccount: ['reactivateAccount'],
    };
    for (const c of [...this.candidates.values()]) {
      for (const loser of opposite[c.action] ?? [])
        this.candidates.delete(`${c.target}:${loser}:${c.subject}${c.name !== undefined ? `:${c.name}` : ''}`);
    }
    const targetRank = new Map(this.ruleset.targets.map((t, i) => [t, i]));
    const list = [...this.candidates.values()].sort(
      (a, b) =>
        PHASE[a.action] - PHASE[b.action] ||
        (targetRank.get(a.target) ?? 0) - (targetRank.get(b.target) ?? 0) ||
        cmp(a.subject, b.subject) ||
        cmp(a.name ?? '', b.name ?? ''),
    );
    return list.map((c) => this.toOperation(c));
  }

  private toOperation(c: Candidate): Operation {
    const params: JsonObject = {};
    let inverse: Operation['inverse'];
    let description: string;
    const who = c.subject;
    switch (c.action) {
      case 'ensureAccount':
        params['attributes'] = (c.attributes ?? {}) as JsonObject;
        inverse = { action: 'removeAccount', params: {} };
        description = `ensure account ${who} exists and is active`;
        break;
      case 'updateAttributes': {
        params['attributes'] = (c.attributes ?? {}) as JsonObject;
        inverse = { action: 'restoreAttributes', params: { attributes: (c.inverseAttributes ?? {}) as JsonObject } };
        const what = Object.entries(c.attributes ?? {})
          .map(([k, v]) => `${k} to "${v}"`)
          .join(', ');
        description = `set ${what} for ${who}`;
        break;
      }
      case 'deactivateAccount':
        inverse = { action: 'reactivateAccount', params: {} };
        description = `deactivate ${who}`;
        break;
      case 'reactivateAccount':
        inverse = { action: 'deactivateAccount', params: {} };
        description = `reactivate ${who}`;
        break;
      case 'joinGroup':
        params['group'] = c.name!;
        inverse = { action: 'leaveGroup', params: { group: c.name! } };
        description = `add ${who} to group ${c.name}`;
        break;
      case 'leaveGroup':
        params['group'] = c.name!;
        inverse = { action: 'joinGroup', params: { group: c.name! } };
        description = `remove ${who} from group ${c.name}`;
        break;
      case 'grantRole':
        params['role'] = c.name!;
        inverse = { action: 'revokeRole', params: { role: c.name! } };
        description = `grant ${c.name} to ${who}`;
        break;
      case 'revokeRole':
        params['role'] = c.name!;
        inverse = { action: 'grantRole', params: { role: c.name! } };
        description = `revoke ${c.name} from ${who}`;
        break;
    }
    return {
      id: c.id,
      target: c.target,
      action: c.action,
      subject: c.subject,
      params,
      inverse,
      risk: c.risk,
      ruleIds: c.ruleIds,
      description: `${c.target}: ${description}`,
    };
  }

  approvals(operations: Operation[]): Plan['approval'] {
    const reasons: ApprovalReason[] = [];
    const pending = [...this.fired.values()]
      .filter((f) => f.rule.approval.mode !== 'never')
      .sort((a, b) => a.rule.index - b.rule.index);
    if (pending.length === 0) return { required: false, reasons };
    const ops = operations.map((o) => {
      const name = (o.params['group'] ?? o.params['role'] ?? null) as JsonValue;
      const grants =
        (o.action === 'joinGroup' || o.action === 'grantRole') && typeof name === 'string'
          ? (this.grantsRole.get(`${o.target}\u0000${name}`) ?? null)
          : null;
      return {
        id: o.id,
        target: o.target,
        action: o.action,
        subject: o.subject,
        group: o.params['group'] ?? null,
        role: o.params['role'] ?? null,
        name,
        risk: o.risk,
        ruleIds: o.ruleIds,
        grants,
      };
    });
    const plan = {
      operations: ops,
      changes: this.base['changes'],
      grants: ops
        .filter((o) => o.grants !== null)
        .map((o) => ({ target: o.target, subject: o.subject, name: o.name, role: o.grants })),
    };
    for (const f of pending) {
      const { rule } = f;
      const ctx: CelContext = {
        ...this.base,
        plan,
        rule: {
          id: rule.id,
          changes: f.changes,
          refs: f.refs,
          operations: ops.filter((o) => o.ruleIds.includes(rule.id)),
        },
      };
      const ap = rule.approval;
      if (ap.mode === 'when') {
        const hit = this.guard(rule.id, 'approval.when', () => this.truthy(rule.id, 'approval.when', ap.when(ctx)));
        if (!hit) continue;
      }
      const message =
        ap.mode !== 'never' && ap.message
          ? this.guard(rule.id, 'approval.message', () => ap.message!.render(ctx))
          : undefined;
      const reason: ApprovalReason = {
        ruleId: rule.id,
        message: message ?? `rule ${rule.id} requires approval`,
        changes: f.changes,
      };
      if (f.refs.length > 0) reason.refs = f.refs;
      reasons.push(reason);
    }
    return { required: reasons.length > 0, reasons };
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
