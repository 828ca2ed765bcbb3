/**
 * Drift: what a contract's targets should hold (from the applied contract and the rules, by the
 * same planner that provisions them) against what they hold, as a list of differences, and the
 * operations that repair them. Pure: no I/O, safe for workflow code.
 *
 * - Desired: the plan of the applied contract as a baseline (nothing -> the applied contract):
 *   each ensureAccount is an account that must exist (active unless the plan also deactivates
 *   it, as for a suspended contract), with the attributes it sets; each joinGroup / grantRole a
 *   membership that must exist.
 * - Governed: what the contract decides about even where it grants nothing now. The accounts and
 *   groups the applied contract and the one before it would have on an active contract (so the
 *   named users of a terminated contract, and users removed by the last amendment, are governed:
 *   they must not be active, and must be in none of the governed groups), and every group the role
 *   map (and the module map, for the contract's modules) renders for the customer.
 * - A group is the contract's own (`exclusive`) when its name depends on the customer (the role
 *   map renders another name for another customer): any member it does not want there is drift,
 *   including accounts no contract names. A group shared by customers (a warehouse role `app_admin`)
 *   is judged only for the contract's own accounts.
 */
import type { Contract } from './contract';
import type { JsonObject } from './json';
import type { Action, Operation } from './plan';
import { planAmendment } from './planner';
import type { Ruleset } from './rules';

export type MembershipKind = 'group' | 'role';

export const DRIFT_KINDS = [
  'account_missing',
  'account_inactive',
  'account_active',
  'membership_missing',
  'membership_extra',
  'attribute_wrong',
] as const;
export type DriftKind = (typeof DRIFT_KINDS)[number];

/** One difference between what a target should hold and what it holds. */
export interface Difference {
  target: string;
  kind: DriftKind;
  subject: string;
  /** For memberships: the group or role, and which of the two. */
  group?: string;
  groupKind?: MembershipKind;
  /** For attribute_wrong: the attribute, what it should be and what it is. */
  attribute?: string;
  expected?: string;
  actual?: string;
  /** An account no contract of this check governs (found in one of the contract's groups). */
  unmanaged?: boolean;
  /** What a person reads: `idp: carol@acme.com is active but should not be`. */
  description: string;
}

export interface DesiredAccount {
  active: boolean;
  attributes: Record<string, string>;
}

export interface DesiredGroup {
  kind: MembershipKind;
  /** Any member not wanted is drift (the group is this customer's own); else only the contract's own accounts count. */
  exclusive: boolean;
  members: Set<string>;
}

/** What one target should hold for one contract. */
export interface TargetDesired {
  target: string;
  /** Accounts that must exist, by subject. */
  accounts: Map<string, DesiredAccount>;
  /** Governed accounts that must not be active (if they exist) and belong to none of the governed groups. */
  inactive: Set<string>;
  groups: Map<string, DesiredGroup>;
}

export interface DesiredState {
  customerId: string;
  rulesetHash: string;
  targets: Map<string, TargetDesired>;
}

/** What a target holds, as its connector read it (src/connectors/types.ts, TargetState). */
export interface ActualState {
  accounts: Map<string, { active: boolean; attributes: Record<string, string> }>;
  /** Members of each asked group or role; null when it does not exist. */
  members: Map<string, Set<string> | null>;
  /** The attributes this target holds (others are not compared). */
  managedAttributes: ReadonlySet<string>;
}

export class DriftError extends Error {
  override readonly name = 'DriftError';
}

const ANOTHER_CUSTOMER = 'amendctl-drift-probe';

function baseline(contract: Contract, contractId: string): Parameters<typeof planAmendment>[0] {
  return { amendmentId: `drift-${contractId}`, contractId, sequence: 1, submittedBy: 'amendctl-drift', contract };
}

function planOf(contract: Contract, contractId: string, ruleset: Ruleset): Operation[] {
  const plan = planAmendment(baseline(contract, contractId), null, ruleset);
  if (plan.violations.length > 0)
    throw new DriftError(
      `the rules give no plan for the applied contract ${contractId}: ${plan.violations.map((v) => v.message).join('; ')}`,
    );
  return plan.operations;
}

const MEMBERSHIP: Partial<Record<Action, MembershipKind>> = {
  joinGroup: 'group',
  leaveGroup: 'group',
  grantRole: 'role',
  revokeRole: 'role',
};

function membershipName(op: Operation): string | undefined {
  const v = op.params[MEMBERSHIP[op.action] ?? ''];
  return typeof v === 'string' ? v : undefined;
}

