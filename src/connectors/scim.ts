/**
 * SCIM 2.0 connector (RFC 7643 resources, RFC 7644 protocol): the `idp` target of the
 * reference policy. The protocol (transport, bearer token, paging, /ServiceProviderConfig,
 * PATCH or PUT, ETags, filter escaping, failure classification) is the client's
 * (./clients/scim.ts); this is what operations mean on Users and Groups.
 *
 * - Accounts are Users keyed by `userName` (= the operation's subject). Before creating one
 *   it looks up by `userName` and by `externalId`; a 409 `uniqueness` on create is resolved
 *   by looking up again and linking to that account, never by a second one.
 * - Group membership changes are PATCH `add`/`remove` deltas of one member, never a full
 *   member list (only the PUT fallback has to send one, under `If-Match` when possible).
 * - Accounts are (de)activated with a path-less PATCH `replace` of `{active}`.
 * - grantRole/revokeRole manage the User's `roles` (value) attribute; readAccount shows them
 *   as `attributes.roles`, a JSON array of the role values, sorted (absent when none).
 * - Compensation is the operation's inverse (./compensation.ts) with the prior state recorded
 *   here: a user we created is deleted, a user that existed gets its attributes and active
 *   state back, a group we created is deleted once empty.
 *
 * userName matching is case-insensitive (RFC 7643 §4.1.1: caseExact false); externalId and
 * group displayName matching are exact.
 *
 * A create whose answer is lost (the server made the user, the response never came): before
 * the POST the connector notes in the operation's journal that it is creating that userName; a
 * retry that then finds the user (made no earlier than the note, by its `meta.created`) knows
 * the user is its own creation, so the compensation removes it. (A group made by a lost create
 * is still seen as one that existed: its compensation leaves the empty group.)
 */
import type { JsonObject, JsonValue } from '../domain/json';
import {
  ScimClient,
  type ScimConfig,
  scimConfigSchema,
  type ScimEmail,
  type ScimGroup,
  type ScimUser,
  describe,
} from './clients/scim';
import { compensateWith, priorMismatch, type PriorFacts, type CompensationAction, compensated } from './compensation';
import { type SecretSource, secretSource } from './secrets';
import {
  PermanentTargetError,
  TransientTargetError,
  type StateQuery,
  type TargetState,
  type AccountState,
  type ApplyResult,
  type CompensateResult,
  type CompensationSpec,
  type Connector,
  type OperationJournal,
  type OperationSpec,
  attributesParam,
  nameParam,
} from './types';

export { scimConfigSchema, scimEq, scimFilterValue, scimRateLimiter, type ScimConfig } from './clients/scim';

/** Recently created or linked users kept (their ids) for the group changes that follow. */
const RECENT_USERS = 10_000;
const RECENT_USER_MS = 60_000;
/** Accounts looked up by one prefetch search at most (100 filter terms with their externalIds: a URL of some 10 KB). */
const PREFETCH_CHUNK = 50;
/** A prefetched lookup older than this is looked up again. */
const PREFETCH_MS = 30_000;

/**
 * Find-or-create of a group is serialised per target and group name in this process: many
 * providers (scim2-server among them) do not keep group displayNames unique, so two
 * concurrent joins of a new group would otherwise create it twice. Across worker processes
 * the lookup-before-create still applies, and two groups of one name are then refused as a
 * TargetConflict for an operator, never guessed between.
 */
const groupLocks = new Map<string, Promise<unknown>>();
/** `fn` under the lock of `key`, given when the last holder before it let go (a groupClock reading). */
async function serialised<T>(key: string, fn: (lastDone: number) => Promise<T>): Promise<T> {
  const before = groupLocks.get(key) ?? Promise.resolve();
  const go = async (): Promise<T> => {
    try {
      return await fn(groupDone.get(key) ?? forgottenUpTo);
    } finally {
      done(key);
    }
  };
  const run = before.then(go, go);
  const tail = run.catch(() => undefined);
  groupLocks.set(key, tail);
  try {
    return await run;
  } finally {
    if (groupLocks.get(key) === tail) groupLocks.delete(key);
  }
}

/**
 * When each group's last find-or-create in this process let go of its lock, on one counter. A
 * caller that found no group in a lookup begun after that needs no second lookup under the lock:
 * nobody here can have created the group since. Bounded: past GROUPS_KEPT the oldest entries
 * go, and a group not kept counts as let go when the last one forgotten was.
 */
const GROUPS_KEPT = 10_000;
let groupClock = 0;
let forgottenUpTo = 0;
const groupDone = new Map<string, number>();
function done(key: string): void {
  groupDone.delete(key);
  groupDone.set(key, ++groupClock);
  if (groupDone.size > GROUPS_KEPT) {
    const [oldest, at] = groupDone.entries().next().value!;
    groupDone.delete(oldest);
    forgottenUpTo = at;
  }
}

