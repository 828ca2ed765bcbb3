/**
 * LDAP target (an on-premises directory, e.g. OpenLDAP): one `inetOrgPerson` entry per
 * account, `uid` = the subject, under `usersDn`; group membership as `groupOfNames`
 * entries under `groupsDn` (roles: under `rolesDn`, which defaults to `groupsDn`).
 *
 * Deactivation: `pwdAccountLockedTime: 000001010000Z` on the account, the administrative
 * lock of the password policy overlay (draft-behera-ldap-password-policy, OpenLDAP
 * `ppolicy`). The directory itself then refuses the account's binds, every application
 * that authenticates against it is covered, and the entry keeps its DN, attributes and
 * group memberships, so reactivation (removing the attribute) restores the account exactly.
 * Moving entries to an `ou=disabled` would change the DN every group refers to, and a
 * home-grown "active" attribute is enforced by nobody. The directory needs the ppolicy
 * overlay with `pwdLockout: TRUE` in the applicable policy; without the overlay the
 * attribute is unknown and deactivation fails as `TargetMisconfigured`, never silently.
 *
 * groupOfNames requires at least one `member`. When the last real member leaves, the
 * member list becomes the configured placeholder (`emptyGroupMember`, default the empty
 * DN, which names no account) instead of deleting the group: the group keeps its DN,
 * its other attributes and whatever ACLs refer to it. The placeholder is removed as soon
 * as a real member joins (in the same modify request), and is never reported as a member.
 * A group that does not exist is created on join, and compensation of that join deletes it.
 *
 * Every DN is built with RFC 4514 escaping and every filter with RFC 4515 escaping
 * (./ldap-escape). The directory matches `uid` and `cn` case- and compatibility-
 * insensitively, so an entry whose stored value is not exactly the asked name (a fullwidth
 * or differently-cased look-alike) is refused as a conflict rather than taken for it.
 */
import { Attribute, Change, Client, ResultCodeError, type Entry } from 'ldapts';
import { z } from 'zod';
import type { JsonObject, JsonValue } from '../domain/json';
import { childDn, equalityFilter, firstRdnValue, parseDn } from './ldap-escape';
import { RateLimitSchema, type RateLimiter, targetRateLimiter } from './rate-limit';
import { secretFrom, SecretRefSchema } from './secrets';
import {
  type AccountState,
  type ApplyResult,
  type CompensateResult,
  type Connector,
  type OperationSpec,
  type PermanentFailureType,
  PermanentTargetError,
  type StateQuery,
  type TargetState,
  TransientTargetError,
  nameParam,
  attributesParam,
} from './types';

const attributeName = z.string().regex(/^[A-Za-z][A-Za-z0-9-]*$/, 'an LDAP attribute name');

export const ldapConfigSchema = z
  .object({
    type: z.literal('ldap'),
    url: z.string().regex(/^ldaps?:\/\/[^/\s]+\/?$/, 'ldap://host:port or ldaps://host:port'),
    bindDn: z.string().min(1),
    /** The bind password: `{ env: NAME }` or `{ file: PATH }`, read in the worker on (re)connect. */
    bindPassword: SecretRefSchema,
    usersDn: z.string().min(1),
    groupsDn: z.string().min(1),
    /** Where grantRole/revokeRole groups live; defaults to groupsDn. */
    rolesDn: z.string().min(1).optional(),
    /** Plan attribute name -> LDAP attribute. `displayName` also sets `cn` (and `sn` on creation). */
    attributeMap: z.record(z.string(), attributeName).default({ displayName: 'displayName', email: 'mail', externalId: 'employeeNumber' }),
    /** The member a groupOfNames keeps when its last real member leaves (groupOfNames needs one). */
    emptyGroupMember: z.string().default(''),
    timeoutMs: z.number().int().positive().default(10_000),
    rateLimit: RateLimitSchema.optional(),
  })
  .strict();
export type LdapConfig = z.infer<typeof ldapConfigSchema>;

/** The administrative lock value of the ppolicy overlay: locked until the attribute is removed. */
export const LOCKED_VALUE = '000001010000Z';
const LOCK_ATTR = 'pwdAccountLockedTime';
/** Up to this many accounts, drift looks each up; more, it lists usersDn in pages of LIST_PAGE. */
const FEW_SUBJECTS = 20;
const LIST_PAGE = 500;