/** What the applied contract (and the one before it) say every target should hold. */
export function desiredState(
  ruleset: Ruleset,
  contractId: string,
  applied: { contract: Contract; previous: Contract | null },
): DesiredState {
  const customer = applied.contract.customer.id;
  const targets = new Map<string, TargetDesired>();
  const of = (t: string): TargetDesired => {
    let d = targets.get(t);
    if (!d) targets.set(t, (d = { target: t, accounts: new Map(), inactive: new Set(), groups: new Map() }));
    return d;
  };
  /** The kind each (target, name) is granted as; the first op that names it decides. */
  const kinds = new Map<string, MembershipKind>();
  const targetKind = new Map<string, MembershipKind>();
  const group = (t: string, name: string, kind: MembershipKind): DesiredGroup => {
    const d = of(t);
    let g = d.groups.get(name);
    if (!g) d.groups.set(name, (g = { kind, exclusive: false, members: new Set() }));
    return g;
  };

  // Desired: the applied contract as a baseline.
  const ops = planOf(applied.contract, contractId, ruleset);
  for (const op of ops) {
    const kind = MEMBERSHIP[op.action];
    const name = membershipName(op);
    if (kind && name !== undefined) {
      kinds.set(`${op.target}\u0000${name}`, kind);
      if (!targetKind.has(op.target)) targetKind.set(op.target, kind);
    }
  }
  for (const op of ops) {
    const d = of(op.target);
    switch (op.action) {
      case 'ensureAccount': {
        const prior = d.accounts.get(op.subject);
        d.accounts.set(op.subject, {
          active: prior?.active ?? true,
          attributes: { ...prior?.attributes, ...stringAttributes(op.params['attributes']) },
        });
        break;
      }
      case 'updateAttributes': {
        const prior = d.accounts.get(op.subject);
        if (prior) prior.attributes = { ...prior.attributes, ...stringAttributes(op.params['attributes']) };
        break;
      }
      case 'deactivateAccount': {
        const prior = d.accounts.get(op.subject);
        if (prior) prior.active = false;
        else d.inactive.add(op.subject);
        break;
      }
      case 'reactivateAccount': {
        const prior = d.accounts.get(op.subject);
        if (prior) prior.active = true;
        break;
      }
      case 'joinGroup':
      case 'grantRole':
        group(op.target, membershipName(op)!, MEMBERSHIP[op.action]!).members.add(op.subject);
        break;
      case 'leaveGroup':
      case 'revokeRole':
        group(op.target, membershipName(op)!, MEMBERSHIP[op.action]!).members.delete(op.subject);
        break;
    }
  }

  // Governed: what the contract (and the one before it) would have were it active.
  for (const c of [applied.contract, applied.previous]) {
    if (!c) continue;
    const active =
      c.status === 'active'
        ? c === applied.contract
          ? ops
          : planOf(c, contractId, ruleset)
        : planOf({ ...c, status: 'active' }, contractId, ruleset);
    for (const op of active) {
      const d = of(op.target);
      if (op.action === 'ensureAccount' && !d.accounts.has(op.subject)) d.inactive.add(op.subject);
      const kind = MEMBERSHIP[op.action];
      const name = membershipName(op);
      if (kind && name !== undefined) {
        if (!kinds.has(`${op.target}\u0000${name}`)) kinds.set(`${op.target}\u0000${name}`, kind);
        if (!targetKind.has(op.target)) targetKind.set(op.target, kind);
        group(op.target, name, kinds.get(`${op.target}\u0000${name}`)!);
      }
    }
  }
  for (const d of targets.values()) for (const s of d.accounts.keys()) d.inactive.delete(s);

  // Every group the maps render for this customer; its own when another customer gets another name.
  // A map's names on one target are granted one way (the directory's role groups as roles, its
  // module groups as groups): the kind of any of them the plans use, else the target's.
  const rendered: Array<{ map: string; target: string; name: string; other: string }> = [];
  for (const perTarget of ruleset.roleMap.values()) {
    for (const [t, tpl] of perTarget)
      rendered.push({
        map: `role\u0000${t}`,
        target: t,
        name: tpl.render({ customer }),
        other: tpl.render({ customer: ANOTHER_CUSTOMER }),
      });
  }
  const modules = new Set([...applied.contract.modules, ...(applied.previous?.modules ?? [])]);
  for (const module of modules) {
    const perTarget = ruleset.moduleMap.get(module) ?? ruleset.moduleMap.get('*');
    if (!perTarget) continue;
    for (const [t, tpl] of perTarget)
      rendered.push({
        map: `module\u0000${t}`,
        target: t,
        name: tpl.render({ customer, module }),
        other: tpl.render({ customer: ANOTHER_CUSTOMER, module }),
      });
  }
  const mapKind = new Map<string, MembershipKind>();
  for (const r of rendered) {
    const k = kinds.get(`${r.target}\u0000${r.name}`);
    if (k && !mapKind.has(r.map)) mapKind.set(r.map, k);
  }
  for (const r of rendered) {
    if (!ruleset.targets.includes(r.target)) continue;
    const g = group(
      r.target,
      r.name,
      kinds.get(`${r.target}\u0000${r.name}`) ?? mapKind.get(r.map) ?? targetKind.get(r.target) ?? 'group',
    );
    if (r.name !== r.other) g.exclusive = true;
  }
  return { customerId: customer, rulesetHash: ruleset.hash, targets };
}

