/**
 * The SCIM 2.0 protocol client (RFC 7644) the SCIM connector (../scim.ts) works through:
 * transport, auth, paging, feature discovery and the providers' quirks. It knows Users, Groups
 * and PATCH, not what an operation means.
 *
 * - Requests go through the shared HTTP helpers (../http-util.ts): a per-target rate limiter
 *   (429 with Retry-After pauses it) and a per-target gate of connections in flight.
 * - Auth: a bearer token, read on each request from the reader the registry gives it (never in
 *   a result, a prior state or an error message).
 * - What the provider supports comes from `/ServiceProviderConfig` (read once, an outage not
 *   remembered): PATCH (else PUT of the whole resource), ETags (`If-Match` on every
 *   read-modify-write; a 412 throws StaleError, and `fresh` re-runs from a fresh read),
 *   filtering (else paging through the list and matching here).
 * - Lists are paged with `startIndex`/`count` (count bounded by the provider's maxResults).
 * - Filter values are JSON strings (RFC 7644 §3.4.2.2) and ids are URL-encoded: identifiers
 *   are never concatenated raw. Results are also checked here, so a server that matches
 *   loosely cannot make the connector act on someone else.
 * - Failures: network/timeout, 429 and 5xx are TransientTargetError; other 4xx are
 *   PermanentTargetError with a type (../http-util.ts classifyStatus).
 */
import { z } from 'zod';
import type { JsonObject, JsonValue } from '../../domain/json';
import { type Gate, httpRequest, targetGate, throwForStatus, type HttpResponse } from '../http-util';
import { type RateLimiter, targetRateLimiter } from '../rate-limit';
import type { Secret } from '../secrets';
import { PermanentTargetError, TransientTargetError } from '../types';

