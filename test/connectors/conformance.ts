/**
 * The connector conformance suite: one set of behaviours every Connector must show
 * against its real server. A connector's test file calls it once:
 *
 *   import { describeConformance, startTcpProxy } from './conformance';
 *
 *   describeConformance('ldap', async () => {
 *     const proxy = await startTcpProxy({ host: '127.0.0.1', port: Number(need('AMENDCTL_TEST_LDAP_PORT')) });
 *     const connector = createLdapConnector('dir', { ...config, url: `ldap://127.0.0.1:${proxy.port}` });
 *     return {
 *       connector,
 *       readBack: (subject) => readEntryWithOwnClient(subject),   // not through the connector
 *       outage: proxy.outage,                                     // cut the network, keep the server's state
 *       cleanup: () => proxy.close(),
 *     };
 *   });
 *
 * `setup` runs once (beforeAll); every case makes its own subjects and groups under a
 * random per-run prefix, so the suite can share a server with other test files and runs.
 *
 * API (stable: other connectors' tests depend on it; add only optional fields):
 *   describeConformance(name, setup: () => Promise<ConformanceSubject>): void
 *   interface ConformanceSubject   (below; only connector, readBack and outage are required)
 *   startTcpProxy({host, port}): Promise<TcpProxy>   a loopback TCP proxy whose outage()
 *       refuses and drops connections until the returned restore function is called
 *   retryTransient(fn, budgetMs): what a Temporal activity retry does, for the tests
 *   HOSTILE_FRAGMENTS: the identifier fragments the hostile cases use
 *   plannedOperation(target, action, subject, params, attributesBefore?): an operation with
 *       the inverse the planner gives it (plannerInverse), what compensate is called with
 *   inverseApplied(op, outcome, before, after, roleAttribute?): the account state the
 *       planner's inverse leads to from the state after the operation, with the facts of the
 *       prior state (what every compensation must leave)
 *
 * Cases (one `describe(name + ' conformance')`):
 *   - ensureAccount is idempotent: twice gives one account (accountCount, when given)
 *   - joinGroup / leaveGroup are idempotent ('unchanged' the second time)
 *   - deactivate and reactivate (idempotent; memberships kept)
 *   - compensation is the planner's inverse applied to the prior state, for every supported
 *     action from several prior states: the account read back before and after equals
 *     `inverseApplied` (and so the exact prior state), through a JSON round-trip of the
 *     ApplyResult (as Temporal stores it); compensating twice changes nothing more; a group
 *     change (applyGroupChange, where the connector has it) is compensated operation by operation
 *   - compensation follows the inverse the operation carries: none, one of another group, or
 *     one the prior state says nothing about is refused (CompensationImpossible), nothing changed
 *   - hostile identifiers (subjects and group names with quotes, `)(`, `*`, commas,
 *     `'; DROP`, backslashes, unicode look-alikes) are stored literally or refused with
 *     PermanentTargetError; a lookup never matches another account; bystander accounts
 *     and groups never change
 *   - an outage mid-operation gives TransientTargetError (never a permanent one and never
 *     a half state): retried after the outage, the operation completes exactly once
 *
 * Comparisons use the AccountState the subject's `readBack` returns, so normalise it the
 * same way readAccount does (groups sorted, attributes the plan manages).
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { JsonValue } from '../../src/domain/json';
import { ACTIONS, type Action, type Operation } from '../../src/domain/plan';
import {
  PermanentTargetError,
  TransientTargetError,
  type AccountState,
  type ApplyResult,
  type CompensationSpec,
  type Connector,
} from '../../src/connectors/types';

export interface ConformanceSubject {
  /** The connector under test, configured against the real server (through a proxy if outage needs one). */
  connector: Connector;
  /**
   * The account as the target holds it, read WITHOUT the connector where possible (its own
   * client, SQL, ldapsearch...), normalised like AccountState; null when there is none.
   * A target that cannot be read independently may pass `(s) => connector.readAccount(s)`.
   */
  readBack(subject: string): Promise<AccountState | null>;
  /**
   * Begin an outage: resolve once the target is unreachable for the connector (stop the
   * server, or cut a proxy). Resolves to a function that ends it and resolves when the
   * target answers again. The target's data must survive the outage.
   */
  outage(): Promise<() => Promise<void>>;
  /** A valid subject from a local part (default `${local}@example.test`, lower case). */
  subjectFor?(local: string): string;
  /** ensureAccount / updateAttributes attributes for a subject; `variant` 1 and 2 must differ. Default `{ displayName, email }`. */
  attributesFor?(subject: string, variant: 1 | 2): Record<string, string>;
  /** A valid group name from a base (default the base itself). */
  groupFor?(base: string): string;
  /** Two grantable role names for grantRole/revokeRole (default `${prefix}-role-a`, `-b`). */
  roles?: [string, string];
  /** The attribute readAccount lists roles in (a JSON array of names), when they are not among `groups` (SCIM: `roles`). */
  roleAttribute?: string;
  /** The actions the connector implements (default: every Action). */
  actions?: readonly Action[];
  /** Independent: does the group exist on the target? Enables "a group we created is removed by compensation". */
  groupExists?(group: string): Promise<boolean>;
  /** Independent: how many accounts on the target answer to this subject (any key). Enables "twice gives one account". */
  accountCount?(subject: string): Promise<number>;
  /** Longest time the outage case retries for (default 20 s). */
  retryBudgetMs?: number;
  /** Called in afterAll, before connector.close(). */
  cleanup?(): Promise<void>;
}