function stringAttributes(raw: unknown): Record<string, string> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return {};
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) if (typeof v === 'string') out[k] = v;
  return out;
}

/** The subjects a target's check must read: every governed account. */
export function governedSubjects(d: TargetDesired): string[] {
  return [...new Set([...d.accounts.keys(), ...d.inactive])].sort();
}

/** Attributes compared without regard to case (identifiers the targets fold). */
const CASELESS = new Set(['userName', 'email']);

/** Desired against actual, for one target. Sorted: subject, kind, group, attribute. */
export function compareTarget(d: TargetDesired, actual: ActualState): Difference[] {
  const out: Difference[] = [];
  const t = d.target;
  const governed = (s: string): boolean => d.accounts.has(s) || d.inactive.has(s);
  for (const [subject, want] of d.accounts) {
    const have = actual.accounts.get(subject);
    if (!have) {
      out.push({ target: t, kind: 'account_missing', subject, description: `${t}: account ${subject} is missing` });
      continue;
    }
    if (have.active !== want.active) {
      out.push(
        want.active
          ? {
              target: t,
              kind: 'account_inactive',
              subject,
              description: `${t}: account ${subject} is inactive but should be active`,
            }
          : {
              target: t,
              kind: 'account_active',
              subject,
              description: `${t}: account ${subject} is active but should not be (the contract keeps it inactive)`,
            },
      );
    }
    for (const [attribute, expected] of Object.entries(want.attributes)) {
      if (!actual.managedAttributes.has(attribute)) continue;
      const got = have.attributes[attribute];
      const same =
        got !== undefined &&
        (CASELESS.has(attribute) ? got.toLowerCase() === expected.toLowerCase() : got === expected);
      if (same) continue;
      out.push({
        target: t,
        kind: 'attribute_wrong',
        subject,
        attribute,
        expected,
        ...(got !== undefined ? { actual: got } : {}),
        description: `${t}: ${subject} has ${attribute} ${got === undefined ? 'unset' : JSON.stringify(got)}, should be ${JSON.stringify(expected)}`,
      });
    }
  }
  for (const subject of d.inactive) {
    const have = actual.accounts.get(subject);
    if (have?.active)
      out.push({
        target: t,
        kind: 'account_active',
        subject,
        description: `${t}: account ${subject} is active but should not be (the contract no longer grants it)`,
      });
  }
  for (const [name, g] of d.groups) {
    const have = actual.members.get(name) ?? null;
    const what = g.kind === 'role' ? 'role' : 'group';
    for (const subject of g.members) {
      if (have?.has(subject)) continue;
      out.push({
        target: t,
        kind: 'membership_missing',
        subject,
        group: name,
        groupKind: g.kind,
        description: `${t}: ${subject} is not in ${what} ${name}${have === null ? ` (the ${what} does not exist)` : ''}`,
      });
    }
    for (const subject of have ?? []) {
      if (g.members.has(subject)) continue;
      const own = governed(subject);
      if (!own && !g.exclusive) continue;
      out.push({
        target: t,
        kind: 'membership_extra',
        subject,
        group: name,
        groupKind: g.kind,
        ...(own ? {} : { unmanaged: true }),
        description: `${t}: ${subject} is in ${what} ${name} but should not be${own ? '' : ' (an account the contract does not name)'}`,
      });
    }
  }
  return out.sort(byDifference);
}

const KIND_RANK = new Map<DriftKind, number>(DRIFT_KINDS.map((k, i) => [k, i]));