/** Result codes (RFC 4511 appendix A) that may pass: time/admin limit, busy, unavailable. */
const TRANSIENT_RESULT_CODES = new Set([3, 11, 51, 52]);
const PERMANENT_TYPES: Record<number, PermanentFailureType> = {
  8: 'TargetMisconfigured', // strongAuthRequired
  13: 'TargetMisconfigured', // confidentialityRequired
  17: 'TargetMisconfigured', // undefinedAttributeType (e.g. no ppolicy overlay)
  32: 'TargetMisconfigured', // noSuchObject where the base must exist
  34: 'InvalidIdentifier', // invalidDNSyntax
  48: 'TargetMisconfigured', // inappropriateAuthentication
  49: 'TargetAuthentication', // invalidCredentials
  50: 'TargetForbidden', // insufficientAccessRights
  64: 'InvalidIdentifier', // namingViolation
  68: 'TargetConflict', // entryAlreadyExists (when not expected)
};
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/** Map an ldapts or socket error to Transient/Permanent. */
export function classifyLdapError(err: unknown, what: string): Error {
  if (err instanceof TransientTargetError || err instanceof PermanentTargetError) return err;
  if (err instanceof ResultCodeError) {
    const msg = `${what}: LDAP result ${err.code} ${err.message}`;
    if (TRANSIENT_RESULT_CODES.has(err.code)) return new TransientTargetError(msg, undefined, err);
    return new PermanentTargetError(PERMANENT_TYPES[err.code] ?? 'TargetRejected', msg, err);
  }
  const e = err as { code?: unknown; message?: unknown };
  const message = typeof e?.message === 'string' ? e.message : String(err);
  if ((typeof e?.code === 'string' && NETWORK_CODES.has(e.code)) || /timeout|timed out|socket|connection/i.test(message)) {
    return new TransientTargetError(`${what}: ${message}`, undefined, err);
  }
  if (err instanceof RangeError) return new PermanentTargetError('InvalidIdentifier', `${what}: ${message}`, err);
  return new PermanentTargetError('TargetRejected', `${what}: ${message}`, err);
}

function codeOf(err: unknown): number | undefined {
  return err instanceof ResultCodeError ? err.code : undefined;
}

/** Values of an attribute, case-insensitively by name, as strings. */
function values(entry: Entry, name: string): string[] {
  const key = Object.keys(entry).find((k) => k.toLowerCase() === name.toLowerCase());
  if (key === undefined) return [];
  const v = entry[key]!;
  const list = Array.isArray(v) ? v : [v];
  return list.map((x) => (Buffer.isBuffer(x) ? x.toString('utf8') : x));
}

function sameSet(a: string[], b: string[]): boolean {
  return a.length === b.length && [...a].sort().join('\u0000') === [...b].sort().join('\u0000');
}

function replace(type: string, vals: string[]): Change {
  return new Change({ operation: 'replace', modification: new Attribute({ type, values: vals }) });
}
function addValue(type: string, value: string): Change {
  return new Change({ operation: 'add', modification: new Attribute({ type, values: [value] }) });
}
function deleteValue(type: string, value: string): Change {
  return new Change({ operation: 'delete', modification: new Attribute({ type, values: [value] }) });
}

interface Account {
  dn: string;
  entry: Entry;
}

interface GroupState {
  dn: string;
  count: number;
  isMember: boolean;
  hasPlaceholder: boolean;
}

/** Prior of an attribute-level operation: the touched LDAP attributes and their values before. */
interface AttrPrior {
  kind: 'attrs';
  dn: string;
  created: boolean;
  attrs: Record<string, string[]>;
}
/** Prior of a membership operation. */
interface MemberPrior {
  kind: 'member';
  groupDn: string;
  userDn: string;
  existed: boolean;
  member: boolean;
  placeholder: boolean;
}
type Prior = AttrPrior | MemberPrior | { kind: 'none' };

export class LdapConnector implements Connector {
  readonly type = 'ldap';
  private client: Client | undefined;
  private binding: Promise<Client> | undefined;
  private readonly limiter: RateLimiter | undefined;
  private readonly rolesDn: string;

  constructor(
    readonly target: string,
    private readonly config: LdapConfig,
  ) {
    this.rolesDn = config.rolesDn ?? config.groupsDn;
    this.limiter = targetRateLimiter(target, config.rateLimit);
  }

  // ---- connection ---------------------------------------------------------------------