export const scimConfigSchema = z
  .object({
    type: z.literal('scim'),
    /** The SCIM base URL, e.g. https://idp.example.com/scim/v2 (the endpoints /Users, /Groups, /ServiceProviderConfig are under it). */
    baseUrl: z.url({ protocol: /^https?$/ }),
    auth: z
      .object({
        /** The name of an environment variable of the worker that holds the bearer token. */
        bearerTokenEnv: z
          .string()
          .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name')
          .optional(),
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
/** Users per page when a whole endpoint is listed. */
const LIST_PAGE = 1000;

/** One limiter per target name, shared by every activity (and every connector instance) of that target in this process. */
export function scimRateLimiter(target: string, perSecond: number = DEFAULT_RATE_PER_SECOND): RateLimiter {
  return targetRateLimiter(target, { perSecond })!;
}

const PATCH_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

/** A SCIM filter comparison value: a JSON string, so `"` and `\` (and control characters) are escaped (RFC 7644 §3.4.2.2). */
export function scimFilterValue(value: string): string {
  return JSON.stringify(value);
}

/** `attr eq "value"`, with the value escaped. */
export function scimEq(attr: string, value: string): string {
  if (!/^[A-Za-z][A-Za-z0-9_.:$-]*$/.test(attr)) throw new Error(`not a SCIM attribute path: ${attr}`);
  return `${attr} eq ${scimFilterValue(value)}`;
}

export interface ScimEmail {
  value?: string;
  primary?: boolean;
  type?: string;
  display?: string;
}
export interface ScimUser {
  id: string;
  userName: string;
  active?: boolean;
  emails?: ScimEmail[];
  roles?: Array<{ value?: string; [k: string]: unknown }>;
  meta?: { version?: string; created?: string };
  [k: string]: unknown;
}
export interface ScimGroup {
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

/** An If-Match precondition failed: somebody changed the resource between our read and our write. */
export class StaleError extends Error {}

/** A PATCH operation (RFC 7644 §3.5.2). */
type PatchOp = { op: 'add' | 'remove' | 'replace'; path?: string; value?: JsonValue };

/** What the client needs besides the configuration: the bearer token's reader (none: no auth). */
export interface ScimCredentials {
  token?: Secret;
}

export class ScimClient {
  private readonly base: string;
  private readonly limiter: RateLimiter;
  private readonly gate: Gate;
  private readonly timeoutMs: number;
  readonly pageSize: number;
  private features?: Promise<Features>;

  constructor(
    readonly target: string,
    config: ScimConfig,
    private readonly credentials: ScimCredentials,
  ) {
    this.base = config.baseUrl.replace(/\/+$/, '');
    this.limiter = scimRateLimiter(target, config.rateLimit?.perSecond);
    this.gate = targetGate(target, config.maxConnections ?? DEFAULT_MAX_CONNECTIONS);
    this.timeoutMs = config.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.pageSize = config.pageSize ?? 100;
  }

  // ---------------------------------------------------------------- transport

  async send(
    method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
    path: string,
    opts: { query?: Record<string, string>; body?: unknown; ifMatch?: string } = {},
  ): Promise<HttpResponse> {
    const qs = opts.query ? `?${new URLSearchParams(opts.query).toString()}` : '';
    const headers: Record<string, string> = { accept: 'application/scim+json, application/json' };
    const token = this.credentials.token?.();
    if (token) headers.authorization = `Bearer ${token}`;
    if (opts.ifMatch) headers['if-match'] = opts.ifMatch;
    return httpRequest({
      method,
      url: `${this.base}${path}${qs}`,
      headers,
      body: opts.body,
      contentType: 'application/scim+json',
      timeoutMs: this.timeoutMs,
      limiter: this.limiter,
      gate: this.gate,
      target: this.target,
    });
  }

  /** Throw the classified error for an answer the caller does not handle. */
  fail(res: HttpResponse, what: string): never {
    throwForStatus(res, this.target, what);
    throw new PermanentTargetError('TargetRejected', `${this.target}: ${what}: unexpected answer ${res.status}`);
  }

  /** What the provider supports, from /ServiceProviderConfig (read once; a failed read is asked again next time). */
  getFeatures(): Promise<Features> {
    this.features ??= (async () => {
      const res = await this.send('GET', '/ServiceProviderConfig');
      if (res.status === 404) return { patch: false, etag: false, filter: true };
      if (res.status >= 300) this.fail(res, 'reading /ServiceProviderConfig');
      const b = (res.body ?? {}) as {
        patch?: { supported?: boolean };
        etag?: { supported?: boolean };
        filter?: { supported?: boolean; maxResults?: number };
      };
      return {
        patch: b.patch?.supported === true,
        etag: b.etag?.supported === true,
        filter: b.filter?.supported !== false,
        maxResults: b.filter?.maxResults,
      };
    })();
    // A failed read (an outage) must not stick: the next call asks again.
    this.features.catch(() => (this.features = undefined)).catch(() => undefined);
    return this.features;
  }

  // ---------------------------------------------------------------- paging

  /** Every resource of an endpoint that passes `keep`, paged with startIndex/count; filtered server-side when the provider can. */
  async search<T extends Resource>(
    endpoint: '/Users' | '/Groups',
    filter: string,
    keep: (r: T) => boolean,
    extra: Record<string, string> = {},
  ): Promise<T[]> {
    const f = await this.getFeatures();
    return this.pages<T>(endpoint, this.pageSize, f.filter ? { filter, ...extra } : extra, 10_000, keep, 'searching');
  }

  /** Every resource of an endpoint, paged with startIndex/count (large pages: drift reads whole targets). */
  listAll<T extends Resource>(endpoint: '/Users' | '/Groups'): Promise<T[]> {
    return this.pages<T>(endpoint, Math.max(this.pageSize, LIST_PAGE), {}, 100_000, () => true, 'listing');
  }

  private async pages<T extends Resource>(
    endpoint: '/Users' | '/Groups',
    want: number,
    query: Record<string, string>,
    maxPages: number,
    keep: (r: T) => boolean,
    verb: string,
  ): Promise<T[]> {
    const f = await this.getFeatures();
    const count = f.maxResults && f.maxResults > 0 ? Math.min(want, f.maxResults) : want;
    const out: T[] = [];
    let start = 1;
    for (let page = 0; page < maxPages; page++) {
      const res = await this.send('GET', endpoint, {
        query: { startIndex: String(start), count: String(count), ...query },
      });
      if (res.status !== 200) this.fail(res, `${verb} ${endpoint}`);
      const body = res.body as { totalResults?: number; Resources?: T[] };
      const items = Array.isArray(body?.Resources) ? body.Resources : [];
      out.push(...items.filter(keep));
      start += items.length;
      const total = typeof body?.totalResults === 'number' ? body.totalResults : 0;
      if (start > total) return out;
      if (items.length === 0)
        throw new PermanentTargetError(
          'TargetUnsupported',
          `${this.target}: ${endpoint} answered an empty page at startIndex ${start} of ${total} results (count ${count}): the provider does not page as RFC 7644 §3.4.2.4 says`,
        );
    }
    throw new TransientTargetError(`${this.target}: ${endpoint} paging did not end`);
  }

  // ---------------------------------------------------------------- lookups

  /** The one user whose userName is `userName` (case-insensitively, RFC 7643 §4.1.1), or null; two is a conflict. */
  async findUser(userName: string): Promise<ScimUser | null> {
    const lower = userName.toLowerCase();
    const found = await this.search<ScimUser>(
      '/Users',
      scimEq('userName', userName),
      (u) => typeof u.userName === 'string' && u.userName.toLowerCase() === lower,
    );
    return this.oneUser(found, `userName ${JSON.stringify(userName)}`);
  }

  /** The one user of `found` (those with `what`, e.g. a userName), or null; two or more is a conflict to resolve by hand. */
  oneUser(found: ScimUser[], what: string): ScimUser | null {
    if (found.length > 1)
      throw new PermanentTargetError(
        'TargetConflict',
        `${this.target}: ${found.length} users have ${what} (ids ${found.map((u) => u.id).join(', ')})`,
      );
    return found[0] ?? null;
  }

  /**
   * The users any of `keys` names (by userName, case-insensitive, or by externalId), found with
   * one filtered search (`... or ...`, RFC 7644 §3.4.2.2) instead of one or two each; undefined
   * when the provider cannot filter. The caller decides per key what it found.
   */
  async findUsers(keys: Array<{ userName: string; externalId?: string }>): Promise<ScimUser[] | undefined> {
    if (keys.length === 0) return [];
    if (!(await this.getFeatures()).filter) return undefined;
    const names = new Set(keys.map((k) => k.userName.toLowerCase()));
    const ids = new Set(keys.flatMap((k) => (k.externalId === undefined ? [] : [k.externalId])));
    const filter = [
      ...keys.map((k) => scimEq('userName', k.userName)),
      ...[...ids].map((x) => scimEq('externalId', x)),
    ].join(' or ');
    return this.search<ScimUser>(
      '/Users',
      filter,
      (u) =>
        (typeof u.userName === 'string' && names.has(u.userName.toLowerCase())) ||
        (typeof u.externalId === 'string' && ids.has(u.externalId)),
    );
  }

  /** The one user whose externalId is exactly `externalId`, or null; two is a conflict. */
  async findUserByExternalId(externalId: string): Promise<ScimUser | null> {
    const found = await this.search<ScimUser>(
      '/Users',
      scimEq('externalId', externalId),
      (u) => u.externalId === externalId,
    );
    return this.oneUser(found, `externalId ${JSON.stringify(externalId)}`);
  }

  async getUser(id: string): Promise<ScimUser | null> {
    const res = await this.send('GET', `/Users/${encodeURIComponent(id)}`);
    if (res.status === 404) return null;
    if (res.status !== 200) this.fail(res, 'reading a user');
    return withVersion(res) as ScimUser;
  }

  async getGroup(id: string): Promise<ScimGroup | null> {
    const res = await this.send('GET', `/Groups/${encodeURIComponent(id)}`);
    if (res.status === 404) return null;
    if (res.status !== 200) this.fail(res, 'reading a group');
    return withVersion(res) as ScimGroup;
  }

  /** The groups whose displayName is exactly `name` (members left out where the provider filters). */
  async groupsNamed(name: string, withMembers: boolean): Promise<ScimGroup[]> {
    const f = await this.getFeatures();
    return this.search<ScimGroup>(
      '/Groups',
      scimEq('displayName', name),
      (g) => g.displayName === name,
      f.filter && !withMembers ? { excludedAttributes: 'members' } : {},
    );
  }

  /** The groups a user is in (by a members filter, or by reading every group where filtering is unsupported). */
  async groupsOf(userId: string): Promise<ScimGroup[]> {
    const f = await this.getFeatures();
    const isIn = (g: ScimGroup) => !Array.isArray(g.members) || g.members.some((m) => m.value === userId);
    return this.search<ScimGroup>(
      '/Groups',
      `members[value eq ${scimFilterValue(userId)}]`,
      f.filter ? isIn : (g) => Array.isArray(g.members) && isIn(g),
      f.filter ? { attributes: 'displayName' } : {},
    );
  }

  async isMember(groupId: string, userId: string): Promise<boolean> {
    const f = await this.getFeatures();
    if (f.filter) {
      const hits = await this.search<ScimGroup>(
        '/Groups',
        `id eq ${scimFilterValue(groupId)} and members[value eq ${scimFilterValue(userId)}]`,
        (g) => g.id === groupId,
        { attributes: 'id' },
      );
      return hits.length > 0;
    }
    const g = await this.getGroup(groupId);
    return !!g?.members?.some((m) => m.value === userId);
  }

  // ---------------------------------------------------------------- writes

  /** POST a resource; the created one, or the answer when it was not created (409 and the like are the caller's). */
  async create<T extends Resource>(
    endpoint: '/Users' | '/Groups',
    body: JsonObject,
  ): Promise<{ created: T } | { refused: HttpResponse }> {
    const res = await this.send('POST', endpoint, { body });
    return res.status === 201 || res.status === 200 ? { created: res.body as T } : { refused: res };
  }

  /** DELETE a resource (If-Match when given and the provider has ETags); false when it was already gone. */
  async delete(endpoint: '/Users' | '/Groups', id: string, what: string, version?: string): Promise<boolean> {
    const f = await this.getFeatures();
    const res = await this.send('DELETE', `${endpoint}/${encodeURIComponent(id)}`, {
      ifMatch: f.etag ? version : undefined,
    });
    if (res.status === 404) return false;
    if (res.status === 412) throw new StaleError();
    if (res.status !== 204 && res.status !== 200) this.fail(res, what);
    return true;
  }

  /**
   * Change a resource: PATCH `ops` where the provider supports PATCH, else PUT `mutate(current)`.
   * `If-Match` with the version we read when the provider supports ETags (always for PUT;
   * for PATCH when `conditional`); a 412 throws StaleError so the operation re-reads.
   */
  async update(
    endpoint: '/Users' | '/Groups',
    current: Resource,
    ops: PatchOp[],
    mutate: (r: Resource) => void,
    conditional: boolean,
    what: string,
  ): Promise<void> {
    const f = await this.getFeatures();
    const path = `${endpoint}/${encodeURIComponent(current.id)}`;
    let res: HttpResponse;
    if (f.patch) {
      const ifMatch = f.etag && conditional ? current.meta?.version : undefined;
      res = await this.send('PATCH', path, { body: { schemas: [PATCH_SCHEMA], Operations: ops }, ifMatch });
    } else {
      // PUT needs the whole, current resource: re-read it unless we already hold a full one.
      const full = endpoint === '/Users' ? await this.getUser(current.id) : await this.getGroup(current.id);
      if (!full)
        throw new PermanentTargetError(
          'TargetNotFound',
          `${this.target}: ${what}: ${endpoint.slice(1, -1).toLowerCase()} ${current.id} disappeared`,
        );
      if (
        conditional &&
        f.etag &&
        current.meta?.version &&
        full.meta?.version &&
        current.meta.version !== full.meta.version
      )
        throw new StaleError();
      const next = structuredClone(full) as Record<string, unknown>;
      delete next.meta;
      mutate(next as Resource);
      res = await this.send('PUT', path, { body: next, ifMatch: f.etag ? full.meta?.version : undefined });
    }
    if (res.status === 412) throw new StaleError();
    if (res.status === 409)
      throw new PermanentTargetError(
        'TargetConflict',
        `${this.target}: ${what}: refused as a conflict (${describe(res.body)})`,
      );
    if (res.status !== 200 && res.status !== 204) this.fail(res, what);
  }

  /** Write top-level user attributes (null removes) and `active`, as one path-less `replace` (and a `remove` per removed one); false when nothing differs. */
  async writeUser(
    user: ScimUser,
    target: Record<string, JsonValue>,
    active: boolean | undefined,
    what: string,
  ): Promise<boolean> {
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

  /** Members added to (or removed from) a group as a PATCH delta, never a full member list (only the PUT fallback sends one). */
  changeMembers(group: ScimGroup, ids: string[], add: boolean, what: string): Promise<void> {
    const change = new Set(ids);
    const ops: PatchOp[] = add
      ? [{ op: 'add', path: 'members', value: ids.map((value) => ({ value })) }]
      : ids.map((id) => ({ op: 'remove', path: `members[value eq ${scimFilterValue(id)}]` }));
    return this.update(
      '/Groups',
      group,
      ops,
      (r) => {
        const g = r as ScimGroup;
        const rest = (g.members ?? []).filter((m) => !change.has(m.value));
        g.members = add ? [...rest, ...ids.map((value) => ({ value }))] : rest;
      },
      false,
      what,
    );
  }

  /** A role value added to (or removed from) a user's `roles`. */
  changeRole(user: ScimUser, role: string, grant: boolean, what: string): Promise<void> {
    const ops: PatchOp[] = grant
      ? [{ op: 'add', path: 'roles', value: [{ value: role }] }]
      : [{ op: 'remove', path: `roles[value eq ${scimFilterValue(role)}]` }];
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

  /** Retry what met a concurrent change (412) from a fresh read. */
  async fresh<T>(what: string, fn: () => Promise<T>): Promise<T> {
    for (let i = 0; ; i++) {
      try {
        return await fn();
      } catch (err) {
        if (!(err instanceof StaleError)) throw err;
        if (i >= 3)
          throw new TransientTargetError(
            `${this.target}: ${what}: the resource kept changing under us (412 Precondition Failed)`,
          );
      }
    }
  }
}

/** A resource read by GET, with the ETag header as its version when the body has none. */
function withVersion(res: HttpResponse): Resource {
  const r = res.body as Resource;
  const etag = res.headers.get('etag');
  if (etag && r && typeof r === 'object') r.meta = { ...(r.meta ?? {}), version: r.meta?.version ?? etag };
  return r;
}

/** A SCIM error's scimType and detail, for messages. */
export function describe(body: unknown): string {
  if (body && typeof body === 'object') {
    const b = body as { scimType?: unknown; detail?: unknown };
    return [b.scimType, b.detail].filter((x) => typeof x === 'string').join(': ') || 'no detail';
  }
  return 'no detail';
}