/** Identifier fragments that break naive quoting in SCIM filters, LDAP DNs/filters, SQL, URLs and shells. */
export const HOSTILE_FRAGMENTS: readonly string[] = [
  `o'hara`,
  `q"uote`,
  `x)(uid=*`,
  `*`,
  `a,b`,
  `'; drop table users; --`,
  `back\\slash`,
  `\\"esc`,
  `ann`.replace('a', '\u0430'), // Cyrillic а, looks like "ann"
  `ｆｕｌｌ`, // fullwidth
  `sp ace`,
  `a/../b`,
  `cn=x+sn=y`,
  `\${x}%s`,
];

/** A loopback TCP proxy in front of a real server: the way to make any target unreachable without losing its state. */
export interface TcpProxy {
  host: string;
  port: number;
  /** Drop every open connection and refuse new ones until the returned function is called. */
  outage(): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

export async function startTcpProxy(upstream: { host: string; port: number }): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let down = false;
  const server: Server = createServer((client) => {
    if (down) {
      client.destroy();
      return;
    }
    const up = connect(upstream.port, upstream.host);
    sockets.add(client);
    sockets.add(up);
    const drop = () => {
      client.destroy();
      up.destroy();
      sockets.delete(client);
      sockets.delete(up);
    };
    client.on('error', drop).on('close', drop);
    up.on('error', drop).on('close', drop);
    client.pipe(up);
    up.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    host: '127.0.0.1',
    port,
    outage: async () => {
      down = true;
      for (const s of sockets) s.destroy();
      sockets.clear();
      return async () => {
        down = false;
      };
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * What a Temporal activity retry does: call again after a TransientTargetError (honouring
 * retryAfterMs, capped at 2 s), rethrow anything else, give up after budgetMs.
 */
export async function retryTransient<T>(
  fn: () => Promise<T>,
  budgetMs: number,
  seen?: { transient: number },
): Promise<T> {
  const deadline = Date.now() + budgetMs;
  let delay = 50;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof TransientTargetError) || Date.now() > deadline) throw err;
      if (seen) seen.transient += 1;
      await sleep(Math.min(2000, err.retryAfterMs ?? delay));
      delay = Math.min(1000, delay * 2);
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function randomPrefix(): string {
  const abc = 'abcdefghijklmnopqrstuvwxyz0123456789';
  let s = 'c';
  for (let i = 0; i < 6; i++) s += abc[Math.floor(Math.random() * abc.length)];
  return s;
}

/** Temporal stores ApplyResult as JSON: compensation must work from the round-tripped value. */
function roundTrip(r: ApplyResult): ApplyResult {
  return JSON.parse(JSON.stringify(r)) as ApplyResult;
}

/**
 * The inverse the planner gives an operation (src/domain/planner.ts, toOperation):
 * ensureAccount → removeAccount, updateAttributes → restoreAttributes of the attributes as the
 * planner knew them before (`attributesBefore`), deactivate ↔ reactivate, join ↔ leave and
 * grant ↔ revoke of the same group or role. test/connectors/compensation.test.ts checks it
 * against the planner's plans.
 */
export function plannerInverse(
  action: Action,
  params: Record<string, JsonValue>,
  attributesBefore: Record<string, string> = {},
): Operation['inverse'] {
  switch (action) {
    case 'ensureAccount':
      return { action: 'removeAccount', params: {} };
    case 'updateAttributes':
      return { action: 'restoreAttributes', params: { attributes: attributesBefore } };
    case 'deactivateAccount':
      return { action: 'reactivateAccount', params: {} };
    case 'reactivateAccount':
      return { action: 'deactivateAccount', params: {} };
    case 'joinGroup':
      return { action: 'leaveGroup', params: { group: params['group'] ?? null } };
    case 'leaveGroup':
      return { action: 'joinGroup', params: { group: params['group'] ?? null } };
    case 'grantRole':
      return { action: 'revokeRole', params: { role: params['role'] ?? null } };
    case 'revokeRole':
      return { action: 'grantRole', params: { role: params['role'] ?? null } };
  }
}

/** An operation as a plan holds it (the planner's id and inverse): what apply and compensate are called with. */
export function plannedOperation(
  target: string,
  action: Action,
  subject: string,
  params: Record<string, JsonValue> = {},
  attributesBefore?: Record<string, string>,
): CompensationSpec {
  const extra =
    typeof params['group'] === 'string'
      ? `:${params['group']}`
      : typeof params['role'] === 'string'
        ? `:${params['role']}`
        : '';
  return {
    id: `${target}:${action}:${subject}${extra}`,
    target,
    action,
    subject,
    params,
    inverse: plannerInverse(action, params, attributesBefore),
  };
}

function attributeNames(v: JsonValue | undefined): string[] {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.keys(v) : [];
}

/**
 * The account state the planner's inverse leads to: `op.inverse` applied to the state after
 * the operation (`after`), with the facts of the prior state (`before`) it needs: whether the
 * account existed, its attributes and active state as they were, whether it was a member of
 * the group or had the role. An operation that changed nothing is compensated by nothing.
 * `roleAttribute`: where the target's AccountState lists roles when not among the groups.
 */
export function inverseApplied(
  op: CompensationSpec,
  outcome: ApplyResult['outcome'],
  before: AccountState | null,
  after: AccountState | null,
  roleAttribute?: string,
): AccountState | null {
  if (outcome !== 'applied') return after;
  const inverse = op.inverse;
  if (inverse.action === 'removeAccount' && before === null) return null;
  if (after === null || before === null) return after;
  const restored = (names: string[]) => {
    const attributes = { ...after.attributes };
    for (const k of names) {
      if (before.attributes[k] !== undefined) attributes[k] = before.attributes[k];
      else delete attributes[k];
    }
    return attributes;
  };
  const opAttributes = attributeNames(op.params['attributes']);
  const roles = (st: AccountState): string[] =>
    roleAttribute ? (JSON.parse(st.attributes[roleAttribute] ?? '[]') as string[]) : st.groups;
  const withRoles = (list: string[]): AccountState => {
    const sorted = [...new Set(list)].sort();
    if (!roleAttribute) return { ...after, groups: sorted };
    const attributes = { ...after.attributes };
    if (sorted.length > 0) attributes[roleAttribute] = JSON.stringify(sorted);
    else delete attributes[roleAttribute];
    return { ...after, attributes };
  };
  const member = (name: string, list: string[], join: boolean, wasMember: boolean) =>
    join ? (wasMember ? [...list, name] : list) : wasMember ? list : list.filter((g) => g !== name);
  switch (inverse.action) {
    case 'removeAccount':
      return { ...after, active: before.active, attributes: restored(opAttributes) };
    case 'restoreAttributes':
      return { ...after, attributes: restored([...opAttributes, ...attributeNames(inverse.params['attributes'])]) };
    case 'reactivateAccount':
      return { ...after, active: true };
    case 'deactivateAccount':
      return { ...after, active: false };
    case 'joinGroup':
    case 'leaveGroup': {
      const g = String(inverse.params['group']);
      return {
        ...after,
        groups: [...new Set(member(g, after.groups, inverse.action === 'joinGroup', before.groups.includes(g)))].sort(),
      };
    }
    case 'grantRole':
    case 'revokeRole': {
      const r = String(inverse.params['role']);
      return withRoles(member(r, roles(after), inverse.action === 'grantRole', roles(before).includes(r)));
    }
    default:
      throw new Error(`${inverse.action} is no inverse the planner gives`);
  }
}

/** Resolves with `p` once it settles, or fails naming `what` after `ms`. */
async function settled<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

export function describeConformance(name: string, setup: () => Promise<ConformanceSubject>): void {
  describe(`${name} conformance`, () => {
    let s: ConformanceSubject;
    let c: Connector;
    const prefix = randomPrefix();
    let n = 0;
    const supports = (a: Action) => (s.actions ?? ACTIONS).includes(a);

    beforeAll(async () => {
      s = await setup();
      c = s.connector;
    });
    afterAll(async () => {
      await s?.cleanup?.();
      await c?.close();
    });

    const subjectFor = (local: string) => (s.subjectFor ? s.subjectFor(local) : `${local}@example.test`);
    const newSubject = (tag: string) => subjectFor(`${prefix}-${tag}-${++n}`);
    const groupFor = (base: string) => (s.groupFor ? s.groupFor(base) : base);
    const newGroup = (tag: string) => groupFor(`${prefix}-${tag}-${++n}`);
    const attrs = (subject: string, v: 1 | 2) =>
      s.attributesFor ? s.attributesFor(subject, v) : { displayName: `Conformance ${v}`, email: subject };
    const roles = (): [string, string] => s.roles ?? [`${prefix}-role-a`, `${prefix}-role-b`];

    const op = (
      action: Action,
      subject: string,
      params: Record<string, JsonValue> = {},
      attributesBefore?: Record<string, string>,
    ): CompensationSpec => plannedOperation(c.target, action, subject, params, attributesBefore);
    const ensure = (subject: string, v: 1 | 2 = 1) => op('ensureAccount', subject, { attributes: attrs(subject, v) });

    async function expectRefusedOrOk<T>(fn: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false }> {
      try {
        return { ok: true, value: await fn() };
      } catch (err) {
        if (!(err instanceof PermanentTargetError)) throw err;
        expect(typeof err.type).toBe('string');
        expect(err.message.length).toBeGreaterThan(0);
        return { ok: false };
      }
    }

    test('ensureAccount twice gives one account, active, with its attributes', async () => {
      const subj = newSubject('create');
      expect(await s.readBack(subj)).toBeNull();
      expect(await c.readAccount(subj)).toBeNull();
      const first = await c.apply(ensure(subj));
      expect(first.outcome).toBe('applied');
      const after = await s.readBack(subj);
      expect(after).not.toBeNull();
      expect(after!.active).toBe(true);
      expect(after!.subject).toBe(subj);
      for (const [k, v] of Object.entries(attrs(subj, 1))) expect(after!.attributes[k]).toBe(v);
      const second = await c.apply(ensure(subj));
      expect(second.outcome).toBe('unchanged');
      expect(await s.readBack(subj)).toEqual(after);
      expect(await c.readAccount(subj)).toEqual(after);
      if (s.accountCount) expect(await s.accountCount(subj)).toBe(1);
    });

    test('joinGroup and leaveGroup are idempotent', async () => {
      if (!supports('joinGroup')) return;
      const subj = newSubject('member');
      const g = newGroup('grp');
      await c.apply(ensure(subj));
      expect((await c.apply(op('joinGroup', subj, { group: g }))).outcome).toBe('applied');
      expect((await c.apply(op('joinGroup', subj, { group: g }))).outcome).toBe('unchanged');
      const joined = await s.readBack(subj);
      expect(joined!.groups.filter((x) => x === g)).toEqual([g]);
      expect((await c.apply(op('leaveGroup', subj, { group: g }))).outcome).toBe('applied');
      expect((await c.apply(op('leaveGroup', subj, { group: g }))).outcome).toBe('unchanged');
      expect((await s.readBack(subj))!.groups).not.toContain(g);
    });

    test('deactivate and reactivate, idempotent, memberships kept', async () => {
      if (!supports('deactivateAccount')) return;
      const subj = newSubject('deact');
      await c.apply(ensure(subj));
      const g = newGroup('keep');
      if (supports('joinGroup')) await c.apply(op('joinGroup', subj, { group: g }));
      const before = (await s.readBack(subj))!;
      expect((await c.apply(op('deactivateAccount', subj))).outcome).toBe('applied');
      expect((await c.apply(op('deactivateAccount', subj))).outcome).toBe('unchanged');
      const off = (await s.readBack(subj))!;
      expect(off.active).toBe(false);
      expect(off.groups).toEqual(before.groups);
      expect(off.id).toBe(before.id);
      expect((await c.apply(op('reactivateAccount', subj))).outcome).toBe('applied');
      expect((await c.apply(op('reactivateAccount', subj))).outcome).toBe('unchanged');
      expect(await s.readBack(subj)).toEqual(before);
    });

    /** Prior states to compensate from: arrange, then the operation; the state after compensation must equal the arranged one. */
    interface CompCase {
      title: string;
      action: Action;
      arrange(subj: string, ctx: { group: string; bystander: string }): Promise<void>;
      params(subj: string, ctx: { group: string; bystander: string }): Record<string, JsonValue>;
      /** The group is new: after compensation it must not exist (when groupExists is given). */
      groupIsNew?: boolean;
      /** For updateAttributes: the attributes as the planner knew them before (its inverse restores them). */
      attributesBefore?(subj: string): Record<string, string>;
    }
    const nothing = async () => undefined;
    const cases: CompCase[] = [
      {
        title: 'ensureAccount of a new account',
        action: 'ensureAccount',
        arrange: nothing,
        params: (x) => ({ attributes: attrs(x, 1) }),
      },
      {
        title: 'ensureAccount of an inactive account with other attributes',
        action: 'ensureAccount',
        arrange: async (x) => {
          await c.apply(ensure(x, 2));
          if (supports('deactivateAccount')) await c.apply(op('deactivateAccount', x));
        },
        params: (x) => ({ attributes: attrs(x, 1) }),
      },
      {
        title: 'ensureAccount already so',
        action: 'ensureAccount',
        arrange: async (x) => void (await c.apply(ensure(x))),
        params: (x) => ({ attributes: attrs(x, 1) }),
      },
      {
        title: 'updateAttributes',
        action: 'updateAttributes',
        arrange: async (x) => void (await c.apply(ensure(x, 1))),
        params: (x) => ({ attributes: attrs(x, 2) }),
        attributesBefore: (x) => attrs(x, 1),
      },
      {
        title: 'deactivateAccount of an active account',
        action: 'deactivateAccount',
        arrange: async (x) => void (await c.apply(ensure(x))),
        params: () => ({}),
      },
      {
        title: 'reactivateAccount of an inactive account',
        action: 'reactivateAccount',
        arrange: async (x) => {
          await c.apply(ensure(x));
          await c.apply(op('deactivateAccount', x));
        },
        params: () => ({}),
      },
      {
        title: 'joinGroup of a new group',
        action: 'joinGroup',
        groupIsNew: true,
        arrange: async (x) => void (await c.apply(ensure(x))),
        params: (_x, k) => ({ group: k.group }),
      },
      {
        title: 'joinGroup of a group with another member',
        action: 'joinGroup',
        arrange: async (x, k) => {
          await c.apply(ensure(x));
          await c.apply(ensure(k.bystander));
          await c.apply(op('joinGroup', k.bystander, { group: k.group }));
        },
        params: (_x, k) => ({ group: k.group }),
      },
      {
        title: 'leaveGroup of a member',
        action: 'leaveGroup',
        arrange: async (x, k) => {
          await c.apply(ensure(x));
          await c.apply(op('joinGroup', x, { group: k.group }));
        },
        params: (_x, k) => ({ group: k.group }),
      },
      {
        title: 'leaveGroup, the last member',
        action: 'leaveGroup',
        arrange: async (x, k) => {
          await c.apply(ensure(x));
          await c.apply(ensure(k.bystander));
          await c.apply(op('joinGroup', k.bystander, { group: k.group }));
          await c.apply(op('joinGroup', x, { group: k.group }));
          await c.apply(op('leaveGroup', k.bystander, { group: k.group }));
        },
        params: (_x, k) => ({ group: k.group }),
      },
      {
        title: 'grantRole',
        action: 'grantRole',
        arrange: async (x) => void (await c.apply(ensure(x))),
        params: () => ({ role: roles()[0] }),
      },
      {
        title: 'revokeRole',
        action: 'revokeRole',
        arrange: async (x) => {
          await c.apply(ensure(x));
          await c.apply(op('grantRole', x, { role: roles()[1] }));
        },
        params: () => ({ role: roles()[1] }),
      },
    ];

    test.each(cases.map((k) => [k.title, k] as const))(
      "compensation is the planner's inverse applied to the prior state: %s",
      async (_t, k) => {
        const needs: Action[] = [k.action, 'ensureAccount'];
        if (k.title.includes('inactive') || k.action === 'reactivateAccount') needs.push('deactivateAccount');
        if (k.action === 'leaveGroup') needs.push('joinGroup');
        if (k.action === 'revokeRole') needs.push('grantRole');
        if (!needs.every(supports)) return;
        const subj = newSubject('comp');
        const ctx = { group: newGroup('cg'), bystander: newSubject('by') };
        await k.arrange(subj, ctx);
        const before = await s.readBack(subj);
        const beforeBystander = await s.readBack(ctx.bystander);
        const groupBefore =
          s.groupExists && (k.action === 'joinGroup' || k.action === 'leaveGroup')
            ? await s.groupExists(ctx.group)
            : undefined;

        const o = op(k.action, subj, k.params(subj, ctx), k.attributesBefore?.(subj));
        const result = roundTrip(await c.apply(o));
        const applied = await s.readBack(subj);
        if (result.outcome === 'applied') expect(applied).not.toEqual(before);
        else expect(applied).toEqual(before);

        const comp = await c.compensate(o, result);
        expect(comp.outcome).toBe(result.outcome === 'applied' ? 'compensated' : 'unchanged');
        const after = await s.readBack(subj);
        expect(after).toEqual(inverseApplied(o, result.outcome, before, applied, s.roleAttribute));
        expect(after).toEqual(before);
        expect(await s.readBack(ctx.bystander)).toEqual(beforeBystander);
        if (groupBefore !== undefined) expect(await s.groupExists!(ctx.group)).toBe(groupBefore);
        if (k.groupIsNew && s.groupExists) expect(await s.groupExists(ctx.group)).toBe(false);

        // Compensation is idempotent too (a retried compensation activity).
        const again = await c.compensate(o, result);
        expect(again.outcome).toBe('unchanged');
        expect(await s.readBack(subj)).toEqual(before);
      },
    );

    test('a group change is compensated operation by operation, each by its inverse', async () => {
      if (!c.applyGroupChange || !supports('joinGroup')) return;
      const g = newGroup('gc');
      const [a, b, member] = [newSubject('gca'), newSubject('gcb'), newSubject('gcm')];
      for (const x of [a, b, member]) await c.apply(ensure(x));
      await c.apply(op('joinGroup', member, { group: g }));
      const before = await Promise.all([a, b, member].map((x) => s.readBack(x)));
      const ops = [a, b, member].map((x) => op('joinGroup', x, { group: g }));
      const results = (await c.applyGroupChange(ops)).map(roundTrip);
      expect(results.map((r) => r.outcome)).toEqual(['applied', 'applied', 'unchanged']);
      const applied = await Promise.all([a, b, member].map((x) => s.readBack(x)));
      for (const [i, o] of ops.entries())
        expect((await c.compensate(o, results[i]!)).outcome).toBe(i < 2 ? 'compensated' : 'unchanged');
      const after = await Promise.all([a, b, member].map((x) => s.readBack(x)));
      expect(after).toEqual(
        ops.map((o, i) => inverseApplied(o, results[i]!.outcome, before[i]!, applied[i]!, s.roleAttribute)),
      );
      expect(after).toEqual(before);
    });

    test('compensation follows the inverse the operation carries; one the prior state cannot serve is refused and changes nothing', async () => {
      if (!supports('joinGroup')) return;
      const subj = newSubject('inv');
      const g = newGroup('ig');
      await c.apply(ensure(subj));
      const before = await s.readBack(subj);
      const o = op('joinGroup', subj, { group: g });
      const result = roundTrip(await c.apply(o));
      expect(result.outcome).toBe('applied');
      const joined = await s.readBack(subj);
      const refused = [
        { ...o, inverse: { action: 'leaveGroup', params: { group: newGroup('other') } } },
        { ...o, inverse: { action: 'restoreAttributes', params: { attributes: {} } } },
        { ...o, inverse: { action: 'joinGroup', params: { group: g } } },
        { ...o, inverse: undefined as unknown as CompensationSpec['inverse'] },
      ] satisfies CompensationSpec[];
      for (const wrong of refused) {
        await expect(c.compensate(wrong, result)).rejects.toMatchObject({
          name: 'PermanentTargetError',
          type: 'CompensationImpossible',
        });
        expect(await s.readBack(subj)).toEqual(joined);
      }
      expect((await c.compensate(o, result)).outcome).toBe('compensated');
      expect(await s.readBack(subj)).toEqual(before);
    });

    describe('hostile identifiers', () => {
      test.each(HOSTILE_FRAGMENTS.map((f) => [f] as const))(
        'subject %j is stored literally or refused, and touches nobody else',
        async (frag) => {
          const bystander = newSubject('ann');
          await c.apply(ensure(bystander));
          const g = newGroup('hg');
          if (supports('joinGroup')) await c.apply(op('joinGroup', bystander, { group: g }));
          const byBefore = await s.readBack(bystander);

          const hostile = subjectFor(`${prefix}-${frag}`);
          // A lookup of a name with wildcards or filter syntax must not find somebody else.
          const found = await expectRefusedOrOk(() => c.readAccount(hostile));
          if (found.ok) expect(found.value).toBeNull();

          const r = await expectRefusedOrOk(() => c.apply(ensure(hostile)));
          if (r.ok) {
            expect(r.value.outcome).toBe('applied');
            const st = await s.readBack(hostile);
            expect(st).not.toBeNull();
            expect(st!.subject).toBe(hostile);
            expect(st!.id).not.toBe(byBefore!.id);
            expect((await c.readAccount(hostile))!.id).toBe(st!.id);
            expect((await c.apply(ensure(hostile))).outcome).toBe('unchanged');
            if (s.accountCount) expect(await s.accountCount(hostile)).toBe(1);
            if (supports('joinGroup')) {
              await c.apply(op('joinGroup', hostile, { group: g }));
              await c.apply(op('leaveGroup', hostile, { group: g }));
            }
            if (supports('deactivateAccount')) {
              await c.apply(op('deactivateAccount', hostile));
              expect((await s.readBack(hostile))!.active).toBe(false);
            }
          } else {
            expect(await s.readBack(hostile)).toBeNull();
          }
          expect(await s.readBack(bystander)).toEqual(byBefore);
        },
      );

      test.each(HOSTILE_FRAGMENTS.map((f) => [f] as const))(
        'group %j is stored literally or refused, and touches no other group',
        async (frag) => {
          if (!supports('joinGroup')) return;
          const subj = newSubject('hm');
          const bystander = newSubject('hb');
          const plain = newGroup('plain');
          await c.apply(ensure(subj));
          await c.apply(ensure(bystander));
          await c.apply(op('joinGroup', bystander, { group: plain }));
          const byBefore = await s.readBack(bystander);
          const before = await s.readBack(subj);

          const hostile = groupFor(`${prefix}-${frag}`);
          const o = op('joinGroup', subj, { group: hostile });
          const r = await expectRefusedOrOk(() => c.apply(o));
          if (r.ok) {
            expect((await s.readBack(subj))!.groups).toEqual([...before!.groups, hostile].sort());
            expect((await c.apply(o)).outcome).toBe('unchanged');
            await c.compensate(o, roundTrip(r.value));
          }
          expect(await s.readBack(subj)).toEqual(before);
          expect(await s.readBack(bystander)).toEqual(byBefore);
        },
      );
    });

    describe('outage', () => {
      test('the target down: TransientTargetError, never a permanent error', async () => {
        const subj = newSubject('down');
        const restore = await s.outage();
        try {
          await expect(c.readAccount(subj)).rejects.toBeInstanceOf(TransientTargetError);
          await expect(c.apply(ensure(subj))).rejects.toBeInstanceOf(TransientTargetError);
        } finally {
          await restore();
        }
        const r = await retryTransient(() => c.apply(ensure(subj)), s.retryBudgetMs ?? 20_000);
        expect(r.outcome).toBe('applied');
        expect((await s.readBack(subj))!.active).toBe(true);
      });

      // The outage starts at different moments of a multi-step operation (lookups, create,
      // group creation, membership); retried, each completes exactly once.
      test.each([0, 3, 10, 25, 60])(
        'an outage %i ms into an operation is retried and completes exactly once',
        async (delayMs) => {
          const subj = newSubject(`mid${delayMs}`);
          const g = newGroup('mg');
          const seen = { transient: 0 };
          const run = async () => {
            await c.apply(ensure(subj));
            if (supports('joinGroup')) await c.apply(op('joinGroup', subj, { group: g }));
          };
          const first = run().then(
            () => 'done' as const,
            (err: unknown) => {
              if (!(err instanceof TransientTargetError)) throw err;
              seen.transient += 1;
              return 'transient' as const;
            },
          );
          await sleep(delayMs); // when the outage begins: the case's parameter, not a wait for anything
          const restore = await s.outage();
          try {
            // The outage lasts until the first attempt has met it (a transient failure) or finished.
            await settled(first, s.retryBudgetMs ?? 20_000, 'the first attempt, during the outage');
          } finally {
            await restore();
          }
          await retryTransient(run, s.retryBudgetMs ?? 20_000, seen);
          const st = (await s.readBack(subj))!;
          expect(st.active).toBe(true);
          if (supports('joinGroup')) expect(st.groups).toEqual([g]);
          if (s.accountCount) expect(await s.accountCount(subj)).toBe(1);
          expect((await c.apply(ensure(subj))).outcome).toBe('unchanged');
        },
      );
    });
  });
}