  /** A connected client bound as bindDn. A dropped connection is re-bound, never reused anonymously. */
  private session(): Promise<Client> {
    if (this.client?.isConnected && !this.binding) return Promise.resolve(this.client);
    this.binding ??= this.bind().finally(() => {
      this.binding = undefined;
    });
    return this.binding;
  }

  private async bind(): Promise<Client> {
    const old = this.client;
    this.client = undefined;
    if (old) await old.unbind().catch(() => undefined);
    const password = secretFrom(this.config.bindPassword, `target ${this.target}: bind password`);
    const client = new Client({ url: this.config.url, timeout: this.config.timeoutMs, connectTimeout: this.config.timeoutMs });
    try {
      await client.bind(this.config.bindDn, password);
    } catch (err) {
      await client.unbind().catch(() => undefined);
      throw classifyLdapError(err, `target ${this.target}: bind as ${this.config.bindDn}`);
    }
    this.client = client;
    return client;
  }

  /**
   * One LDAP request. The connected-check and the request start in the same tick, so a
   * request never goes out on a silently re-opened (anonymous) connection.
   */
  private async request<T>(what: string, fn: (c: Client) => Promise<T>): Promise<T> {
    await this.limiter?.acquire();
    const c = await this.session();
    if (!c.isConnected) throw new TransientTargetError(`target ${this.target}: ${what}: connection lost`);
    try {
      return await fn(c);
    } catch (err) {
      throw classifyLdapError(err, `target ${this.target}: ${what}`);
    }
  }

  /** Run a request, returning the LDAP result code instead of throwing for the codes listed. */
  private async tolerate(what: string, fn: (c: Client) => Promise<unknown>, codes: number[]): Promise<number> {
    try {
      await this.request(what, fn);
      return 0;
    } catch (err) {
      const code = codeOf((err as { cause?: unknown }).cause);
      if (code !== undefined && codes.includes(code)) return code;
      throw err;
    }
  }

  async close(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    if (c) await c.unbind().catch(() => undefined);
  }

  // ---- lookups --------------------------------------------------------------------------

  private userDn(subject: string): string {
    return this.safe(() => childDn('uid', subject, this.config.usersDn), `subject "${subject}"`);
  }

  private groupDn(name: string, role: boolean): string {
    return this.safe(() => childDn('cn', name, role ? this.rolesDn : this.config.groupsDn), `${role ? 'role' : 'group'} "${name}"`);
  }

  private safe<T>(fn: () => T, what: string): T {
    try {
      return fn();
    } catch (err) {
      throw new PermanentTargetError('InvalidIdentifier', `target ${this.target}: ${what}: ${(err as Error).message}`, err);
    }
  }

  private accountAttributes(): string[] {
    return ['uid', 'cn', 'sn', ...Object.values(this.config.attributeMap), LOCK_ATTR];
  }

  /**
   * The account whose `uid` is exactly `subject`, or null. An entry the directory matches
   * but whose stored uid differs (case, compatibility forms) is a conflict, never taken.
   */
  private async findAccount(subject: string, strict: boolean): Promise<Account | null> {
    const filter = this.safe(() => `(&(objectClass=inetOrgPerson)${equalityFilter('uid', subject)})`, `subject "${subject}"`);
    const res = await this.request(`find account ${JSON.stringify(subject)}`, (c) =>
      c.search(this.config.usersDn, { scope: 'one', filter, attributes: this.accountAttributes(), sizeLimit: 2 }),
    );
    const exact = res.searchEntries.filter((e) => values(e, 'uid').includes(subject));
    if (exact.length > 1) throw new PermanentTargetError('TargetConflict', `target ${this.target}: ${exact.length} entries have uid ${JSON.stringify(subject)}`);
    if (exact.length === 1) return { dn: exact[0]!.dn, entry: exact[0]! };
    if (res.searchEntries.length > 0 && strict) {
      const other = values(res.searchEntries[0]!, 'uid')[0] ?? res.searchEntries[0]!.dn;
      throw new PermanentTargetError('TargetConflict', `target ${this.target}: the directory treats ${JSON.stringify(subject)} as the existing account ${JSON.stringify(other)}`);
    }
    return null;
  }

  private async needAccount(subject: string): Promise<Account> {
    const a = await this.findAccount(subject, true);
    if (!a) throw new PermanentTargetError('AccountMissing', `target ${this.target}: no account ${JSON.stringify(subject)}`);
    return a;
  }

