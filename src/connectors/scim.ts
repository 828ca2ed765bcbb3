/**
 * SCIM 2.0 connector (RFC 7643 resources, RFC 7644 protocol): the `idp` target of the
 * reference policy.
 *
 * - Accounts are Users keyed by `userName` (= the operation's subject). Before creating one
 *   it looks up by `userName` and by `externalId`; a 409 `uniqueness` on create is resolved
 *   by looking up again and linking to that account, never by a second one.
 * - Filter values are JSON strings (RFC 7644 §3.4.2.2: quoted, `"` and `\` escaped) and ids
 *   are URL-encoded: identifiers are never concatenated raw. Results are also checked
 *   client-side, so a server that matches loosely cannot make us act on someone else.
 * - What the provider supports comes from `/ServiceProviderConfig` (read once per connector):
 *   PATCH (else PUT of the whole resource), ETags (`If-Match` on every read-modify-write;
 *   a 412 re-reads and retries the operation), filtering (else paging through the list).
 *   Lists are paged with `startIndex`/`count`.
 * - Group membership changes are PATCH `add`/`remove` deltas of one member, never a full
 *   member list (only the PUT fallback has to send one, under `If-Match` when possible).
 * - Accounts are (de)activated with a path-less PATCH `replace` of `{active}`.
 * - grantRole/revokeRole manage the User's `roles` (value) attribute; readAccount shows them
 *   as `attributes.roles`, a JSON array of the role values, sorted (absent when none).
 * - Failures: network/timeout, 429 and 5xx are TransientTargetError (Retry-After honoured,
 *   and it pauses the target's rate limiter); other 4xx are PermanentTargetError with a type.
 * - The bearer token is read in the worker on each request from `auth.bearerTokenEnv` or
 *   `auth.bearerTokenFile`; it is never in a result, a prior state or an error message.
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
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { JsonObject, JsonValue } from '../domain/json';
import { type Gate, httpRequest, targetGate, throwForStatus, type HttpResponse } from './http-util';
import { type RateLimiter, targetRateLimiter } from './rate-limit';
import { PermanentTargetError, TransientTargetError, type StateQuery, type TargetState, type AccountState, type ApplyResult, type CompensateResult, type Connector, type OperationJournal, type OperationSpec } from './types';

export const scimConfigSchema = z
  .object({
    type: z.literal('scim'),
    /** The SCIM base URL, e.g. https://idp.example.com/scim/v2 (the endpoints /Users, /Groups, /ServiceProviderConfig are under it). */
    baseUrl: z.url({ protocol: /^https?$/ }),
    auth: z
      .object({
        /** The name of an environment variable of the worker that holds the bearer token. */
        bearerTokenEnv: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name').optional(),
        /** A file (a mounted secret) that holds the bearer token. */
        bearerTokenFile: z.string().min(1).optional(),
      })
      .strict()
      .refine((a) => !(a.bearerTokenEnv && a.bearerTokenFile), 'give bearerTokenEnv or bearerTokenFile, not both'),
    rateLimit: z.object({ perSecond: z.number().positive() }).strict().optional(),
    timeoutMs: z.number().int().positive().max(600_000).optional(),
    /** Page size for list requests (`count`), default 100, bounded by the provider's maxResults. */
    pageSize: z.number().int().min(1).max(1000).optional(),
    /** Requests in flight to the provider at most, per worker (default 8). */
    maxConnections: z.number().int().min(1).max(256).optional(),
  })
  .strict();
export type ScimConfig = z.infer<typeof scimConfigSchema>;

const DEFAULT_RATE_PER_SECOND = 50;
const DEFAULT_TIMEOUT_MS = 15_000;
const DEFAULT_MAX_CONNECTIONS = 8;
/** Recently created or linked users kept (their ids) for the group changes that follow. */
const RECENT_USERS = 10_000;
const RECENT_USER_MS = 60_000;

/** One limiter per target name, shared by every activity (and every connector instance) of that target in this process. */
export function scimRateLimiter(target: string, perSecond: number = DEFAULT_RATE_PER_SECOND): RateLimiter {
  return targetRateLimiter(target, { perSecond })!;
}

/**
 * Find-or-create of a group is serialised per target and group name in this process: many
 * providers (scim2-server among them) do not keep group displayNames unique, so two
 * concurrent joins of a new group would otherwise create it twice. Across worker processes
 * the lookup-before-create still applies, and two groups of one name are then refused as a
 * TargetConflict for an operator, never guessed between.
 */
const groupLocks = new Map<string, Promise<unknown>>();
async function serialised<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const before = groupLocks.get(key) ?? Promise.resolve();
  const run = before.then(fn, fn);
  const tail = run.catch(() => undefined);
  groupLocks.set(key, tail);
  try {
    return await run;
  } finally {
    if (groupLocks.get(key) === tail) groupLocks.delete(key);
  }
}

const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const PATCH_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

/** Up to this many accounts, drift looks each up by userName; more, it lists every user. */
const FEW_SUBJECTS = 20;
/** Users per page when drift lists a whole target. */
const LIST_PAGE = 1000;

/** A SCIM filter comparison value: a JSON string, so `"` and `\` (and control characters) are escaped (RFC 7644 §3.4.2.2). */
export function scimFilterValue(value: string): string {
  return JSON.stringify(value);
}

/** `attr eq "value"`, with the value escaped. */
export function scimEq(attr: string, value: string): string {
  if (!/^[A-Za-z][A-Za-z0-9_.:$-]*$/.test(attr)) throw new Error(`not a SCIM attribute path: ${attr}`);
  return `${attr} eq ${scimFilterValue(value)}`;
}