const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Group';

/** Up to this many accounts, drift looks each up by userName; more, it lists every user. */
const FEW_SUBJECTS = 20;

/** Top-level single-valued string attributes of the core User schema that updateAttributes may set. */
const SIMPLE_ATTRIBUTES = [
  'displayName',
  'externalId',
  'nickName',
  'title',
  'userType',
  'preferredLanguage',
  'locale',
  'timezone',
  'profileUrl',
] as const;
const MANAGED = new Set<string>(['userName', 'email', ...SIMPLE_ATTRIBUTES]);

/** What compensation needs, per action. JSON, never a secret. */
type Prior =
  | { kind: 'account'; existed: false; id: string }
  | { kind: 'account'; existed: true; id: string; active: boolean; attrs: UserAttrs }
  | { kind: 'active'; id: string | null; active: boolean | null }
  | { kind: 'group'; userId: string | null; groupId: string | null; groupExisted: boolean; wasMember: boolean }
  | { kind: 'role'; id: string | null; role: string; had: boolean };

/** The user attributes we manage, as found: null for absent; emails kept whole so they restore exactly. */
type UserAttrs = { userName: string; emails: JsonValue } & Record<string, JsonValue>;

/** What the recorded prior state says for the inverse (./compensation.ts). */
function priorFacts(prior: Prior | null): PriorFacts | null {
  if (!prior || typeof prior !== 'object') return null;
  switch (prior.kind) {
    case 'account':
      return prior.existed
        ? { kind: 'account', existed: true, active: prior.active }
        : { kind: 'account', existed: false };
    case 'active':
      return {
        kind: 'account',
        existed: prior.id !== null,
        ...(prior.active !== null ? { active: prior.active } : {}),
      };
    case 'group':
      return { kind: 'membership', member: prior.wasMember, created: !prior.groupExisted };
    case 'role':
      return { kind: 'membership', member: prior.had };
    default:
      return null;
  }
}

export function createScimConnector(
  target: string,
  config: ScimConfig,
  secrets: SecretSource = secretSource(),
): Connector {
  const c = scimConfigSchema.parse(config);
  const { bearerTokenEnv, bearerTokenFile } = c.auth;
  const ref = bearerTokenEnv ? { env: bearerTokenEnv } : bearerTokenFile ? { file: bearerTokenFile } : undefined;
  return new ScimConnector(
    target,
    new ScimClient(target, c, { ...(ref ? { token: secrets.reader(ref, `${target}: the SCIM bearer token`) } : {}) }),
  );
}

export class ScimConnector implements Connector {
  readonly type = 'scim';

  constructor(
    readonly target: string,
    private readonly client: ScimClient,
  ) {}

  async close(): Promise<void> {}

  // ---------------------------------------------------------------- lookups

  private findUser(subject: string): Promise<ScimUser | null> {
    return this.client.findUser(subject);
  }

  /**
   * What a batch's prefetch (prefetchAccounts) found for a lookup key (`u:` lower-cased
   * userName, `x:` externalId): the users, or none. Each key is used once, by the operation it
   * was fetched for; a retry looks again. Bounded in size and age.
   */
  private readonly prefetched = new Map<string, { users: ScimUser[]; at: number }>();
  private prefetchRefused = false;

  async prefetchAccounts(ops: OperationSpec[]): Promise<void> {
    if (this.prefetchRefused) return;
    const keys = ops
      .filter((op) => op.action === 'ensureAccount')
      .map((op) => lookupKeys(op.subject, desiredAttrs(op, true)));
    for (let i = 0; i < keys.length; i += PREFETCH_CHUNK) {
      const chunk = keys.slice(i, i + PREFETCH_CHUNK);
      let users: ScimUser[] | undefined;
      try {
        users = await this.client.findUsers(chunk);
      } catch (err) {
        // A provider that refuses the combined filter (400) is asked one by one from now on; anything else, this time.
        if (err instanceof PermanentTargetError) this.prefetchRefused = true;
        return;
      }
      if (!users) {
        this.prefetchRefused = true;
        return;
      }
      const at = Date.now();
      for (const k of chunk) {
        this.keep(
          `u:${k.userName.toLowerCase()}`,
          users.filter((u) => u.userName?.toLowerCase() === k.userName.toLowerCase()),
          at,
        );
        if (k.externalId !== undefined)
          this.keep(
            `x:${k.externalId}`,
            users.filter((u) => u.externalId === k.externalId),
            at,
          );
      }
    }
  }