function byDifference(a: Difference, b: Difference): number {
  return (
    cmp(a.subject, b.subject) ||
    KIND_RANK.get(a.kind)! - KIND_RANK.get(b.kind)! ||
    cmp(a.group ?? '', b.group ?? '') ||
    cmp(a.attribute ?? '', b.attribute ?? '')
  );
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The rule id repair operations carry. */
export const RECONCILIATION_RULE = 'reconciliation';

/**
 * The operations that repair differences (the Operation vocabulary, so the batches, retries,
 * shares and compensation of amendments apply unchanged). A missing account is ensured with
 * its attributes (and deactivated again when the contract keeps it inactive).
 */
export function repairOperations(differences: Difference[], desired: DesiredState): Operation[] {
  const ops = new Map<string, Operation>();
  const add = (
    target: string,
    action: Action,
    subject: string,
    params: JsonObject,
    inverse: Operation['inverse'],
    description: string,
    name?: string,
  ): void => {
    const id = `${target}:${action}:${subject}${name !== undefined ? `:${name}` : ''}`;
    if (ops.has(id)) return;
    const risk =
      action === 'ensureAccount' || action === 'updateAttributes' || action === 'joinGroup' ? 'low' : 'medium';
    ops.set(id, {
      id,
      target,
      action,
      subject,
      params,
      inverse,
      risk,
      ruleIds: [RECONCILIATION_RULE],
      description: `${target}: ${description}`,
    });
  };
  const wrong = new Map<
    string,
    { target: string; subject: string; expected: Record<string, string>; actual: Record<string, string> }
  >();
  for (const d of differences) {
    const { target, subject } = d;
    switch (d.kind) {
      case 'account_missing': {
        const want = desired.targets.get(target)?.accounts.get(subject);
        add(
          target,
          'ensureAccount',
          subject,
          { attributes: { ...want?.attributes } },
          { action: 'removeAccount', params: {} },
          `ensure account ${subject} exists and is active`,
        );
        if (want && !want.active)
          add(
            target,
            'deactivateAccount',
            subject,
            {},
            { action: 'reactivateAccount', params: {} },
            `deactivate ${subject}`,
          );
        break;
      }
      case 'account_inactive':
        add(
          target,
          'reactivateAccount',
          subject,
          {},
          { action: 'deactivateAccount', params: {} },
          `reactivate ${subject}`,
        );
        break;
      case 'account_active':
        add(
          target,
          'deactivateAccount',
          subject,
          {},
          { action: 'reactivateAccount', params: {} },
          `deactivate ${subject}`,
        );
        break;
      case 'membership_missing':
      case 'membership_extra': {
        const name = d.group!;
        const role = d.groupKind === 'role';
        const join = d.kind === 'membership_missing';
        const action: Action = role ? (join ? 'grantRole' : 'revokeRole') : join ? 'joinGroup' : 'leaveGroup';
        const inverse: Action = role ? (join ? 'revokeRole' : 'grantRole') : join ? 'leaveGroup' : 'joinGroup';
        const key = role ? 'role' : 'group';
        const text = role
          ? join
            ? `grant ${name} to ${subject}`
            : `revoke ${name} from ${subject}`
          : join
            ? `add ${subject} to group ${name}`
            : `remove ${subject} from group ${name}`;
        add(target, action, subject, { [key]: name }, { action: inverse, params: { [key]: name } }, text, name);
        break;
      }
      case 'attribute_wrong': {
        const k = `${target}\u0000${subject}`;
        const w = wrong.get(k) ?? { target, subject, expected: {}, actual: {} };
        w.expected[d.attribute!] = d.expected ?? '';
        if (d.actual !== undefined) w.actual[d.attribute!] = d.actual;
        wrong.set(k, w);
        break;
      }
    }
  }
  for (const w of wrong.values()) {
    const what = Object.entries(w.expected)
      .map(([k, v]) => `${k} to "${v}"`)
      .join(', ');
    add(
      w.target,
      'updateAttributes',
      w.subject,
      { attributes: w.expected },
      { action: 'restoreAttributes', params: { attributes: w.actual } },
      `set ${what} for ${w.subject}`,
    );
  }
  const order: Record<Action, number> = {
    ensureAccount: 0,
    reactivateAccount: 1,
    updateAttributes: 2,
    leaveGroup: 3,
    revokeRole: 4,
    joinGroup: 5,
    grantRole: 6,
    deactivateAccount: 7,
  };
  const targetRank = new Map([...desired.targets.keys()].map((t, i) => [t, i]));
  return [...ops.values()].sort(
    (a, b) =>
      order[a.action] - order[b.action] ||
      (targetRank.get(a.target) ?? 0) - (targetRank.get(b.target) ?? 0) ||
      cmp(a.subject, b.subject) ||
      cmp(a.id, b.id),
  );
}

/** Differences counted by target and kind. */
export function countDifferences(differences: Difference[]): Record<string, Partial<Record<DriftKind, number>>> {
  const out: Record<string, Partial<Record<DriftKind, number>>> = {};
  for (const d of differences) {
    const t = (out[d.target] ??= {});
    t[d.kind] = (t[d.kind] ?? 0) + 1;
  }
  return out;
}
