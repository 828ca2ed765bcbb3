/**
 * The `changes` form: clause-level edits (`set`, `add`, `remove`, with `match` for
 * list items) applied to the applied contract. The result is checked against the
 * contract model; the canonical change set is then `diff(before, after)`.
 * Pure: no I/O.
 */
import type { Edit } from './amendment';
import type { Contract } from './contract';
import type { JsonValue } from './json';

export interface EditProblem {
  /** `changes[2]` */
  path: string;
  message: string;
}

type Draft = Record<string, unknown> & {
  modules: unknown[];
  namedUsers: Array<Record<string, unknown>>;
  custom: Record<string, unknown>;
};

const SCALARS = new Set(['status', 'tier', 'seats', 'region']);
const STRUCTS: Record<string, readonly string[]> = { customer: ['id', 'name'], term: ['start', 'end'] };
const USER_FIELDS = new Set(['name', 'role']);

function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

const lower = (v: unknown): unknown => (typeof v === 'string' ? v.trim().toLowerCase() : v);

function matches(item: Record<string, unknown>, match: Record<string, JsonValue>): boolean {
  return Object.entries(match).every(([k, v]) => (k === 'email' ? lower(item[k]) === lower(v) : item[k] === v));
}

/** Apply the edits, in order, to a copy of `contract`; what cannot apply is reported, never guessed. */
export function applyEdits(contract: Contract, edits: readonly Edit[]): { draft: unknown; problems: EditProblem[] } {
  const d = clone(contract) as unknown as Draft;
  const problems: EditProblem[] = [];
  /** Lower-cased emails of d.namedUsers, rebuilt lazily after a whole-list change. */
  let emails: Set<unknown> | null = null;
  const emailSet = (): Set<unknown> => (emails ??= new Set(d.namedUsers.map((x) => lower(x['email']))));
  edits.forEach((edit, i) => {
    const where = `changes[${i}]`;
    const fail = (message: string): void => {
      problems.push({ path: where, message: `${edit.op} ${edit.path}: ${message}` });
    };
    const [head, ...restParts] = edit.path.split('.');
    const rest = restParts.join('.');
    if (head === undefined) return fail('an empty path');

    if (SCALARS.has(head) && !rest) {
      if (edit.op !== 'set') return fail(`${head} can only be set`);
      if (edit.value === undefined) return fail('a value is required');
      d[head] = edit.value;
      return;
    }
    if (head in STRUCTS) {
      const fields = STRUCTS[head]!;
      if (!rest) {
        if (edit.op !== 'set' || edit.value === undefined) return fail(`${head} can only be set to a whole value`);
        d[head] = edit.value;
        return;
      }
      if (!fields.includes(rest))
        return fail(`unknown field (expected ${fields.map((f) => `${head}.${f}`).join(' or ')})`);
      const target = d[head] as Record<string, unknown>;
      if (edit.op === 'remove') delete target[rest];
      else if (edit.op === 'set' && edit.value !== undefined) target[rest] = edit.value;
      else fail('expected set with a value, or remove');
      return;
    }
    if (head === 'custom') {
      if (!rest) {
        if (edit.op !== 'set' || edit.value === null || typeof edit.value !== 'object' || Array.isArray(edit.value))
          return fail('custom can only be set to a whole map');
        d.custom = edit.value as Record<string, unknown>;
      } else if (edit.op === 'remove') {
        if (!(rest in d.custom)) return fail(`no custom clause "${rest}"`);
        delete d.custom[rest];
      } else if (edit.op === 'set' && edit.value !== undefined) d.custom[rest] = edit.value;
      else fail('expected set with a value, or remove');
      return;
    }
    if (head === 'modules') {
      if (rest) return fail('modules has no fields');
      const values = edit.value === undefined ? [] : Array.isArray(edit.value) ? edit.value : [edit.value];
      if (edit.op === 'set') {
        if (!Array.isArray(edit.value)) return fail('set modules takes the whole list');
        d.modules = [...edit.value];
        return;
      }
      const names = edit.match?.['name'] !== undefined ? [edit.match['name']] : values;
      if (names.length === 0) return fail('a module name (value) is required');
      for (const name of names) {
        const has = d.modules.includes(name);
        if (edit.op === 'add') {
          if (has) fail(`module ${String(name)} is already licensed`);
          else d.modules.push(name);
        } else if (!has) fail(`module ${String(name)} is not licensed`);
        else d.modules = d.modules.filter((m) => m !== name);
      }
      return;
    }
    if (head === 'namedUsers') {
      if (!rest) {
        if (edit.op === 'set') {
          if (!Array.isArray(edit.value)) return fail('set namedUsers takes the whole list');
          d.namedUsers = clone(edit.value) as Array<Record<string, unknown>>;
          emails = null;
        } else if (edit.op === 'add') {
          const users = Array.isArray(edit.value) ? edit.value : edit.value === undefined ? [] : [edit.value];
          if (users.length === 0) return fail('a named user ({ email, name, role }) is required as value');
          for (const u of users) {
            if (u === null || typeof u !== 'object' || Array.isArray(u)) {
              fail('expected a named user { email, name, role }');
              continue;
            }
            const email = lower((u as Record<string, unknown>)['email']);
            if (emailSet().has(email)) fail(`${String(email)} is already a named user`);
            else {
              d.namedUsers.push({ ...(u as Record<string, unknown>) });
              emailSet().add(email);
            }
          }
        } else {
          const match =
            edit.match ??
            (edit.value && typeof edit.value === 'object' && !Array.isArray(edit.value)
              ? (edit.value as Record<string, JsonValue>)
              : undefined);
          if (!match || Object.keys(match).length === 0)
            return fail('match (e.g. { email }) picks the named users to remove');
          const before = d.namedUsers.length;
          d.namedUsers = d.namedUsers.filter((u) => !matches(u, match));
          if (d.namedUsers.length === before) fail(`no named user matches ${JSON.stringify(match)}`);
          emails = null;
        }
        return;
      }
      if (!USER_FIELDS.has(rest))
        return fail(
          `unknown field (expected namedUsers.name or namedUsers.role${rest === 'email' ? '; the email is the key: remove the user and add the new one' : ''})`,
        );
      if (edit.op !== 'set' || edit.value === undefined) return fail('named user fields can only be set');
      if (!edit.match || Object.keys(edit.match).length === 0)
        return fail('match (e.g. { email }) picks the named users to change');
      let hit = 0;
      for (const u of d.namedUsers) {
        if (matches(u, edit.match)) {
          u[rest] = edit.value;
          hit++;
        }
      }
      if (hit === 0) fail(`no named user matches ${JSON.stringify(edit.match)}`);
      return;
    }
    fail('unknown clause (expected customer, status, tier, seats, modules, namedUsers, term, region or custom.<name>)');
  });
  return { draft: d, problems };
}
