/**
 * Reading the targets back with clients of their own, independent of src/connectors: plain
 * HTTP requests to the SCIM API (whole lists, paged, matched here rather than by a server
 * filter) and `pg` queries of the PostgreSQL catalogue. The test harness reads with these too
 * (test/harness/servers/scim.ts RawScim, test/workflows/stack.ts pgSnapshot).
 */
import type { Client as PgClient } from 'pg';
import type { PgAccount, ScimAccount } from './expect';

export interface ScimUserResource {
  id: string;
  userName: string;
  externalId?: string;
  displayName?: string;
  active?: boolean;
  [k: string]: unknown;
}

export interface ScimGroupResource {
  id: string;
  displayName: string;
  members?: Array<{ value: string }>;
}

/** Every resource of an endpoint, page by page (1,000 at a time). */
export async function listScim<T>(baseUrl: string, token: string, endpoint: '/Users' | '/Groups'): Promise<T[]> {
  const out: T[] = [];
  for (let start = 1; ;) {
    const res = await fetch(`${baseUrl}${endpoint}?startIndex=${start}&count=1000`, {
      headers: { authorization: `Bearer ${token}`, accept: 'application/scim+json' },
      signal: AbortSignal.timeout(60_000),
    });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`GET ${endpoint}: ${res.status} ${text.slice(0, 200)}`);
    const page = JSON.parse(text) as { totalResults: number; Resources?: T[] };
    const items = page.Resources ?? [];
    out.push(...items);
    start += items.length;
    if (items.length === 0 || start > page.totalResults) return out;
  }
}

export interface ScimReading {
  /** By lower-cased userName; more than one user per name is a duplicate. */
  accounts: Map<string, ScimAccount[]>;
  /** Users beyond the first of each identity (the same userName or the same externalId). */
  duplicates: Array<{ userName: string; externalId: string | null; id: string }>;
}

/** The users `mine` picks (by userName), with their groups, and the duplicates among them. */
export async function readScim(
  baseUrl: string,
  token: string,
  mine: (userName: string) => boolean,
): Promise<ScimReading> {
  const [users, groups] = await Promise.all([
    listScim<ScimUserResource>(baseUrl, token, '/Users'),
    listScim<ScimGroupResource>(baseUrl, token, '/Groups'),
  ]);
  const groupsOf = new Map<string, string[]>();
  for (const g of groups)
    for (const m of g.members ?? []) groupsOf.set(m.value, [...(groupsOf.get(m.value) ?? []), g.displayName]);
  const accounts = new Map<string, ScimAccount[]>();
  const duplicates: ScimReading['duplicates'] = [];
  const seen = new Set<string>();
  for (const u of users.filter((x) => mine(x.userName))) {
    const name = u.userName.toLowerCase();
    const externalId = typeof u.externalId === 'string' ? u.externalId : null;
    const keys = [`userName:${name}`, ...(externalId === null ? [] : [`externalId:${externalId}`])];
    if (keys.some((k) => seen.has(k))) duplicates.push({ userName: u.userName, externalId, id: u.id });
    for (const k of keys) seen.add(k);
    const account: ScimAccount = {
      active: u.active !== false,
      externalId,
      displayName: typeof u.displayName === 'string' ? u.displayName : null,
      groups: (groupsOf.get(u.id) ?? []).sort(),
    };
    accounts.set(name, [...(accounts.get(name) ?? []), account]);
  }
  return { accounts, duplicates };
}

/** Roles whose name is LIKE `pattern`: login flag and memberships (sorted), by role name. */
export async function readPgRoles(client: PgClient, pattern: string): Promise<Record<string, PgAccount>> {
  const r = await client.query<{ rolname: string; rolcanlogin: boolean; member_of: string[] | null }>(
    `SELECT u.rolname, u.rolcanlogin,
            array_remove(array_agg(r.rolname::text ORDER BY r.rolname), NULL) AS member_of
       FROM pg_roles u
       LEFT JOIN pg_auth_members m ON m.member = u.oid
       LEFT JOIN pg_roles r ON r.oid = m.roleid
      WHERE u.rolname LIKE $1
      GROUP BY u.rolname, u.rolcanlogin
      ORDER BY u.rolname`,
    [pattern],
  );
  return Object.fromEntries(
    r.rows.map((row) => [row.rolname, { login: row.rolcanlogin, memberOf: row.member_of ?? [] }]),
  );
}