  private async readEntry(dn: string, attributes: string[]): Promise<Entry | null> {
    try {
      const res = await this.request(`read ${dn}`, (c) => c.search(dn, { scope: 'base', filter: '(objectClass=*)', attributes }));
      return res.searchEntries[0] ?? null;
    } catch (err) {
      if (codeOf((err as { cause?: unknown }).cause) === 32) return null;
      throw err;
    }
  }

  private async groupState(groupDn: string, name: string, userDn: string): Promise<GroupState | null> {
    const entry = await this.readEntry(groupDn, ['cn', 'member', 'objectClass']);
    if (!entry) return null;
    if (!values(entry, 'objectClass').some((o) => o.toLowerCase() === 'groupofnames')) {
      throw new PermanentTargetError('TargetConflict', `target ${this.target}: ${groupDn} exists and is not a groupOfNames`);
    }
    if (!values(entry, 'cn').includes(name)) {
      throw new PermanentTargetError('TargetConflict', `target ${this.target}: the directory treats group ${JSON.stringify(name)} as ${JSON.stringify(values(entry, 'cn')[0])}`);
    }
    const members = values(entry, 'member');
    // DN equality is the server's (distinguishedNameMatch): ask it rather than compare strings.
    const isMember = members.length > 0 && (await this.request(`compare ${groupDn}`, (c) => c.compare(groupDn, 'member', userDn)));
    const hasPlaceholder =
      members.includes(this.config.emptyGroupMember) ||
      (members.length > 0 && this.config.emptyGroupMember !== '' && (await this.request(`compare ${groupDn}`, (c) => c.compare(groupDn, 'member', this.config.emptyGroupMember))));
    return { dn: groupDn, count: members.length, isMember, hasPlaceholder };
  }

  // ---- Connector ------------------------------------------------------------------------

  async readAccount(subject: string): Promise<AccountState | null> {
    const a = await this.findAccount(subject, false);
    if (!a) return null;
    const attributes: Record<string, string> = {};
    for (const [key, attr] of Object.entries(this.config.attributeMap)) {
      const v = values(a.entry, attr)[0];
      if (v !== undefined) attributes[key] = v;
    }
    return {
      subject,
      id: a.dn,
      active: values(a.entry, LOCK_ATTR).length === 0,
      groups: await this.groupsOf(a.dn),
      attributes,
    };
  }

  /**
   * Drift: the asked accounts (a few looked up one by one; many: every account under usersDn,
   * with paged results) and the members of each asked group or role entry (member DNs read back
   * to their uid; the placeholder member is none).
   */
  async readState(query: StateQuery): Promise<TargetState> {
    const wanted = new Set(query.subjects);
    const found: Account[] = [];
    if (query.subjects.length <= FEW_SUBJECTS) {
      for (const s of query.subjects) {
        const a = await this.findAccount(s, false);
        if (a) found.push(a);
      }
    } else {
      const res = await this.request('list accounts', (c) =>
        c.search(this.config.usersDn, { scope: 'one', filter: '(objectClass=inetOrgPerson)', attributes: this.accountAttributes(), paged: { pageSize: LIST_PAGE } }),
      );
      for (const e of res.searchEntries) if (values(e, 'uid').some((u) => wanted.has(u))) found.push({ dn: e.dn, entry: e });
    }
    const accounts: TargetState['accounts'] = found.map((a) => {
      const attributes: Record<string, string> = {};
      for (const [key, attr] of Object.entries(this.config.attributeMap)) {
        const v = values(a.entry, attr)[0];
        if (v !== undefined) attributes[key] = v;
      }
      return { subject: values(a.entry, 'uid').find((u) => wanted.has(u))!, active: values(a.entry, LOCK_ATTR).length === 0, attributes };
    });
    const members: TargetState['members'] = {};
    for (const g of query.groups) {
      const entry = await this.readEntry(this.groupDn(g.name, g.kind === 'role'), ['cn', 'member']);
      if (!entry) {
        members[g.name] = null;
        continue;
      }
      const list: string[] = [];
      for (const dn of values(entry, 'member')) {
        if (dn === this.config.emptyGroupMember) continue;
        let rdn;
        try {
          rdn = parseDn(dn)[0]?.[0];
        } catch {
          continue; // not a DN this connector wrote: no account of ours
        }
        if (rdn && rdn.type.toLowerCase() === 'uid') list.push(rdn.value);
      }
      members[g.name] = list;
    }
    return { accounts, members, managedAttributes: Object.keys(this.config.attributeMap) };
  }

