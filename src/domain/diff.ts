/**
 * Field- and clause-level difference between two contract versions, and its application.
 * Keyed collections: named users by lower-cased email, modules by name. The order of the
 * changes is stable: clauses in model order, then fields, then keys sorted.
 * Pure: no I/O.
 */
import { type Contract, type NamedUser, canonicalContract } from './contract';
import { type JsonValue, canonicalJson } from './json';
import type { Change, ClauseName } from './plan';

export const CLAUSE_ORDER: readonly ClauseName[] = [
  'customer',
  'status',
  'tier',
  'seats',
  'modules',
  'namedUsers',
  'term',
  'region',
  'custom',
];
const USER_FIELDS = ['name', 'role'] as const;

function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  return canonicalJson(a) === canonicalJson(b);
}

function scalar(
  out: Change[],
  clause: ClauseName,
  path: string,
  before: JsonValue | undefined,
  after: JsonValue | undefined,
): void {
  if (before === undefined && after === undefined) return;
  if (before === undefined) out.push({ kind: 'added', clause, path, after });
  else if (after === undefined) out.push({ kind: 'removed', clause, path, before });
  else if (!sameJson(before, after)) out.push({ kind: 'modified', clause, path, before, after });
}

function userJson(u: NamedUser): JsonValue {
  return { email: u.email, name: u.name, role: u.role };
}

/** The changes that turn `before` (null: nothing yet, a baseline) into `after`. */
export function diff(before: Contract | null, after: Contract): Change[] {
  const a = before ? canonicalContract(before) : null;
  const b = canonicalContract(after);
  const out: Change[] = [];
  scalar(out, 'customer', 'customer.id', a?.customer.id, b.customer.id);
  scalar(out, 'customer', 'customer.name', a?.customer.name, b.customer.name);
  scalar(out, 'status', 'status', a?.status, b.status);
  scalar(out, 'tier', 'tier', a?.tier, b.tier);
  scalar(out, 'seats', 'seats', a?.seats, b.seats);

  const modulesBefore = new Set(a?.modules ?? []);
  const modulesAfter = new Set(b.modules);
  for (const m of [...new Set([...modulesBefore, ...modulesAfter])].sort()) {
    if (!modulesAfter.has(m))
      out.push({ kind: 'removed', clause: 'modules', path: `modules[${m}]`, key: m, before: m });
    else if (!modulesBefore.has(m))
      out.push({ kind: 'added', clause: 'modules', path: `modules[${m}]`, key: m, after: m });
  }

  const usersBefore = new Map((a?.namedUsers ?? []).map((u) => [u.email, u]));
  const usersAfter = new Map(b.namedUsers.map((u) => [u.email, u]));
  for (const email of [...new Set([...usersBefore.keys(), ...usersAfter.keys()])].sort()) {
    const ub = usersBefore.get(email);
    const ua = usersAfter.get(email);
    const path = `namedUsers[${email}]`;
    if (!ua) out.push({ kind: 'removed', clause: 'namedUsers', path, key: email, before: userJson(ub!) });
    else if (!ub) out.push({ kind: 'added', clause: 'namedUsers', path, key: email, after: userJson(ua) });
    else {
      for (const field of USER_FIELDS) {
        if (ub[field] !== ua[field])
          out.push({
            kind: 'modified',
            clause: 'namedUsers',
            path: `${path}.${field}`,
            key: email,
            before: ub[field],
            after: ua[field],
          });
      }
    }
  }

  scalar(out, 'term', 'term.start', a?.term.start, b.term.start);
  scalar(out, 'term', 'term.end', a?.term.end, b.term.end);
  scalar(out, 'region', 'region', a?.region, b.region);
  const customBefore = a?.custom ?? {};
  for (const k of [...new Set([...Object.keys(customBefore), ...Object.keys(b.custom)])].sort()) {
    scalar(out, 'custom', `custom.${k}`, customBefore[k], b.custom[k]);
  }
  return out;
}

/** The inverse of `changes` (the diff the other way round): added and removed swap, before and after swap. */
export function invertChanges(changes: readonly Change[]): Change[] {
  return changes.map((c) => {
    const kind = c.kind === 'added' ? 'removed' : c.kind === 'removed' ? 'added' : 'modified';
    const out: Change = { kind, clause: c.clause, path: c.path };
    if (c.key !== undefined) out.key = c.key;
    if (c.after !== undefined) out.before = c.after;
    if (c.before !== undefined) out.after = c.before;
    return out;
  });
}

/** The field of a keyed item a path names (`namedUsers[a@x].role` -> `role`), or undefined. */
export function changeField(path: string): string | undefined {
  const close = path.lastIndexOf(']');
  if (close >= 0) return path[close + 1] === '.' ? path.slice(close + 2) : undefined;
  const dot = path.indexOf('.');
  return dot >= 0 ? path.slice(dot + 1) : undefined;
}

type Draft = {
  customer: Partial<Contract['customer']>;
  status?: Contract['status'];
  tier?: string;
  seats?: number;
  modules: string[];
  namedUsers: NamedUser[];
  term: Partial<Contract['term']>;
  region?: string;
  custom: Record<string, JsonValue>;
};

/**
 * Apply changes (as `diff` gives them) to a contract; `null` starts from nothing.
 * Throws an Error when the changes do not fit the contract (a programming error: the
 * planner only applies changes it derived itself).
 */
export function applyChanges(contract: Contract | null, changes: readonly Change[]): Contract {
  const d: Draft = contract
    ? { ...structuredCloneJson(contract), customer: { ...contract.customer }, term: { ...contract.term } }
    : { customer: {}, modules: [], namedUsers: [], term: {}, custom: {} };
  for (const c of changes) {
    const value = c.kind === 'removed' ? undefined : c.after;
    switch (c.clause) {
      case 'customer':
      case 'term': {
        const field = c.path.slice(c.clause.length + 1);
        const target = d[c.clause] as Record<string, unknown>;
        if (value === undefined) delete target[field];
        else target[field] = value;
        break;
      }
      case 'status':
      case 'tier':
      case 'seats':
      case 'region':
        (d as Record<string, unknown>)[c.clause] = value;
        break;
      case 'modules': {
        const key = c.key ?? String(c.after ?? c.before);
        d.modules = d.modules.filter((m) => m !== key);
        if (c.kind !== 'removed') d.modules.push(key);
        break;
      }
      case 'namedUsers': {
        const key = c.key!;
        const field = changeField(c.path);
        const i = d.namedUsers.findIndex((u) => u.email === key);
        if (field === undefined) {
          if (i >= 0) d.namedUsers.splice(i, 1);
          if (c.kind !== 'removed') d.namedUsers.push({ ...(c.after as NamedUser) });
        } else {
          if (i < 0) throw new Error(`applyChanges: no named user ${key} for ${c.path}`);
          d.namedUsers[i] = { ...d.namedUsers[i]!, [field]: value };
        }
        break;
      }
      case 'custom': {
        const key = c.path.slice('custom.'.length);
        if (value === undefined) delete d.custom[key];
        else d.custom[key] = value;
        break;
      }
    }
  }
  for (const field of ['status', 'tier', 'seats', 'region'] as const) {
    if (d[field] === undefined) throw new Error(`applyChanges: the result has no ${field}`);
  }
  if (d.customer.id === undefined || d.customer.name === undefined || d.term.start === undefined)
    throw new Error('applyChanges: the result has no customer or term');
  return canonicalContract(d as Contract);
}

function structuredCloneJson<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}