  private keep(key: string, users: ScimUser[], at: number): void {
    if (this.prefetched.size >= RECENT_USERS) this.prefetched.delete(this.prefetched.keys().next().value!);
    this.prefetched.set(key, { users, at });
  }

  /** A prefetched answer for `key`, once (undefined: none, or too old: look it up). */
  private takePrefetched(key: string): ScimUser[] | undefined {
    const hit = this.prefetched.get(key);
    if (!hit) return undefined;
    this.prefetched.delete(key);
    return Date.now() - hit.at < PREFETCH_MS ? hit.users : undefined;
  }

  private async findGroup(name: string): Promise<ScimGroup | null> {
    const found = await this.client.groupsNamed(name, false);
    if (found.length > 1)
      throw new PermanentTargetError(
        'TargetConflict',
        `${this.target}: ${found.length} groups are named ${JSON.stringify(name)} (ids ${found.map((g) => g.id).join(', ')}); resolve by hand`,
      );
    return found[0] ?? null;
  }

  /**
   * Users this connector created or linked in the last seconds (a batch's ensureAccount just
   * before its group changes), by lower-cased userName: a group change needs only their ids,
   * which a provider never changes. Bounded in size and age.
   */
  private readonly recent = new Map<string, { user: ScimUser; at: number }>();

  private remember(user: ScimUser): void {
    if (this.recent.size >= RECENT_USERS) this.recent.delete(this.recent.keys().next().value!);
    this.recent.set(user.userName.toLowerCase(), {
      user: { id: user.id, userName: user.userName } as ScimUser,
      at: Date.now(),
    });
  }

  private recentUser(subject: string): ScimUser | undefined {
    const hit = this.recent.get(subject.toLowerCase());
    return hit && Date.now() - hit.at < RECENT_USER_MS ? hit.user : undefined;
  }

  // ---------------------------------------------------------------- Connector

  async readAccount(subject: string): Promise<AccountState | null> {
    const user = await this.findUser(subject);
    if (!user) return null;
    const groups = await this.client.groupsOf(user.id);
    return {
      subject,
      id: user.id,
      active: user.active !== false,
      groups: groups.map((g) => g.displayName).sort(),
      attributes: stateAttributes(user),
    };
  }

  /**
   * Drift: the asked accounts (a few looked up by userName; many: every user, paged) and each
   * asked group with its members (their ids resolved to userNames). SCIM roles are the `roles`
   * of the accounts read.
   */
  async readState(query: StateQuery): Promise<TargetState> {
    const wanted = new Set(query.subjects.map((s) => s.toLowerCase()));
    const byId = new Map<string, ScimUser>();
    if (query.subjects.length <= FEW_SUBJECTS) {
      for (const s of query.subjects) {
        const u = await this.findUser(s);
        if (u) byId.set(u.id, u);
      }
    } else {
      for (const u of await this.client.listAll<ScimUser>('/Users')) byId.set(u.id, u);
    }
    const accounts: TargetState['accounts'] = [];
    for (const u of byId.values()) {
      if (typeof u.userName !== 'string' || !wanted.has(u.userName.toLowerCase())) continue;
      accounts.push({ subject: u.userName.toLowerCase(), active: u.active !== false, attributes: stateAttributes(u) });
    }
    const members: TargetState['members'] = {};
    for (const g of query.groups) {
      if (g.kind === 'role') {
        members[g.name] = [...byId.values()]
          .filter((u) => hasRole(u, g.name) && wanted.has(u.userName.toLowerCase()))
          .map((u) => u.userName.toLowerCase());
        continue;
      }
      const found = await this.client.groupsNamed(g.name, true);
      if (found.length > 1)
        throw new PermanentTargetError(
          'TargetConflict',
          `${this.target}: ${found.length} groups are named ${JSON.stringify(g.name)}; resolve by hand`,
        );
      const group = found[0];
      if (!group) {
        members[g.name] = null;
        continue;
      }
      const list: string[] = [];
      for (const m of group.members ?? []) {
        let u = byId.get(m.value);
        if (!u) {
          u = (await this.client.getUser(m.value)) ?? undefined;
          if (u) byId.set(u.id, u);
        }
        if (u && typeof u.userName === 'string') list.push(u.userName.toLowerCase());
      }
      members[g.name] = list;
    }
    return { accounts, members, managedAttributes: [...MANAGED] };
  }

  async apply(op: OperationSpec, journal?: OperationJournal): Promise<ApplyResult> {
    return this.client.fresh(`${op.action} ${op.subject}`, () => this.applyOnce(op, journal));
  }