  private async groupsOf(userDn: string): Promise<string[]> {
    const filter = `(&(objectClass=groupOfNames)${equalityFilter('member', userDn)})`;
    const bases = [...new Set([this.config.groupsDn, this.rolesDn])];
    const names = new Set<string>();
    for (const base of bases) {
      const res = await this.request(`groups of ${userDn}`, (c) => c.search(base, { scope: 'one', filter, attributes: ['cn'] }));
      for (const e of res.searchEntries) names.add(firstRdnValue(e.dn));
    }
    return [...names].sort();
  }

  async apply(op: OperationSpec): Promise<ApplyResult> {
    if (!op.subject) throw new PermanentTargetError('InvalidIdentifier', `target ${this.target}: empty subject`);
    switch (op.action) {
      case 'ensureAccount':
        return this.ensureAccount(op.subject, this.attributesParam(op));
      case 'updateAttributes':
        return this.updateAttributes(op.subject, this.attributesParam(op));
      case 'deactivateAccount':
        return this.setLocked(op.subject, true);
      case 'reactivateAccount':
        return this.setLocked(op.subject, false);
      case 'joinGroup':
        return this.membership(op.subject, nameParam(op, 'group'), false, true);
      case 'leaveGroup':
        return this.membership(op.subject, nameParam(op, 'group'), false, false);
      case 'grantRole':
        return this.membership(op.subject, nameParam(op, 'role'), true, true);
      case 'revokeRole':
        return this.membership(op.subject, nameParam(op, 'role'), true, false);
      default:
        throw new PermanentTargetError('UnsupportedAction', `target ${this.target}: unsupported action ${String(op.action)}`);
    }
  }

  /** Plan attributes mapped to LDAP attributes (displayName also drives cn). */
  private attributesParam(op: OperationSpec): Record<string, string> {
    const raw = attributesParam(op);
    const out: Record<string, string> = {};
    for (const [key, v] of Object.entries(raw)) {
      const attr = this.config.attributeMap[key];
      if (!attr) throw new PermanentTargetError('InvalidAttribute', `target ${this.target}: attribute "${key}" is not mapped (attributeMap has ${Object.keys(this.config.attributeMap).join(', ')})`);
      if (typeof v !== 'string' || v === '') throw new PermanentTargetError('InvalidAttribute', `target ${this.target}: attribute "${key}" must be a non-empty string`);
      out[attr] = v;
      if (key === 'displayName') out.cn = v;
    }
    return out;
  }