/** Top-level single-valued string attributes of the core User schema that updateAttributes may set. */
const SIMPLE_ATTRIBUTES = ['displayName', 'externalId', 'nickName', 'title', 'userType', 'preferredLanguage', 'locale', 'timezone', 'profileUrl'] as const;
const MANAGED = new Set<string>(['userName', 'email', ...SIMPLE_ATTRIBUTES]);

interface ScimEmail {
  value?: string;
  primary?: boolean;
  type?: string;
  display?: string;
}
interface ScimUser {
  id: string;
  userName: string;
  active?: boolean;
  emails?: ScimEmail[];
  roles?: Array<{ value?: string; [k: string]: unknown }>;
  meta?: { version?: string; created?: string };
  [k: string]: unknown;
}
interface ScimGroup {
  id: string;
  displayName: string;
  members?: Array<{ value: string; [k: string]: unknown }>;
  meta?: { version?: string };
  [k: string]: unknown;
}
type Resource = ScimUser | ScimGroup;

interface Features {
  patch: boolean;
  etag: boolean;
  filter: boolean;
  maxResults?: number;
}

/** What compensation needs, per action. JSON, never a secret. */
type Prior =
  | { kind: 'account'; existed: false; id: string }
  | { kind: 'account'; existed: true; id: string; active: boolean; attrs: UserAttrs }
  | { kind: 'active'; id: string | null; active: boolean | null }
  | { kind: 'group'; userId: string | null; groupId: string | null; groupExisted: boolean; wasMember: boolean }
  | { kind: 'role'; id: string | null; role: string; had: boolean };

/** The user attributes we manage, as found: null for absent; emails kept whole so they restore exactly. */
type UserAttrs = { userName: string; emails: JsonValue } & Record<string, JsonValue>;

/** An If-Match precondition failed: somebody changed the resource between our read and our write. */
class StaleError extends Error {}

/** A PATCH operation (RFC 7644 §3.5.2). */
type PatchOp = { op: 'add' | 'remove' | 'replace'; path?: string; value?: JsonValue };

export function createScimConnector(target: string, config: ScimConfig): Connector {
  return new ScimConnector(target, scimConfigSchema.parse(config));
}

class ScimConnector implements Connector {
  readonly type = 'scim';
  private readonly base: string;
  private readonly limiter: RateLimiter;
  private readonly gate: Gate;
  private readonly timeoutMs: number;
  private readonly pageSize: number;
  private features?: Promise<Features>;

  constructor(
    readonly target: string,
    private readonly config: ScimConfig,
  ) {
    this.base = config.baseUrl.replace(/\/+$/, '');
    this.limiter = scimRateLimiter(target, config.rateLimit?.perSecond);
    this.gate = targetGate(target, config.maxConnections ?? DEFAULT_MAX_CONNECTIONS);
    this.timeoutMs = config.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.pageSize = config.pageSize ?? 100;
  }

  async close(): Promise<void> {}

  // ---------------------------------------------------------------- HTTP