  private async applyOnce(op: OperationSpec, journal: OperationJournal | undefined): Promise<ApplyResult> {
    switch (op.action) {
      case 'ensureAccount':
        return this.ensureAccount(op, journal);
      case 'updateAttributes': {
        const user = await this.requireUser(op);
        const want = desiredAttrs(op, false);
        const prior: Prior = {
          kind: 'account',
          existed: true,
          id: user.id,
          active: user.active !== false,
          attrs: userAttrs(user),
        };
        const changed = await this.setUser(user, want, undefined, `updating ${op.subject}`);
        return {
          outcome: changed ? 'applied' : 'unchanged',
          prior: prior as JsonValue,
          detail: changed ? `updated ${Object.keys(want).join(', ')} of user ${user.id}` : 'attributes already so',
        };
      }
      case 'deactivateAccount':
      case 'reactivateAccount': {
        const active = op.action === 'reactivateAccount';
        const user = active ? await this.requireUser(op) : await this.findUser(op.subject);
        if (!user)
          return { outcome: 'unchanged', prior: { kind: 'active', id: null, active: null }, detail: 'no such account' };
        const was = user.active !== false;
        const changed = await this.setUser(
          user,
          {},
          active,
          `${active ? 'reactivating' : 'deactivating'} ${op.subject}`,
        );
        return {
          outcome: changed ? 'applied' : 'unchanged',
          prior: { kind: 'active', id: user.id, active: was },
          detail: changed ? `user ${user.id} active=${active}` : `already active=${active}`,
        };
      }
      case 'joinGroup':
        return this.joinGroup(op);
      case 'leaveGroup':
        return this.leaveGroup(op);
      case 'grantRole':
      case 'revokeRole':
        return this.role(op);
    }
  }

  private async requireUser(op: OperationSpec): Promise<ScimUser> {
    const u = await this.findUser(op.subject);
    if (!u)
      throw new PermanentTargetError(
        'AccountMissing',
        `${this.target}: ${op.action}: no user with userName ${JSON.stringify(op.subject)} (ensureAccount must come first)`,
      );
    return u;
  }

  private async ensureAccount(op: OperationSpec, journal: OperationJournal | undefined): Promise<ApplyResult> {
    const want = desiredAttrs(op, true);
    const { userName, externalId } = lookupKeys(op.subject, want);
    // The first lookup may be the batch's prefetch; after a 409 it is always fresh.
    let user = await this.findByKeys(userName, externalId, true);
    let detail = '';
    if (user && createdByEarlierAttempt(journal?.noted, user)) {
      await this.setUser(user, want, true, `ensuring ${op.subject}`);
      this.remember({ ...user, userName });
      return {
        outcome: 'applied',
        prior: { kind: 'account', existed: false, id: user.id },
        detail: `created user ${user.id} (the answer to the create was lost; the retry found it)`,
      };
    }
    if (!user) {
      await journal?.note({ creating: userName.toLowerCase(), at: new Date().toISOString() });
      const made = await this.client.create<ScimUser>('/Users', {
        schemas: [USER_SCHEMA],
        ...toUserBody(want),
        userName,
        active: true,
      });
      if ('created' in made) {
        this.remember({ ...made.created, userName });
        return {
          outcome: 'applied',
          prior: { kind: 'account', existed: false, id: made.created.id },
          detail: `created user ${made.created.id}`,
        };
      }
      if (made.refused.status !== 409) this.client.fail(made.refused, `creating user ${JSON.stringify(userName)}`);
      // 409 uniqueness: somebody (a concurrent attempt, or a lookup the provider answered late) made it. Link to it.
      user = await this.findByKeys(userName, externalId);
      if (!user)
        throw new PermanentTargetError(
          'TargetConflict',
          `${this.target}: creating user ${JSON.stringify(userName)} was refused as a conflict (${describe(made.refused.body)}), and no user with that userName or externalId can be found to link to`,
        );
      detail = `linked to existing user ${user.id} after 409 uniqueness; `;
    }
    const prior: Prior = {
      kind: 'account',
      existed: true,
      id: user.id,
      active: user.active !== false,
      attrs: userAttrs(user),
    };
    // Found by externalId under another userName: the account follows the subject.
    const attrs = user.userName.toLowerCase() === userName.toLowerCase() ? want : { ...want, userName };
    const changed = await this.setUser(user, attrs, true, `ensuring ${op.subject}`);
    this.remember({ ...user, userName });
    return {
      outcome: changed ? 'applied' : 'unchanged',
      prior: prior as JsonValue,
      detail: `${detail}${changed ? `updated user ${user.id}` : `user ${user.id} already so`}`,
    };
  }