  private async ensureAccount(subject: string, attrs: Record<string, string>): Promise<ApplyResult> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const existing = await this.findAccount(subject, true);
      if (existing) return this.reconcileAttrs(existing, attrs, true, 'account exists');
      const dn = this.userDn(subject);
      const name = attrs.cn ?? subject;
      const entry: Record<string, string[]> = {
        objectClass: ['top', 'person', 'organizationalPerson', 'inetOrgPerson'],
        uid: [subject],
        cn: [name],
        sn: [name],
      };
      for (const [k, v] of Object.entries(attrs)) entry[k] = [v];
      const code = await this.tolerate(`add ${dn}`, (c) => c.add(dn, entry), [68]);
      if (code === 68) continue; // created meanwhile (or a look-alike): look again
      const prior: AttrPrior = { kind: 'attrs', dn, created: true, attrs: {} };
      return { outcome: 'applied', prior: prior as unknown as JsonValue, detail: `created ${dn}` };
    }
    throw new TransientTargetError(`target ${this.target}: account ${JSON.stringify(subject)} keeps changing under us`);
  }

  private async updateAttributes(subject: string, attrs: Record<string, string>): Promise<ApplyResult> {
    return this.reconcileAttrs(await this.needAccount(subject), attrs, false, 'attributes already so');
  }

  /** Bring attributes (and, for ensureAccount, the active state) to what is asked; prior = the touched attributes before. */
  private async reconcileAttrs(a: Account, attrs: Record<string, string>, activate: boolean, unchangedNote: string): Promise<ApplyResult> {
    const before: Record<string, string[]> = {};
    const changes: Change[] = [];
    for (const [k, v] of Object.entries(attrs)) {
      const cur = values(a.entry, k);
      if (sameSet(cur, [v])) continue;
      before[k] = cur;
      changes.push(replace(k, [v]));
    }
    const lock = values(a.entry, LOCK_ATTR);
    if (activate && lock.length > 0) {
      before[LOCK_ATTR] = lock;
      changes.push(replace(LOCK_ATTR, []));
    }
    const prior: AttrPrior = { kind: 'attrs', dn: a.dn, created: false, attrs: before };
    if (changes.length === 0) return { outcome: 'unchanged', prior: prior as unknown as JsonValue, detail: unchangedNote };
    await this.request(`modify ${a.dn}`, (c) => c.modify(a.dn, changes));
    return { outcome: 'applied', prior: prior as unknown as JsonValue, detail: `modified ${Object.keys(before).join(', ')} of ${a.dn}` };
  }

  private async setLocked(subject: string, locked: boolean): Promise<ApplyResult> {
    const a = await this.findAccount(subject, true);
    if (!a) {
      if (locked) return { outcome: 'unchanged', prior: { kind: 'none' }, detail: 'no account to deactivate' };
      throw new PermanentTargetError('AccountMissing', `target ${this.target}: no account ${JSON.stringify(subject)} to reactivate`);
    }
    const cur = values(a.entry, LOCK_ATTR);
    const prior: AttrPrior = { kind: 'attrs', dn: a.dn, created: false, attrs: { [LOCK_ATTR]: cur } };
    if (locked === cur.length > 0) return { outcome: 'unchanged', prior: prior as unknown as JsonValue, detail: locked ? 'already locked' : 'already active' };
    await this.request(`${locked ? 'lock' : 'unlock'} ${a.dn}`, (c) => c.modify(a.dn, [replace(LOCK_ATTR, locked ? [LOCKED_VALUE] : [])]));
    return { outcome: 'applied', prior: prior as unknown as JsonValue, detail: `${locked ? 'locked' : 'unlocked'} ${a.dn}` };
  }

  private async membership(subject: string, name: string, role: boolean, join: boolean): Promise<ApplyResult> {
    const groupDn = this.groupDn(name, role);
    const a = await this.findAccount(subject, true);
    if (!a) {
      if (!join) return { outcome: 'unchanged', prior: { kind: 'none' }, detail: 'no account' };
      throw new PermanentTargetError('AccountMissing', `target ${this.target}: no account ${JSON.stringify(subject)} to add to ${groupDn}`);
    }
    for (let attempt = 0; attempt < 4; attempt++) {
      const s = await this.groupState(groupDn, name, a.dn);
      const prior: MemberPrior = { kind: 'member', groupDn, userDn: a.dn, existed: s !== null, member: s?.isMember ?? false, placeholder: s?.hasPlaceholder ?? false };
      if (s === null && !join) return { outcome: 'unchanged', prior: prior as unknown as JsonValue, detail: 'no such group' };
      if (s !== null && s.isMember === join) return { outcome: 'unchanged', prior: prior as unknown as JsonValue, detail: join ? 'already a member' : 'not a member' };
      const done =
        s === null
          ? (await this.tolerate(`add ${groupDn}`, (c) => c.add(groupDn, { objectClass: ['top', 'groupOfNames'], cn: [name], member: [a.dn] }), [68])) === 0
          : await this.modifyMembers(s, a.dn, join, false);
      if (done) return { outcome: 'applied', prior: prior as unknown as JsonValue, detail: `${join ? (s === null ? 'created with' : 'added') : 'removed'} member ${a.dn} ${join ? 'to' : 'from'} ${groupDn}` };
      // someone else changed the group between our read and our write: read again
    }
    throw new TransientTargetError(`target ${this.target}: ${groupDn} keeps changing under us`);
  }

  /**
   * One atomic modify bringing `userDn`'s membership to `member`, keeping groupOfNames
   * valid: the placeholder goes when a real member arrives and comes back when the last
   * one leaves (or stays/returns when `placeholder` asks for it). False when a concurrent
   * change made the request fail; the caller reads again.
   */
  private async modifyMembers(s: GroupState, userDn: string, member: boolean, placeholder: boolean): Promise<boolean> {
    const changes: Change[] = [];
    let count = s.count;
    if (member && !s.isMember) {
      changes.push(addValue('member', userDn));
      count++;
    }
    if (!member && s.isMember) {
      changes.push(deleteValue('member', userDn));
      count--;
    }
    const wantPlaceholder = placeholder || count - (s.hasPlaceholder ? 1 : 0) === 0;
    if (wantPlaceholder && !s.hasPlaceholder) changes.push(addValue('member', this.config.emptyGroupMember));
    if (!wantPlaceholder && s.hasPlaceholder) changes.push(deleteValue('member', this.config.emptyGroupMember));
    if (changes.length === 0) return true;
    // 16 noSuchAttribute, 20 attributeOrValueExists, 65 objectClassViolation: the group moved on.
    const code = await this.tolerate(`modify ${s.dn}`, (c) => c.modify(s.dn, changes), [16, 20, 65]);
    return code === 0;
  }

  async compensate(op: OperationSpec, result: ApplyResult): Promise<CompensateResult> {
    const prior = result.prior as unknown as Prior;
    if (result.outcome === 'unchanged' || !prior || typeof prior !== 'object' || prior.kind === 'none') {
      return { outcome: 'unchanged', detail: 'nothing was changed' };
    }
    if (prior.kind === 'attrs') return this.restoreAttrs(prior);
    if (prior.kind === 'member') {
      const name = nameParam(op, op.action === 'grantRole' || op.action === 'revokeRole' ? 'role' : 'group');
      return this.restoreMembership(prior, name);
    }
    throw new PermanentTargetError('CompensationImpossible', `target ${this.target}: unknown prior ${JSON.stringify(prior as JsonObject)}`);
  }

  private async restoreAttrs(prior: AttrPrior): Promise<CompensateResult> {
    if (prior.created) {
      const code = await this.tolerate(`delete ${prior.dn}`, (c) => c.del(prior.dn), [32]);
      return code === 32 ? { outcome: 'unchanged', detail: `${prior.dn} already gone` } : { outcome: 'compensated', detail: `deleted ${prior.dn}` };
    }
    const names = Object.keys(prior.attrs);
    const entry = await this.readEntry(prior.dn, names);
    if (!entry) throw new PermanentTargetError('CompensationImpossible', `target ${this.target}: ${prior.dn} disappeared; cannot restore ${names.join(', ')}`);
    const changes = names.filter((n) => !sameSet(values(entry, n), prior.attrs[n]!)).map((n) => replace(n, prior.attrs[n]!));
    if (changes.length === 0) return { outcome: 'unchanged', detail: 'already as before' };
    await this.request(`restore ${prior.dn}`, (c) => c.modify(prior.dn, changes));
    return { outcome: 'compensated', detail: `restored ${changes.map((c) => c.modification.type).join(', ')} of ${prior.dn}` };
  }

  private async restoreMembership(prior: MemberPrior, name: string): Promise<CompensateResult> {
    for (let attempt = 0; attempt < 4; attempt++) {
      const s = await this.groupState(prior.groupDn, name, prior.userDn);
      if (!prior.existed) {
        if (s === null) return { outcome: 'unchanged', detail: `${prior.groupDn} already gone` };
        const realMembers = s.count - (s.hasPlaceholder ? 1 : 0) - (s.isMember ? 1 : 0);
        if (realMembers === 0) {
          // The group we created holds nobody else: delete it, as it was before.
          const code = await this.tolerate(`delete ${prior.groupDn}`, (c) => c.del(prior.groupDn), [32]);
          if (code === 0) return { outcome: 'compensated', detail: `deleted ${prior.groupDn}` };
          continue;
        }
        if (!s.isMember) return { outcome: 'unchanged', detail: 'not a member' };
        if (await this.modifyMembers(s, prior.userDn, false, false)) return { outcome: 'compensated', detail: `removed ${prior.userDn}; ${prior.groupDn} has other members now, kept` };
        continue;
      }
      if (s === null) throw new PermanentTargetError('CompensationImpossible', `target ${this.target}: ${prior.groupDn} disappeared; cannot restore membership of ${prior.userDn}`);
      if (s.isMember === prior.member && s.hasPlaceholder === prior.placeholder) return { outcome: 'unchanged', detail: 'already as before' };
      if (await this.modifyMembers(s, prior.userDn, prior.member, prior.placeholder)) {
        return { outcome: 'compensated', detail: `${prior.member ? 'added' : 'removed'} ${prior.userDn} ${prior.member ? 'to' : 'from'} ${prior.groupDn}` };
      }
    }
    throw new TransientTargetError(`target ${this.target}: ${prior.groupDn} keeps changing under us`);
  }
}

export function createLdapConnector(target: string, config: LdapConfig): Connector {
  return new LdapConnector(target, ldapConfigSchema.parse(config));
}