  private token(): string | undefined {
    const { bearerTokenEnv, bearerTokenFile } = this.config.auth;
    if (bearerTokenEnv) {
      const v = process.env[bearerTokenEnv];
      if (!v) throw new PermanentTargetError('TargetMisconfigured', `${this.target}: environment variable ${bearerTokenEnv} (the SCIM bearer token) is not set in the worker`);
      return v;
    }
    if (bearerTokenFile) {
      try {
        return readFileSync(bearerTokenFile, 'utf8').trim();
      } catch (err) {
        throw new PermanentTargetError('TargetMisconfigured', `${this.target}: cannot read the SCIM bearer token file ${bearerTokenFile}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
      }
    }
    return undefined;
  }

  private async send(method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, opts: { query?: Record<string, string>; body?: unknown; ifMatch?: string } = {}): Promise<HttpResponse> {
    const qs = opts.query ? `?${new URLSearchParams(opts.query).toString()}` : '';
    const headers: Record<string, string> = { accept: 'application/scim+json, application/json' };
    const token = this.token();
    if (token) headers.authorization = `Bearer ${token}`;
    if (opts.ifMatch) headers['if-match'] = opts.ifMatch;
    return httpRequest({ method, url: `${this.base}${path}${qs}`, headers, body: opts.body, contentType: 'application/scim+json', timeoutMs: this.timeoutMs, limiter: this.limiter, gate: this.gate, target: this.target });
  }

  private fail(res: HttpResponse, what: string): never {
    throwForStatus(res, this.target, what);
    throw new PermanentTargetError('TargetRejected', `${this.target}: ${what}: unexpected answer ${res.status}`);
  }

  private getFeatures(): Promise<Features> {
    this.features ??= (async () => {
      const res = await this.send('GET', '/ServiceProviderConfig');
      if (res.status === 404) return { patch: false, etag: false, filter: true };
      if (res.status >= 300) this.fail(res, 'reading /ServiceProviderConfig');
      const b = (res.body ?? {}) as { patch?: { supported?: boolean }; etag?: { supported?: boolean }; filter?: { supported?: boolean; maxResults?: number } };
      return { patch: b.patch?.supported === true, etag: b.etag?.supported === true, filter: b.filter?.supported !== false, maxResults: b.filter?.maxResults };
    })();
    // A failed read (an outage) must not stick: the next call asks again.
    this.features.catch(() => (this.features = undefined)).catch(() => undefined);
    return this.features;
  }

  /** Every resource of an endpoint that passes `keep`, paged with startIndex/count; filtered server-side when the provider can. */
  private async search<T extends Resource>(endpoint: '/Users' | '/Groups', filter: string, keep: (r: T) => boolean, extra: Record<string, string> = {}): Promise<T[]> {
    const f = await this.getFeatures();
    const count = f.maxResults && f.maxResults > 0 ? Math.min(this.pageSize, f.maxResults) : this.pageSize;
    const out: T[] = [];
    let start = 1;
    for (let page = 0; page < 10_000; page++) {
      const query: Record<string, string> = { startIndex: String(start), count: String(count), ...extra };
      if (f.filter) query.filter = filter;
      const res = await this.send('GET', endpoint, { query });
      if (res.status !== 200) this.fail(res, `searching ${endpoint}`);
      const body = res.body as { totalResults?: number; itemsPerPage?: number; Resources?: T[] };
      const items = Array.isArray(body?.Resources) ? body.Resources : [];
      out.push(...items.filter(keep));
      start += items.length;
      const total = typeof body?.totalResults === 'number' ? body.totalResults : 0;
      if (start > total) return out;
      if (items.length === 0) throw new PermanentTargetError('TargetUnsupported', `${this.target}: ${endpoint} answered an empty page at startIndex ${start} of ${total} results (count ${count}): the provider does not page as RFC 7644 §3.4.2.4 says`);
    }
    throw new TransientTargetError(`${this.target}: ${endpoint} paging did not end`);
  }

  private async findUser(subject: string): Promise<ScimUser | null> {
    const lower = subject.toLowerCase();
    const found = await this.search<ScimUser>('/Users', scimEq('userName', subject), (u) => typeof u.userName === 'string' && u.userName.toLowerCase() === lower);
    if (found.length > 1) throw new PermanentTargetError('TargetConflict', `${this.target}: ${found.length} users have userName ${JSON.stringify(subject)} (ids ${found.map((u) => u.id).join(', ')})`);
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
    this.recent.set(user.userName.toLowerCase(), { user: { id: user.id, userName: user.userName } as ScimUser, at: Date.now() });
  }

  private recentUser(subject: string): ScimUser | undefined {
    const hit = this.recent.get(subject.toLowerCase());
    return hit && Date.now() - hit.at < RECENT_USER_MS ? hit.user : undefined;
  }

  private async findUserByExternalId(externalId: string): Promise<ScimUser | null> {
    const found = await this.search<ScimUser>('/Users', scimEq('externalId', externalId), (u) => u.externalId === externalId);
    if (found.length > 1) throw new PermanentTargetError('TargetConflict', `${this.target}: ${found.length} users have externalId ${JSON.stringify(externalId)}`);
    return found[0] ?? null;
  }

  private async getUser(id: string): Promise<ScimUser | null> {
    const res = await this.send('GET', `/Users/${encodeURIComponent(id)}`);
    if (res.status === 404) return null;
    if (res.status !== 200) this.fail(res, 'reading a user');
    return withVersion(res) as ScimUser;
  }

  private async getGroup(id: string): Promise<ScimGroup | null> {
    const res = await this.send('GET', `/Groups/${encodeURIComponent(id)}`);
    if (res.status === 404) return null;
    if (res.status !== 200) this.fail(res, 'reading a group');
    return withVersion(res) as ScimGroup;
  }

  private async findGroup(name: string): Promise<ScimGroup | null> {
    const f = await this.getFeatures();
    const found = await this.search<ScimGroup>('/Groups', scimEq('displayName', name), (g) => g.displayName === name, f.filter ? { excludedAttributes: 'members' } : {});
    if (found.length > 1) throw new PermanentTargetError('TargetConflict', `${this.target}: ${found.length} groups are named ${JSON.stringify(name)} (ids ${found.map((g) => g.id).join(', ')}); resolve by hand`);
    return found[0] ?? null;
  }

  /** The groups a user is in (by a members filter, or by reading every group where filtering is unsupported). */
  private async groupsOf(userId: string): Promise<ScimGroup[]> {
    const f = await this.getFeatures();
    const isIn = (g: ScimGroup) => !Array.isArray(g.members) || g.members.some((m) => m.value === userId);
    return this.search<ScimGroup>('/Groups', `members[value eq ${scimFilterValue(userId)}]`, f.filter ? isIn : (g) => Array.isArray(g.members) && isIn(g), f.filter ? { attributes: 'displayName' } : {});
  }

  private async isMember(groupId: string, userId: string): Promise<boolean> {
    const f = await this.getFeatures();
    if (f.filter) {
      const hits = await this.search<ScimGroup>('/Groups', `id eq ${scimFilterValue(groupId)} and members[value eq ${scimFilterValue(userId)}]`, (g) => g.id === groupId, { attributes: 'id' });
      return hits.length > 0;
    }
    const g = await this.getGroup(groupId);
    return !!g?.members?.some((m) => m.value === userId);
  }

  /**
   * Change a resource: PATCH `ops` where the provider supports PATCH, else PUT `mutate(current)`.
   * `If-Match` with the version we read when the provider supports ETags (always for PUT;
   * for PATCH when `conditional`); a 412 throws StaleError so the operation re-reads.
   */
  private async update(endpoint: '/Users' | '/Groups', current: Resource, ops: PatchOp[], mutate: (r: Resource) => void, conditional: boolean, what: string): Promise<void> {
    const f = await this.getFeatures();
    const path = `${endpoint}/${encodeURIComponent(current.id)}`;
    let res: HttpResponse;
    if (f.patch) {
      const ifMatch = f.etag && conditional ? current.meta?.version : undefined;
      res = await this.send('PATCH', path, { body: { schemas: [PATCH_SCHEMA], Operations: ops }, ifMatch });
    } else {
      // PUT needs the whole, current resource: re-read it unless we already hold a full one.
      const full = endpoint === '/Users' ? await this.getUser(current.id) : await this.getGroup(current.id);
      if (!full) throw new PermanentTargetError('TargetNotFound', `${this.target}: ${what}: ${endpoint.slice(1, -1).toLowerCase()} ${current.id} disappeared`);
      if (conditional && f.etag && current.meta?.version && full.meta?.version && current.meta.version !== full.meta.version) throw new StaleError();
      const next = structuredClone(full) as Record<string, unknown>;
      delete next.meta;
      mutate(next as Resource);
      res = await this.send('PUT', path, { body: next, ifMatch: f.etag ? full.meta?.version : undefined });
    }
    if (res.status === 412) throw new StaleError();
    if (res.status === 409) throw new PermanentTargetError('TargetConflict', `${this.target}: ${what}: refused as a conflict (${describe(res.body)})`);
    if (res.status !== 200 && res.status !== 204) this.fail(res, what);
  }

  /** Retry an operation that met a concurrent change (412) from a fresh read. */
  private async fresh<T>(what: string, fn: () => Promise<T>): Promise<T> {
    for (let i = 0; ; i++) {
      try {
        return await fn();
      } catch (err) {
        if (!(err instanceof StaleError)) throw err;
        if (i >= 3) throw new TransientTargetError(`${this.target}: ${what}: the resource kept changing under us (412 Precondition Failed)`);
      }
    }
  }

  // ---------------------------------------------------------------- Connector

  async readAccount(subject: string): Promise<AccountState | null> {
    const user = await this.findUser(subject);
    if (!user) return null;
    const groups = await this.groupsOf(user.id);
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
      for (const u of await this.listAll<ScimUser>('/Users')) byId.set(u.id, u);
    }
    const accounts: TargetState['accounts'] = [];
    for (const u of byId.values()) {
      if (typeof u.userName !== 'string' || !wanted.has(u.userName.toLowerCase())) continue;
      accounts.push({ subject: u.userName.toLowerCase(), active: u.active !== false, attributes: stateAttributes(u) });
    }
    const members: TargetState['members'] = {};
    for (const g of query.groups) {
      if (g.kind === 'role') {
        members[g.name] = [...byId.values()].filter((u) => hasRole(u, g.name) && wanted.has(u.userName.toLowerCase())).map((u) => u.userName.toLowerCase());
        continue;
      }
      const found = await this.search<ScimGroup>('/Groups', scimEq('displayName', g.name), (x) => x.displayName === g.name);
      if (found.length > 1) throw new PermanentTargetError('TargetConflict', `${this.target}: ${found.length} groups are named ${JSON.stringify(g.name)}; resolve by hand`);
      const group = found[0];
      if (!group) {
        members[g.name] = null;
        continue;
      }
      const list: string[] = [];
      for (const m of group.members ?? []) {
        let u = byId.get(m.value);
        if (!u) {
          u = (await this.getUser(m.value)) ?? undefined;
          if (u) byId.set(u.id, u);
        }
        if (u && typeof u.userName === 'string') list.push(u.userName.toLowerCase());
      }
      members[g.name] = list;
    }
    return { accounts, members, managedAttributes: [...MANAGED] };
  }

  /** Every resource of an endpoint, paged with startIndex/count (large pages: drift reads whole targets). */
  private async listAll<T extends Resource>(endpoint: '/Users' | '/Groups'): Promise<T[]> {
    const f = await this.getFeatures();
    const want = Math.max(this.pageSize, LIST_PAGE);
    const count = f.maxResults && f.maxResults > 0 ? Math.min(want, f.maxResults) : want;
    const out: T[] = [];
    let start = 1;
    for (let page = 0; page < 100_000; page++) {
      const res = await this.send('GET', endpoint, { query: { startIndex: String(start), count: String(count) } });
      if (res.status !== 200) this.fail(res, `listing ${endpoint}`);
      const body = res.body as { totalResults?: number; Resources?: T[] };
      const items = Array.isArray(body?.Resources) ? body.Resources : [];
      out.push(...items);
      start += items.length;
      const total = typeof body?.totalResults === 'number' ? body.totalResults : 0;
      if (start > total) return out;
      if (items.length === 0) throw new PermanentTargetError('TargetUnsupported', `${this.target}: ${endpoint} answered an empty page at startIndex ${start} of ${total} results`);
    }
    throw new TransientTargetError(`${this.target}: ${endpoint} paging did not end`);
  }

  async apply(op: OperationSpec, journal?: OperationJournal): Promise<ApplyResult> {
    return this.fresh(`${op.action} ${op.subject}`, () => this.applyOnce(op, journal));
  }

  private async applyOnce(op: OperationSpec, journal: OperationJournal | undefined): Promise<ApplyResult> {
    switch (op.action) {
      case 'ensureAccount':
        return this.ensureAccount(op, journal);
      case 'updateAttributes': {
        const user = await this.requireUser(op);
        const want = desiredAttrs(op, false);
        const prior: Prior = { kind: 'account', existed: true, id: user.id, active: user.active !== false, attrs: userAttrs(user) };
        const changed = await this.setUser(user, want, undefined, `updating ${op.subject}`);
        return { outcome: changed ? 'applied' : 'unchanged', prior: prior as JsonValue, detail: changed ? `updated ${Object.keys(want).join(', ')} of user ${user.id}` : 'attributes already so' };
      }
      case 'deactivateAccount':
      case 'reactivateAccount': {
        const active = op.action === 'reactivateAccount';
        const user = active ? await this.requireUser(op) : await this.findUser(op.subject);
        if (!user) return { outcome: 'unchanged', prior: { kind: 'active', id: null, active: null }, detail: 'no such account' };
        const was = user.active !== false;
        const changed = await this.setUser(user, {}, active, `${active ? 'reactivating' : 'deactivating'} ${op.subject}`);
        return { outcome: changed ? 'applied' : 'unchanged', prior: { kind: 'active', id: user.id, active: was }, detail: changed ? `user ${user.id} active=${active}` : `already active=${active}` };
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
    if (!u) throw new PermanentTargetError('AccountMissing', `${this.target}: ${op.action}: no user with userName ${JSON.stringify(op.subject)} (ensureAccount must come first)`);
    return u;
  }

  private async ensureAccount(op: OperationSpec, journal: OperationJournal | undefined): Promise<ApplyResult> {
    const want = desiredAttrs(op, true);
    const userName = (want.userName as string | undefined) ?? op.subject;
    const externalId = typeof want.externalId === 'string' ? want.externalId : undefined;
    let user = await this.findByKeys(userName, externalId);
    let detail = '';
    if (user && createdByEarlierAttempt(journal?.noted, user)) {
      await this.setUser(user, want, true, `ensuring ${op.subject}`);
      this.remember({ ...user, userName });
      return { outcome: 'applied', prior: { kind: 'account', existed: false, id: user.id }, detail: `created user ${user.id} (the answer to the create was lost; the retry found it)` };
    }
    if (!user) {
      await journal?.note({ creating: userName.toLowerCase(), at: new Date().toISOString() });
      const res = await this.send('POST', '/Users', { body: { schemas: [USER_SCHEMA], ...toUserBody(want), userName, active: true } });
      if (res.status === 201 || res.status === 200) {
        const created = res.body as ScimUser;
        this.remember({ ...created, userName });
        return { outcome: 'applied', prior: { kind: 'account', existed: false, id: created.id }, detail: `created user ${created.id}` };
      }
      if (res.status !== 409) this.fail(res, `creating user ${JSON.stringify(userName)}`);
      // 409 uniqueness: somebody (a concurrent attempt, or a lookup the provider answered late) made it. Link to it.
      user = await this.findByKeys(userName, externalId);
      if (!user) throw new PermanentTargetError('TargetConflict', `${this.target}: creating user ${JSON.stringify(userName)} was refused as a conflict (${describe(res.body)}), and no user with that userName or externalId can be found to link to`);
      detail = `linked to existing user ${user.id} after 409 uniqueness; `;
    }
    const prior: Prior = { kind: 'account', existed: true, id: user.id, active: user.active !== false, attrs: userAttrs(user) };
    // Found by externalId under another userName: the account follows the subject.
    const attrs = user.userName.toLowerCase() === userName.toLowerCase() ? want : { ...want, userName };
    const changed = await this.setUser(user, attrs, true, `ensuring ${op.subject}`);
    this.remember({ ...user, userName });
    return { outcome: changed ? 'applied' : 'unchanged', prior: prior as JsonValue, detail: `${detail}${changed ? `updated user ${user.id}` : `user ${user.id} already so`}` };
  }

  /** By userName, and by externalId when given; two different users answering is a conflict. */
  private async findByKeys(userName: string, externalId?: string): Promise<ScimUser | null> {
    const byName = await this.findUser(userName);
    if (externalId === undefined) return byName;
    const byExt = await this.findUserByExternalId(externalId);
    if (byName && byExt && byName.id !== byExt.id) {
      throw new PermanentTargetError('TargetConflict', `${this.target}: userName ${JSON.stringify(userName)} is user ${byName.id} but externalId ${JSON.stringify(externalId)} is user ${byExt.id}; resolve by hand`);
    }
    return byName ?? byExt;
  }

  /** Make the user's managed attributes (and `active`, when given) so; false when they already were. */
  private async setUser(user: ScimUser, attrs: Record<string, string | null>, active: boolean | undefined, what: string): Promise<boolean> {
    const current = userAttrs(user);
    const target: Record<string, JsonValue> = {};
    for (const [k, v] of Object.entries(attrs)) {
      if (k === 'email') {
        const emails = withPrimaryEmail(user.emails, v);
        if (JSON.stringify(emails) !== JSON.stringify(current.emails)) target.emails = emails;
      } else if ((current[k] ?? null) !== v) target[k] = v;
    }
    return this.write(user, target, active, what);
  }

  /** Write top-level user attributes (null removes) and active; false when nothing differs. */
  private async write(user: ScimUser, target: Record<string, JsonValue>, active: boolean | undefined, what: string): Promise<boolean> {
    const set: JsonObject = {};
    const removed: string[] = [];
    for (const [k, v] of Object.entries(target)) {
      if (JSON.stringify(v ?? null) === JSON.stringify(user[k] ?? null)) continue;
      if (v === null) removed.push(k);
      else set[k] = v;
    }
    if (active !== undefined && (user.active !== false) !== active) set.active = active;
    if (Object.keys(set).length === 0 && removed.length === 0) return false;
    const ops: PatchOp[] = [];
    if (Object.keys(set).length > 0) ops.push({ op: 'replace', value: set });
    for (const k of removed) ops.push({ op: 'remove', path: k });
    await this.update(
      '/Users',
      user,
      ops,
      (r) => {
        const u = r as Record<string, unknown>;
        Object.assign(u, set);
        for (const k of removed) delete u[k];
      },
      true,
      what,
    );
    return true;
  }

  private async joinGroup(op: OperationSpec): Promise<ApplyResult> {
    const name = groupParam(op);
    const user = await this.requireUser(op);
    // Only find-or-create is serialised: joins of a group that exists run at once.
    const existing = await this.findGroup(name);
    if (existing) return this.joinExisting(op, name, existing, user);
    return serialised(`${this.target}\u0000${name}`, () => this.joinGroupOf(op, name, user));
  }

  private async joinGroupOf(op: OperationSpec, name: string, user: ScimUser): Promise<ApplyResult> {
    let group = await this.findGroup(name);
    if (!group) {
      const res = await this.send('POST', '/Groups', { body: { schemas: [GROUP_SCHEMA], displayName: name, members: [{ value: user.id }] } });
      if (res.status === 201 || res.status === 200) {
        const g = res.body as ScimGroup;
        return { outcome: 'applied', prior: { kind: 'group', userId: user.id, groupId: g.id, groupExisted: false, wasMember: false }, detail: `created group ${g.id} with the user as its member` };
      }
      if (res.status !== 409) this.fail(res, `creating group ${JSON.stringify(name)}`);
      group = await this.findGroup(name);
      if (!group) throw new PermanentTargetError('TargetConflict', `${this.target}: creating group ${JSON.stringify(name)} was refused as a conflict (${describe(res.body)}) and no group of that name can be found`);
    }
    return this.joinExisting(op, name, group, user);
  }

  private async joinExisting(op: OperationSpec, name: string, group: ScimGroup, user: ScimUser): Promise<ApplyResult> {
    const prior: Prior = { kind: 'group', userId: user.id, groupId: group.id, groupExisted: true, wasMember: await this.isMember(group.id, user.id) };
    if (prior.wasMember) return { outcome: 'unchanged', prior, detail: 'already a member' };
    await this.addMember(group, user.id, `adding ${op.subject} to ${JSON.stringify(name)}`);
    return { outcome: 'applied', prior, detail: `added user ${user.id} to group ${group.id}` };
  }

  /**
   * Many joins (or many leaves) of one group as one change: the members are read once and one
   * PATCH adds every user not yet a member (or removes every one that is), instead of a read
   * and a write per user, which a provider pays for in proportion to the group's size. Each
   * operation gets its own result, exactly as `apply` would give it, so each is undone alone.
   */
  async applyGroupChange(ops: OperationSpec[]): Promise<ApplyResult[]> {
    const first = ops[0];
    if (!first) return [];
    const name = groupParam(first);
    const join = first.action === 'joinGroup';
    if (!join && first.action !== 'leaveGroup') throw new PermanentTargetError('UnsupportedAction', `${this.target}: a group change is joinGroup or leaveGroup, not ${first.action}`);
    if (ops.some((o) => o.action !== first.action || groupParam(o) !== name)) throw new PermanentTargetError('InvalidParams', `${this.target}: a group change is one action on one group`);
    const users = await Promise.all(ops.map((op) => this.recentUser(op.subject) ?? (join ? this.requireUser(op) : this.findUser(op.subject))));
    const results: Array<ApplyResult | undefined> = ops.map(() => undefined);
    let group = await this.findGroup(name);
    let known: ScimGroup | undefined;
    if (!group) {
      if (!join) return users.map((u) => ({ outcome: 'unchanged', prior: { kind: 'group', userId: u?.id ?? null, groupId: null, groupExisted: false, wasMember: false }, detail: u ? 'no such group' : 'no such account' }));
      // The group is created with the first user as its member, under the find-or-create lock.
      const created = await serialised(`${this.target}\u0000${name}`, () => this.joinGroupOf(first, name, users[0]!));
      results[0] = created;
      const p = created.prior as Prior;
      if (p.kind !== 'group' || !p.groupId) throw new TransientTargetError(`${this.target}: group ${JSON.stringify(name)} was joined but its id is unknown`);
      group = { id: p.groupId, displayName: name } as ScimGroup;
      // Just created with its first member: no need to read it back, unless a later attempt must.
      if (!p.groupExisted) known = { ...group, members: [{ value: users[0]!.id }] };
    }
    const g = group;
    return this.fresh(`${join ? 'joining' : 'leaving'} ${JSON.stringify(name)}`, async () => {
      const current = known ?? (await this.getGroup(g.id));
      known = undefined;
      if (!current) throw new TransientTargetError(`${this.target}: group ${g.id} (${JSON.stringify(name)}) disappeared while it was changed`);
      const members = new Set((current.members ?? []).map((m) => m.value));
      const change = new Set<string>();
      const out = users.map((u, i): ApplyResult => {
        if (results[i]) return results[i]!;
        if (!u) return { outcome: 'unchanged', prior: { kind: 'group', userId: null, groupId: g.id, groupExisted: true, wasMember: false }, detail: 'no such account' };
        const isMember = members.has(u.id);
        const prior: Prior = { kind: 'group', userId: u.id, groupId: g.id, groupExisted: true, wasMember: isMember };
        // The same user twice in one change counts once.
        if (change.has(u.id) || (join ? isMember : !isMember)) return { outcome: 'unchanged', prior, detail: join ? 'already a member' : 'not a member' };
        change.add(u.id);
        return { outcome: 'applied', prior, detail: `${join ? 'added' : 'removed'} user ${u.id} ${join ? 'to' : 'from'} group ${g.id}` };
      });
      if (change.size > 0) {
        const ids = [...change];
        const patch: PatchOp[] = join ? [{ op: 'add', path: 'members', value: ids.map((value) => ({ value })) }] : ids.map((id) => ({ op: 'remove', path: `members[value eq ${scimFilterValue(id)}]` }));
        await this.update(
          '/Groups',
          current,
          patch,
          (r) => {
            const x = r as ScimGroup;
            const rest = (x.members ?? []).filter((m) => !change.has(m.value));
            x.members = join ? [...rest, ...ids.map((value) => ({ value }))] : rest;
          },
          false,
          `${join ? 'adding' : 'removing'} ${ids.length} member${ids.length === 1 ? '' : 's'} ${join ? 'to' : 'from'} ${JSON.stringify(name)}`,
        );
      }
      return out;
    });
  }

  private async leaveGroup(op: OperationSpec): Promise<ApplyResult> {
    const name = groupParam(op);
    const user = await this.findUser(op.subject);
    const group = user ? await this.findGroup(name) : null;
    const wasMember = !!(user && group && (await this.isMember(group.id, user.id)));
    const prior: Prior = { kind: 'group', userId: user?.id ?? null, groupId: group?.id ?? null, groupExisted: !!group, wasMember };
    if (!wasMember) return { outcome: 'unchanged', prior, detail: !user ? 'no such account' : !group ? 'no such group' : 'not a member' };
    await this.removeMember(group!, user!.id, `removing ${op.subject} from ${JSON.stringify(name)}`);
    return { outcome: 'applied', prior, detail: `removed user ${user!.id} from group ${group!.id}` };
  }

  private addMember(group: ScimGroup, userId: string, what: string): Promise<void> {
    return this.update(
      '/Groups',
      group,
      [{ op: 'add', path: 'members', value: [{ value: userId }] }],
      (r) => {
        const g = r as ScimGroup;
        g.members = [...(g.members ?? []).filter((m) => m.value !== userId), { value: userId }];
      },
      false,
      what,
    );
  }

  private removeMember(group: ScimGroup, userId: string, what: string): Promise<void> {
    return this.update(
      '/Groups',
      group,
      [{ op: 'remove', path: `members[value eq ${scimFilterValue(userId)}]` }],
      (r) => {
        const g = r as ScimGroup;
        g.members = (g.members ?? []).filter((m) => m.value !== userId);
      },
      false,
      what,
    );
  }

  private async role(op: OperationSpec): Promise<ApplyResult> {
    const role = op.params.role;
    if (typeof role !== 'string' || role === '') throw new PermanentTargetError('InvalidParams', `${this.target}: ${op.action} needs params.role, a non-empty string`);
    const grant = op.action === 'grantRole';
    const user = grant ? await this.requireUser(op) : await this.findUser(op.subject);
    if (!user) return { outcome: 'unchanged', prior: { kind: 'role', id: null, role, had: false }, detail: 'no such account' };
    const had = hasRole(user, role);
    const prior: Prior = { kind: 'role', id: user.id, role, had };
    if (had === grant) return { outcome: 'unchanged', prior, detail: grant ? 'already has the role' : 'does not have the role' };
    await this.setRole(user, role, grant, `${grant ? 'granting' : 'revoking'} ${JSON.stringify(role)} ${grant ? 'to' : 'from'} ${op.subject}`);
    return { outcome: 'applied', prior, detail: `${grant ? 'granted' : 'revoked'} role on user ${user.id}` };
  }

  private setRole(user: ScimUser, role: string, grant: boolean, what: string): Promise<void> {
    const ops: PatchOp[] = grant ? [{ op: 'add', path: 'roles', value: [{ value: role }] }] : [{ op: 'remove', path: `roles[value eq ${scimFilterValue(role)}]` }];
    return this.update(
      '/Users',
      user,
      ops,
      (r) => {
        const u = r as ScimUser;
        const rest = (u.roles ?? []).filter((x) => x.value !== role);
        if (grant) u.roles = [...rest, { value: role }];
        else if (rest.length > 0) u.roles = rest;
        else delete u.roles;
      },
      true,
      what,
    );
  }

  // ---------------------------------------------------------------- compensation

  async compensate(op: OperationSpec, result: ApplyResult): Promise<CompensateResult> {
    if (result.outcome === 'unchanged') return { outcome: 'unchanged', detail: 'the operation changed nothing' };
    const prior = result.prior as Prior;
    if (!prior || typeof prior !== 'object' || typeof (prior as { kind?: unknown }).kind !== 'string') {
      throw new PermanentTargetError('CompensationImpossible', `${this.target}: cannot compensate ${op.id}: its recorded prior state is not a SCIM connector's`);
    }
    const once = () => this.compensateOnce(op, prior);
    // Deleting a group we created must not race a join of it in this process.
    const lockGroup = prior.kind === 'group' && !prior.groupExisted && typeof op.params.group === 'string';
    return this.fresh(`compensating ${op.id}`, lockGroup ? () => serialised(`${this.target}\u0000${op.params.group as string}`, once) : once);
  }

  private async compensateOnce(op: OperationSpec, prior: Prior): Promise<CompensateResult> {
    const what = `compensating ${op.action} ${op.subject}`;
    switch (prior.kind) {
      case 'account': {
        if (!prior.existed) {
          const res = await this.send('DELETE', `/Users/${encodeURIComponent(prior.id)}`);
          if (res.status === 404) return { outcome: 'unchanged', detail: `user ${prior.id} already gone` };
          if (res.status !== 204 && res.status !== 200) this.fail(res, what);
          return { outcome: 'compensated', detail: `deleted user ${prior.id} we created` };
        }
        const user = await this.mustGetUser(prior.id, what);
        const target: Record<string, JsonValue> = {};
        for (const [k, v] of Object.entries(prior.attrs)) target[k] = v;
        const changed = await this.write(user, target, prior.active, what);
        return { outcome: changed ? 'compensated' : 'unchanged', detail: changed ? `restored user ${prior.id}` : 'already as before' };
      }
      case 'active': {
        if (prior.id === null || prior.active === null) return { outcome: 'unchanged' };
        const user = await this.mustGetUser(prior.id, what);
        const changed = await this.write(user, {}, prior.active, what);
        return { outcome: changed ? 'compensated' : 'unchanged', detail: changed ? `user ${prior.id} active=${prior.active} again` : 'already as before' };
      }
      case 'role': {
        if (prior.id === null) return { outcome: 'unchanged' };
        const user = await this.mustGetUser(prior.id, what);
        if (hasRole(user, prior.role) === prior.had) return { outcome: 'unchanged', detail: 'already as before' };
        await this.setRole(user, prior.role, prior.had, what);
        return { outcome: 'compensated', detail: `${prior.had ? 'granted' : 'revoked'} the role again` };
      }
      case 'group': {
        if (prior.userId === null || prior.groupId === null) return { outcome: 'unchanged' };
        let group = await this.getGroup(prior.groupId);
        if (!group) {
          if (!prior.wasMember) return { outcome: 'unchanged', detail: 'the group is gone' };
          throw new PermanentTargetError('CompensationImpossible', `${this.target}: ${what}: group ${prior.groupId} no longer exists, so ${op.subject} cannot be put back in it`);
        }
        let changed = false;
        const member = await this.isMember(group.id, prior.userId);
        if (member !== prior.wasMember) {
          if (prior.wasMember) await this.addMember(group, prior.userId, what);
          else await this.removeMember(group, prior.userId, what);
          changed = true;
        }
        if (!prior.groupExisted) {
          group = await this.getGroup(group.id);
          if (group && (group.members ?? []).length === 0) {
            const f = await this.getFeatures();
            const res = await this.send('DELETE', `/Groups/${encodeURIComponent(group.id)}`, { ifMatch: f.etag ? group.meta?.version : undefined });
            if (res.status === 412) throw new StaleError();
            if (res.status !== 204 && res.status !== 200 && res.status !== 404) this.fail(res, what);
            changed = changed || res.status !== 404;
          }
        }
        return { outcome: changed ? 'compensated' : 'unchanged', detail: changed ? `membership of group ${prior.groupId} restored` : 'already as before' };
      }
    }
  }

  private async mustGetUser(id: string, what: string): Promise<ScimUser> {
    const u = await this.getUser(id);
    if (!u) throw new PermanentTargetError('CompensationImpossible', `${this.target}: ${what}: user ${id} no longer exists`);
    return u;
  }
}

// ---------------------------------------------------------------- pure helpers

/** A resource read by GET, with the ETag header as its version when the body has none. */
function withVersion(res: HttpResponse): Resource {
  const r = res.body as Resource;
  const etag = res.headers.get('etag');
  if (etag && r && typeof r === 'object') r.meta = { ...(r.meta ?? {}), version: r.meta?.version ?? etag };
  return r;
}

/** Clocks of the worker and the provider may differ by this much. */
const CLOCK_SKEW_MS = 5_000;

/** The user is the one an earlier attempt of this operation created: it noted the create, and the user was made no earlier than that. */
function createdByEarlierAttempt(noted: JsonValue | undefined, user: ScimUser): boolean {
  if (typeof noted !== 'object' || noted === null || Array.isArray(noted)) return false;
  if (noted['creating'] !== user.userName.toLowerCase() || typeof noted['at'] !== 'string') return false;
  const created = user.meta?.created ? Date.parse(user.meta.created) : NaN;
  return Number.isNaN(created) || created >= Date.parse(noted['at']) - CLOCK_SKEW_MS;
}

function describe(body: unknown): string {
  if (body && typeof body === 'object') {
    const b = body as { scimType?: unknown; detail?: unknown };
    return [b.scimType, b.detail].filter((x) => typeof x === 'string').join(': ') || 'no detail';
  }
  return 'no detail';
}

function groupParam(op: OperationSpec): string {
  const g = op.params.group;
  if (typeof g !== 'string' || g === '') throw new PermanentTargetError('InvalidParams', `${op.target}: ${op.action} needs params.group, a non-empty string`);
  return g;
}

/** The attributes an ensureAccount/updateAttributes asks for, validated; email and the simple ones. */
function desiredAttrs(op: OperationSpec, ensure: boolean): Record<string, string | null> {
  const raw = op.params.attributes ?? {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new PermanentTargetError('InvalidParams', `${op.target}: ${op.action}: params.attributes must be an object`);
  const out: Record<string, string | null> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (!MANAGED.has(k)) throw new PermanentTargetError('InvalidAttribute', `${op.target}: ${op.action}: attribute ${JSON.stringify(k)} is not one a SCIM target manages (${[...MANAGED].join(', ')})`);
    if (typeof v !== 'string' && !(v === null && !ensure)) throw new PermanentTargetError('InvalidAttribute', `${op.target}: ${op.action}: attribute ${k} must be a string`);
    if (k === 'userName' && typeof v === 'string' && v.toLowerCase() !== op.subject.toLowerCase()) {
      throw new PermanentTargetError('InvalidAttribute', `${op.target}: ${op.action}: userName ${JSON.stringify(v)} is not the subject ${JSON.stringify(op.subject)}`);
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
  const out: UserAttrs = { userName: user.userName, emails: user.emails && user.emails.length > 0 ? (structuredClone(user.emails) as JsonValue) : null };
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