  /** By userName, and by externalId when given; two different users answering is a conflict. A batch's prefetch answers first, once. */
  private async findByKeys(userName: string, externalId?: string, prefetched = false): Promise<ScimUser | null> {
    const nameHit = prefetched ? this.takePrefetched(`u:${userName.toLowerCase()}`) : undefined;
    const extHit = prefetched && externalId !== undefined ? this.takePrefetched(`x:${externalId}`) : undefined;
    const byName = nameHit
      ? this.client.oneUser(nameHit, `userName ${JSON.stringify(userName)}`)
      : await this.findUser(userName);
    if (externalId === undefined) return byName;
    const byExt = extHit
      ? this.client.oneUser(extHit, `externalId ${JSON.stringify(externalId)}`)
      : await this.client.findUserByExternalId(externalId);
    if (byName && byExt && byName.id !== byExt.id) {
      throw new PermanentTargetError(
        'TargetConflict',
        `${this.target}: userName ${JSON.stringify(userName)} is user ${byName.id} but externalId ${JSON.stringify(externalId)} is user ${byExt.id}; resolve by hand`,
      );
    }
    return byName ?? byExt;
  }

  /** Make the user's managed attributes (and `active`, when given) so; false when they already were. */
  private async setUser(
    user: ScimUser,
    attrs: Record<string, string | null>,
    active: boolean | undefined,
    what: string,
  ): Promise<boolean> {
    const current = userAttrs(user);
    const target: Record<string, JsonValue> = {};
    for (const [k, v] of Object.entries(attrs)) {
      if (k === 'email') {
        const emails = withPrimaryEmail(user.emails, v);
        if (JSON.stringify(emails) !== JSON.stringify(current.emails)) target.emails = emails;
      } else if ((current[k] ?? null) !== v) target[k] = v;
    }
    return this.client.writeUser(user, target, active, what);
  }

  private async joinGroup(op: OperationSpec): Promise<ApplyResult> {
    const name = nameParam(op, 'group');
    const user = this.recentUser(op.subject) ?? (await this.requireUser(op));
    // Only find-or-create is serialised: joins of a group that exists run at once.
    const lookedAt = groupClock;
    const existing = await this.findGroup(name);
    if (existing) return this.joinExisting(op, name, existing, user);
    return this.findOrCreate(op, name, user, lookedAt);
  }

  /**
   * The group joined under its find-or-create lock, by a caller that found no group of that
   * name in a lookup begun at `lookedAt` (a groupClock reading): it is looked up again unless
   * every find-or-create of it in this process had let go of the lock before that lookup began.
   */
  private findOrCreate(op: OperationSpec, name: string, user: ScimUser, lookedAt: number): Promise<ApplyResult> {
    return serialised(`${this.target}\u0000${name}`, (lastDone) =>
      this.joinGroupOf(op, name, user, lastDone <= lookedAt),
    );
  }

  /** Find-or-create of the group with the user as a member. `absent`: known to be absent just now (no lookup before the create; a 409 still finds it). */
  private async joinGroupOf(op: OperationSpec, name: string, user: ScimUser, absent = false): Promise<ApplyResult> {
    let group = absent ? null : await this.findGroup(name);
    if (!group) {
      const made = await this.client.create<ScimGroup>('/Groups', {
        schemas: [GROUP_SCHEMA],
        displayName: name,
        members: [{ value: user.id }],
      });
      if ('created' in made) {
        const g = made.created;
        return {
          outcome: 'applied',
          prior: { kind: 'group', userId: user.id, groupId: g.id, groupExisted: false, wasMember: false },
          detail: `created group ${g.id} with the user as its member`,
        };
      }
      if (made.refused.status !== 409) this.client.fail(made.refused, `creating group ${JSON.stringify(name)}`);
      group = await this.findGroup(name);
      if (!group)
        throw new PermanentTargetError(
          'TargetConflict',
          `${this.target}: creating group ${JSON.stringify(name)} was refused as a conflict (${describe(made.refused.body)}) and no group of that name can be found`,
        );
    }
    return this.joinExisting(op, name, group, user);
  }

  private async joinExisting(op: OperationSpec, name: string, group: ScimGroup, user: ScimUser): Promise<ApplyResult> {
    const prior: Prior = {
      kind: 'group',
      userId: user.id,
      groupId: group.id,
      groupExisted: true,
      wasMember: await this.client.isMember(group.id, user.id),
    };
    if (prior.wasMember) return { outcome: 'unchanged', prior, detail: 'already a member' };
    await this.client.changeMembers(group, [user.id], true, `adding ${op.subject} to ${JSON.stringify(name)}`);
    return { outcome: 'applied', prior, detail: `added user ${user.id} to group ${group.id}` };
  }

  /**
   * Many joins (or many leaves) of one group as one change: the members are read once and one
   * PATCH adds every user not yet a member (or removes every one that is), instead of a read
   * and a write per user, which a provider pays for in proportion to the group's size. Each
   * operation gets its own result, exactly as `apply` would give it, so each is compensated alone.
   */
  async applyGroupChange(ops: OperationSpec[]): Promise<ApplyResult[]> {
    const first = ops[0];
    if (!first) return [];
    const name = nameParam(first, 'group');
    const join = first.action === 'joinGroup';
    if (!join && first.action !== 'leaveGroup')
      throw new PermanentTargetError(
        'UnsupportedAction',
        `${this.target}: a group change is joinGroup or leaveGroup, not ${first.action}`,
      );
    if (ops.some((o) => o.action !== first.action || nameParam(o, 'group') !== name))
      throw new PermanentTargetError('InvalidParams', `${this.target}: a group change is one action on one group`);
    const users = await Promise.all(
      ops.map((op) => this.recentUser(op.subject) ?? (join ? this.requireUser(op) : this.findUser(op.subject))),
    );
    const results: Array<ApplyResult | undefined> = ops.map(() => undefined);
    const lookedAt = groupClock;
    let group = await this.findGroup(name);
    let known: ScimGroup | undefined;
    if (!group) {
      if (!join)
        return users.map((u) => ({
          outcome: 'unchanged',
          prior: { kind: 'group', userId: u?.id ?? null, groupId: null, groupExisted: false, wasMember: false },
          detail: u ? 'no such group' : 'no such account',
        }));
      // The group is created with the first user as its member, under the find-or-create lock.
      const created = await this.findOrCreate(first, name, users[0]!, lookedAt);
      results[0] = created;
      const p = created.prior as Prior;
      if (p.kind !== 'group' || !p.groupId)
        throw new TransientTargetError(
          `${this.target}: group ${JSON.stringify(name)} was joined but its id is unknown`,
        );
      group = { id: p.groupId, displayName: name } as ScimGroup;
      // Just created with its first member: no need to read it back, unless a later attempt must.
      if (!p.groupExisted) known = { ...group, members: [{ value: users[0]!.id }] };
    }
    const g = group;
    return this.client.fresh(`${join ? 'joining' : 'leaving'} ${JSON.stringify(name)}`, async () => {
      const current = known ?? (await this.client.getGroup(g.id));
      known = undefined;
      if (!current)
        throw new TransientTargetError(
          `${this.target}: group ${g.id} (${JSON.stringify(name)}) disappeared while it was changed`,
        );
      const members = new Set((current.members ?? []).map((m) => m.value));
      const change = new Set<string>();
      const out = users.map((u, i): ApplyResult => {
        if (results[i]) return results[i]!;
        if (!u)
          return {
            outcome: 'unchanged',
            prior: { kind: 'group', userId: null, groupId: g.id, groupExisted: true, wasMember: false },
            detail: 'no such account',
          };
        const isMember = members.has(u.id);
        const prior: Prior = { kind: 'group', userId: u.id, groupId: g.id, groupExisted: true, wasMember: isMember };
        // The same user twice in one change counts once.
        if (change.has(u.id) || (join ? isMember : !isMember))
          return { outcome: 'unchanged', prior, detail: join ? 'already a member' : 'not a member' };
        change.add(u.id);
        return {
          outcome: 'applied',
          prior,
          detail: `${join ? 'added' : 'removed'} user ${u.id} ${join ? 'to' : 'from'} group ${g.id}`,
        };
      });
      if (change.size > 0) {
        const ids = [...change];
        await this.client.changeMembers(
          current,
          ids,
          join,
          `${join ? 'adding' : 'removing'} ${ids.length} member${ids.length === 1 ? '' : 's'} ${join ? 'to' : 'from'} ${JSON.stringify(name)}`,
        );
      }
      return out;
    });
  }

  private async leaveGroup(op: OperationSpec): Promise<ApplyResult> {
    const name = nameParam(op, 'group');
    const user = await this.findUser(op.subject);
    const group = user ? await this.findGroup(name) : null;
    const wasMember = !!(user && group && (await this.client.isMember(group.id, user.id)));
    const prior: Prior = {
      kind: 'group',
      userId: user?.id ?? null,
      groupId: group?.id ?? null,
      groupExisted: !!group,
      wasMember,
    };
    if (!wasMember)
      return {
        outcome: 'unchanged',
        prior,
        detail: !user ? 'no such account' : !group ? 'no such group' : 'not a member',
      };
    await this.client.changeMembers(group!, [user!.id], false, `removing ${op.subject} from ${JSON.stringify(name)}`);
    return { outcome: 'applied', prior, detail: `removed user ${user!.id} from group ${group!.id}` };
  }

  private async role(op: OperationSpec): Promise<ApplyResult> {
    const role = nameParam(op, 'role');
    const grant = op.action === 'grantRole';
    const user = grant ? await this.requireUser(op) : await this.findUser(op.subject);
    if (!user)
      return { outcome: 'unchanged', prior: { kind: 'role', id: null, role, had: false }, detail: 'no such account' };
    const had = hasRole(user, role);
    const prior: Prior = { kind: 'role', id: user.id, role, had };
    if (had === grant)
      return { outcome: 'unchanged', prior, detail: grant ? 'already has the role' : 'does not have the role' };
    await this.client.changeRole(
      user,
      role,
      grant,
      `${grant ? 'granting' : 'revoking'} ${JSON.stringify(role)} ${grant ? 'to' : 'from'} ${op.subject}`,
    );
    return { outcome: 'applied', prior, detail: `${grant ? 'granted' : 'revoked'} role on user ${user.id}` };
  }

  // ---------------------------------------------------------------- compensation

  async compensate(op: CompensationSpec, result: ApplyResult): Promise<CompensateResult> {
    const prior = result.prior as Prior | null;
    const once = () =>
      compensateWith(op, result, priorFacts(prior), (step) => this.performCompensation(op, prior!, step));
    // Deleting a group we created must not race a join of it in this process.
    const lockGroup = prior?.kind === 'group' && !prior.groupExisted && typeof op.params.group === 'string';
    return this.client.fresh(
      `compensating ${op.id}`,
      lockGroup ? () => serialised(`${this.target}\u0000${op.params.group as string}`, once) : once,
    );
  }

  /** Perform a compensation step, with the exact values the prior state recorded. */
  private async performCompensation(
    op: CompensationSpec,
    prior: Prior,
    step: CompensationAction,
  ): Promise<CompensateResult> {
    const what = `compensating ${op.action} ${op.subject}`;
    const mismatch = () => priorMismatch(this.target, prior.kind, step);
    switch (step.action) {
      case 'removeAccount': {
        if (prior.kind !== 'account') throw mismatch();
        const gone = !(await this.client.delete('/Users', prior.id, what));
        return gone
          ? { outcome: 'unchanged', detail: `user ${prior.id} already gone` }
          : { outcome: 'compensated', detail: `deleted user ${prior.id} we created` };
      }
      case 'restoreAccount':
      case 'restoreAttributes': {
        if (prior.kind !== 'account' || !prior.existed) throw mismatch();
        const user = await this.mustGetUser(prior.id, what);
        const names =
          step.action === 'restoreAccount'
            ? Object.keys(prior.attrs)
            : step.attributes.map((a) => (a === 'email' ? 'emails' : a));
        const target = Object.fromEntries(
          names.filter((k) => Object.hasOwn(prior.attrs, k)).map((k) => [k, prior.attrs[k]!]),
        );
        const changed = await this.client.writeUser(
          user,
          target,
          step.action === 'restoreAccount' ? prior.active : undefined,
          what,
        );
        return compensated(changed, `restored user ${prior.id}`);
      }
      case 'reactivateAccount':
      case 'deactivateAccount': {
        if ((prior.kind !== 'active' && prior.kind !== 'account') || prior.id === null) throw mismatch();
        const active = step.action === 'reactivateAccount';
        const user = await this.mustGetUser(prior.id, what);
        return compensated(
          await this.client.writeUser(user, {}, active, what),
          `user ${prior.id} active=${active} again`,
        );
      }
      case 'grantRole':
      case 'revokeRole': {
        if (prior.kind !== 'role' || prior.id === null) throw mismatch();
        const grant = step.action === 'grantRole';
        const user = await this.mustGetUser(prior.id, what);
        if (hasRole(user, step.name) === grant) return { outcome: 'unchanged', detail: 'already as before' };
        await this.client.changeRole(user, step.name, grant, what);
        return { outcome: 'compensated', detail: `${grant ? 'granted' : 'revoked'} the role again` };
      }
      case 'joinGroup':
      case 'leaveGroup': {
        if (prior.kind !== 'group' || prior.userId === null || prior.groupId === null) throw mismatch();
        const join = step.action === 'joinGroup';
        let group = await this.client.getGroup(prior.groupId);
        if (!group) {
          if (!join) return { outcome: 'unchanged', detail: 'the group is gone' };
          throw new PermanentTargetError(
            'CompensationImpossible',
            `${this.target}: ${what}: group ${prior.groupId} no longer exists, so ${op.subject} cannot be put back in it`,
          );
        }
        let changed = false;
        if ((await this.client.isMember(group.id, prior.userId)) !== join) {
          await this.client.changeMembers(group, [prior.userId], join, what);
          changed = true;
        }
        if (step.action === 'leaveGroup' && step.created) {
          group = await this.client.getGroup(group.id);
          if (group && (group.members ?? []).length === 0)
            changed = (await this.client.delete('/Groups', group.id, what, group.meta?.version)) || changed;
        }
        return compensated(changed, `membership of group ${prior.groupId} restored`);
      }
    }
  }

  private async mustGetUser(id: string, what: string): Promise<ScimUser> {
    const u = await this.client.getUser(id);
    if (!u)
      throw new PermanentTargetError('CompensationImpossible', `${this.target}: ${what}: user ${id} no longer exists`);
    return u;
  }
}

// ---------------------------------------------------------------- pure helpers

/** Clocks of the worker and the provider may differ by this much. */
const CLOCK_SKEW_MS = 5_000;

/** The user is the one an earlier attempt of this operation created: it noted the create, and the user was made no earlier than that. */
function createdByEarlierAttempt(noted: JsonValue | undefined, user: ScimUser): boolean {
  if (typeof noted !== 'object' || noted === null || Array.isArray(noted)) return false;
  if (noted['creating'] !== user.userName.toLowerCase() || typeof noted['at'] !== 'string') return false;
  const created = user.meta?.created ? Date.parse(user.meta.created) : NaN;
  return Number.isNaN(created) || created >= Date.parse(noted['at']) - CLOCK_SKEW_MS;
}

/** The keys ensureAccount looks a user up by: its userName (the subject unless set) and its externalId when set. */
function lookupKeys(subject: string, want: Record<string, string | null>): { userName: string; externalId?: string } {
  const userName = (want.userName as string | undefined) ?? subject;
  return typeof want.externalId === 'string' ? { userName, externalId: want.externalId } : { userName };
}

/** The attributes an ensureAccount/updateAttributes asks for, validated; email and the simple ones. */
function desiredAttrs(op: OperationSpec, ensure: boolean): Record<string, string | null> {
  const raw = attributesParam(op);
  const out: Record<string, string | null> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (!MANAGED.has(k))
      throw new PermanentTargetError(
        'InvalidAttribute',
        `${op.target}: ${op.action}: attribute ${JSON.stringify(k)} is not one a SCIM target manages (${[...MANAGED].join(', ')})`,
      );
    if (typeof v !== 'string' && !(v === null && !ensure))
      throw new PermanentTargetError('InvalidAttribute', `${op.target}: ${op.action}: attribute ${k} must be a string`);
    if (k === 'userName' && typeof v === 'string' && v.toLowerCase() !== op.subject.toLowerCase()) {
      throw new PermanentTargetError(
        'InvalidAttribute',
        `${op.target}: ${op.action}: userName ${JSON.stringify(v)} is not the subject ${JSON.stringify(op.subject)}`,
      );
    }
    if (k === 'userName') continue;
    out[k] = v as string | null;
  }
  return out;
}

function toUserBody(want: Record<string, string | null>): JsonObject {
  const body: JsonObject = {};
  for (const [k, v] of Object.entries(want)) {
    if (v === null) continue;
    if (k === 'email') body.emails = [{ value: v, primary: true }];
    else body[k] = v;
  }
  return body;
}

/** The emails with `value` as the primary one (the old primary replaced), or without a primary when value is null. */
function withPrimaryEmail(emails: ScimEmail[] | undefined, value: string | null): JsonValue {
  const list = (emails ?? []).map((e) => ({ ...e }));
  const i = list.findIndex((e) => e.primary === true);
  if (value === null) {
    if (i >= 0) list.splice(i, 1);
  } else if (i >= 0) list[i] = { ...list[i], value };
  else list.unshift({ value, primary: true });
  return list.length > 0 ? (list as JsonValue) : null;
}

function userAttrs(user: ScimUser): UserAttrs {
  const out: UserAttrs = {
    userName: user.userName,
    emails: user.emails && user.emails.length > 0 ? (structuredClone(user.emails) as JsonValue) : null,
  };
  for (const k of SIMPLE_ATTRIBUTES) out[k] = typeof user[k] === 'string' ? (user[k] as string) : null;
  return out;
}

function primaryEmail(user: ScimUser): string | undefined {
  const e = user.emails?.find((x) => x.primary === true) ?? user.emails?.[0];
  return e?.value;
}

function hasRole(user: ScimUser, role: string): boolean {
  return (user.roles ?? []).some((r) => r.value === role);
}

function stateAttributes(user: ScimUser): Record<string, string> {
  const out: Record<string, string> = { userName: user.userName };
  for (const k of SIMPLE_ATTRIBUTES) if (typeof user[k] === 'string') out[k] = user[k] as string;
  const email = primaryEmail(user);
  if (email !== undefined) out.email = email;
  const roles = (user.roles ?? []).map((r) => r.value).filter((v): v is string => typeof v === 'string');
  if (roles.length > 0) out.roles = JSON.stringify([...new Set(roles)].sort());
  return out;
}
