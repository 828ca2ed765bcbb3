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
 * The protocol (the bound session, result codes, classification) is the client's
 * (./clients/ldap.ts); this is what operations mean on entries. Compensation is the
 * operation's inverse (./compensation.ts) with the prior state recorded here (the touched
 * attributes' values, the membership and placeholder as they were).
 *
 * Every DN is built with RFC 4514 escaping and every filter with RFC 4515 escaping
 * (./ldap-escape). The directory matches `uid` and `cn` case- and compatibility-
 * insensitively, so an entry whose stored value is not exactly the asked name (a fullwidth
 * or differently-cased look-alike) is refused as a conflict rather than taken for it.
 */
import { z } from 'zod';
import type { JsonValue } from '../domain/json';
import { addValue, type Change, deleteValue, type Entry, LdapClient, replace, sameSet, values } from './clients/ldap';
import { compensateWith, priorMismatch, type PriorFacts, type CompensationAction } from './compensation';
import { childDn, equalityFilter, firstRdnValue, parseDn } from './ldap-escape';
import { RateLimitSchema } from './rate-limit';
import { type SecretSource, secretSource, SecretRefSchema } from './secrets';
import {
  type AccountState,
  type ApplyResult,
  type CompensateResult,
  type CompensationSpec,
  type Connector,
  type OperationSpec,
  PermanentTargetError,
  type StateQuery,
  type TargetState,
  TransientTargetError,
  nameParam,
  mappedAttributes,
} from './types';

export { classifyLdapError } from './clients/ldap';

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
    attributeMap: z
      .record(z.string(), attributeName)
      .default({ displayName: 'displayName', email: 'mail', externalId: 'employeeNumber' }),
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
  private readonly rolesDn: string;

  constructor(
    readonly target: string,
    private readonly config: LdapConfig,
    private readonly client: LdapClient,
  ) {
    this.rolesDn = config.rolesDn ?? config.groupsDn;
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  // ---- lookups --------------------------------------------------------------------------

  private userDn(subject: string): string {
    return this.safe(() => childDn('uid', subject, this.config.usersDn), `subject "${subject}"`);
  }

  private groupDn(name: string, role: boolean): string {
    return this.safe(
      () => childDn('cn', name, role ? this.rolesDn : this.config.groupsDn),
      `${role ? 'role' : 'group'} "${name}"`,
    );
  }

  private safe<T>(fn: () => T, what: string): T {
    try {
      return fn();
    } catch (err) {
      throw new PermanentTargetError(
        'InvalidIdentifier',
        `target ${this.target}: ${what}: ${(err as Error).message}`,
        err,
      );
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
    const filter = this.safe(
      () => `(&(objectClass=inetOrgPerson)${equalityFilter('uid', subject)})`,
      `subject "${subject}"`,
    );
    const res = await this.client.request(`find account ${JSON.stringify(subject)}`, (c) =>
      c.search(this.config.usersDn, { scope: 'one', filter, attributes: this.accountAttributes(), sizeLimit: 2 }),
    );
    const exact = res.searchEntries.filter((e) => values(e, 'uid').includes(subject));
    if (exact.length > 1)
      throw new PermanentTargetError(
        'TargetConflict',
        `target ${this.target}: ${exact.length} entries have uid ${JSON.stringify(subject)}`,
      );
    if (exact.length === 1) return { dn: exact[0]!.dn, entry: exact[0]! };
    if (res.searchEntries.length > 0 && strict) {
      const other = values(res.searchEntries[0]!, 'uid')[0] ?? res.searchEntries[0]!.dn;
      throw new PermanentTargetError(
        'TargetConflict',
        `target ${this.target}: the directory treats ${JSON.stringify(subject)} as the existing account ${JSON.stringify(other)}`,
      );
    }
    return null;
  }

  private async needAccount(subject: string): Promise<Account> {
    const a = await this.findAccount(subject, true);
    if (!a)
      throw new PermanentTargetError('AccountMissing', `target ${this.target}: no account ${JSON.stringify(subject)}`);
    return a;
  }

  private async groupState(groupDn: string, name: string, userDn: string): Promise<GroupState | null> {
    const entry = await this.client.readEntry(groupDn, ['cn', 'member', 'objectClass']);
    if (!entry) return null;
    if (!values(entry, 'objectClass').some((o) => o.toLowerCase() === 'groupofnames')) {
      throw new PermanentTargetError(
        'TargetConflict',
        `target ${this.target}: ${groupDn} exists and is not a groupOfNames`,
      );
    }
    if (!values(entry, 'cn').includes(name)) {
      throw new PermanentTargetError(
        'TargetConflict',
        `target ${this.target}: the directory treats group ${JSON.stringify(name)} as ${JSON.stringify(values(entry, 'cn')[0])}`,
      );
    }
    const members = values(entry, 'member');
    // DN equality is the server's (distinguishedNameMatch): ask it rather than compare strings.
    const isMember =
      members.length > 0 &&
      (await this.client.request(`compare ${groupDn}`, (c) => c.compare(groupDn, 'member', userDn)));
    const hasPlaceholder =
      members.includes(this.config.emptyGroupMember) ||
      (members.length > 0 &&
        this.config.emptyGroupMember !== '' &&
        (await this.client.request(`compare ${groupDn}`, (c) =>
          c.compare(groupDn, 'member', this.config.emptyGroupMember),
        )));
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
      const res = await this.client.request('list accounts', (c) =>
        c.search(this.config.usersDn, {
          scope: 'one',
          filter: '(objectClass=inetOrgPerson)',
          attributes: this.accountAttributes(),
          paged: { pageSize: LIST_PAGE },
        }),
      );
      for (const e of res.searchEntries)
        if (values(e, 'uid').some((u) => wanted.has(u))) found.push({ dn: e.dn, entry: e });
    }
    const accounts: TargetState['accounts'] = found.map((a) => {
      const attributes: Record<string, string> = {};
      for (const [key, attr] of Object.entries(this.config.attributeMap)) {
        const v = values(a.entry, attr)[0];
        if (v !== undefined) attributes[key] = v;
      }
      return {
        subject: values(a.entry, 'uid').find((u) => wanted.has(u))!,
        active: values(a.entry, LOCK_ATTR).length === 0,
        attributes,
      };
    });
    const members: TargetState['members'] = {};
    for (const g of query.groups) {
      const entry = await this.client.readEntry(this.groupDn(g.name, g.kind === 'role'), ['cn', 'member']);
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
      const res = await this.client.request(`groups of ${userDn}`, (c) =>
        c.search(base, { scope: 'one', filter, attributes: ['cn'] }),
      );
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
        throw new PermanentTargetError(
          'UnsupportedAction',
          `target ${this.target}: unsupported action ${String(op.action)}`,
        );
    }
  }

  /** Plan attributes mapped to LDAP attributes (displayName also drives cn). */
  private attributesParam(op: OperationSpec): Record<string, string> {
    const mapped = mappedAttributes(op, {
      target: this.target,
      map: this.config.attributeMap,
      mapName: 'attributeMap',
      valid: (v) => v !== '',
      refusal: () => 'must be a non-empty string',
    });
    const out: Record<string, string> = {};
    for (const [key, attr, v] of mapped) {
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
      const code = await this.client.tolerate(`add ${dn}`, (c) => c.add(dn, entry), [68]);
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
  private async reconcileAttrs(
    a: Account,
    attrs: Record<string, string>,
    activate: boolean,
    unchangedNote: string,
  ): Promise<ApplyResult> {
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
    if (changes.length === 0)
      return { outcome: 'unchanged', prior: prior as unknown as JsonValue, detail: unchangedNote };
    await this.client.request(`modify ${a.dn}`, (c) => c.modify(a.dn, changes));
    return {
      outcome: 'applied',
      prior: prior as unknown as JsonValue,
      detail: `modified ${Object.keys(before).join(', ')} of ${a.dn}`,
    };
  }

  private async setLocked(subject: string, locked: boolean): Promise<ApplyResult> {
    const a = await this.findAccount(subject, true);
    if (!a) {
      if (locked) return { outcome: 'unchanged', prior: { kind: 'none' }, detail: 'no account to deactivate' };
      throw new PermanentTargetError(
        'AccountMissing',
        `target ${this.target}: no account ${JSON.stringify(subject)} to reactivate`,
      );
    }
    const cur = values(a.entry, LOCK_ATTR);
    const prior: AttrPrior = { kind: 'attrs', dn: a.dn, created: false, attrs: { [LOCK_ATTR]: cur } };
    if (locked === cur.length > 0)
      return {
        outcome: 'unchanged',
        prior: prior as unknown as JsonValue,
        detail: locked ? 'already locked' : 'already active',
      };
    await this.client.request(`${locked ? 'lock' : 'unlock'} ${a.dn}`, (c) =>
      c.modify(a.dn, [replace(LOCK_ATTR, locked ? [LOCKED_VALUE] : [])]),
    );
    return {
      outcome: 'applied',
      prior: prior as unknown as JsonValue,
      detail: `${locked ? 'locked' : 'unlocked'} ${a.dn}`,
    };
  }

  private async membership(subject: string, name: string, role: boolean, join: boolean): Promise<ApplyResult> {
    const groupDn = this.groupDn(name, role);
    const a = await this.findAccount(subject, true);
    if (!a) {
      if (!join) return { outcome: 'unchanged', prior: { kind: 'none' }, detail: 'no account' };
      throw new PermanentTargetError(
        'AccountMissing',
        `target ${this.target}: no account ${JSON.stringify(subject)} to add to ${groupDn}`,
      );
    }
    for (let attempt = 0; attempt < 4; attempt++) {
      const s = await this.groupState(groupDn, name, a.dn);
      const prior: MemberPrior = {
        kind: 'member',
        groupDn,
        userDn: a.dn,
        existed: s !== null,
        member: s?.isMember ?? false,
        placeholder: s?.hasPlaceholder ?? false,
      };
      if (s === null && !join)
        return { outcome: 'unchanged', prior: prior as unknown as JsonValue, detail: 'no such group' };
      if (s !== null && s.isMember === join)
        return {
          outcome: 'unchanged',
          prior: prior as unknown as JsonValue,
          detail: join ? 'already a member' : 'not a member',
        };
      const done =
        s === null
          ? (await this.client.tolerate(
              `add ${groupDn}`,
              (c) => c.add(groupDn, { objectClass: ['top', 'groupOfNames'], cn: [name], member: [a.dn] }),
              [68],
            )) === 0
          : await this.modifyMembers(s, a.dn, join, false);
      if (done)
        return {
          outcome: 'applied',
          prior: prior as unknown as JsonValue,
          detail: `${join ? (s === null ? 'created with' : 'added') : 'removed'} member ${a.dn} ${join ? 'to' : 'from'} ${groupDn}`,
        };
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
    const code = await this.client.tolerate(`modify ${s.dn}`, (c) => c.modify(s.dn, changes), [16, 20, 65]);
    return code === 0;
  }

  async compensate(op: CompensationSpec, result: ApplyResult): Promise<CompensateResult> {
    const prior = result.prior as unknown as Prior | null;
    return compensateWith(op, result, priorFacts(prior), (step) => this.performCompensation(prior!, step));
  }

  /** Perform a compensation step, with the exact values the prior state recorded. */
  private async performCompensation(prior: Prior, step: CompensationAction): Promise<CompensateResult> {
    const mismatch = () => priorMismatch(this.target, prior.kind, step);
    switch (step.action) {
      case 'removeAccount': {
        if (prior.kind !== 'attrs' || !prior.created) throw mismatch();
        const code = await this.client.tolerate(`delete ${prior.dn}`, (c) => c.del(prior.dn), [32]);
        return code === 32
          ? { outcome: 'unchanged', detail: `${prior.dn} already gone` }
          : { outcome: 'compensated', detail: `deleted ${prior.dn}` };
      }
      case 'restoreAccount':
      case 'restoreAttributes':
      case 'reactivateAccount':
      case 'deactivateAccount': {
        if (prior.kind !== 'attrs' || prior.created) throw mismatch();
        return this.restoreAttrs(prior, this.touched(prior, step));
      }
      case 'leaveGroup':
      case 'revokeRole':
      case 'joinGroup':
      case 'grantRole': {
        if (prior.kind !== 'member') throw mismatch();
        const join = step.action === 'joinGroup' || step.action === 'grantRole';
        return this.restoreMembership(prior, step.name, join, 'created' in step && step.created);
      }
    }
  }

  /** The LDAP attributes (and values) an account step puts back: every recorded one, the mapped attributes named, or the lock. */
  private touched(prior: AttrPrior, step: CompensationAction): Record<string, string[]> {
    if (step.action === 'restoreAccount') return prior.attrs;
    if (step.action === 'restoreAttributes') {
      const names = new Set(
        step.attributes
          .flatMap((a) => [this.config.attributeMap[a], a === 'displayName' ? 'cn' : undefined])
          .filter((n): n is string => n !== undefined),
      );
      return Object.fromEntries(Object.entries(prior.attrs).filter(([n]) => names.has(n)));
    }
    return { [LOCK_ATTR]: prior.attrs[LOCK_ATTR] ?? (step.action === 'reactivateAccount' ? [] : [LOCKED_VALUE]) };
  }

  private async restoreAttrs(prior: AttrPrior, attrs: Record<string, string[]>): Promise<CompensateResult> {
    const names = Object.keys(attrs);
    if (names.length === 0) return { outcome: 'unchanged', detail: 'nothing recorded to restore' };
    const entry = await this.client.readEntry(prior.dn, names);
    if (!entry)
      throw new PermanentTargetError(
        'CompensationImpossible',
        `target ${this.target}: ${prior.dn} disappeared; cannot restore ${names.join(', ')}`,
      );
    const changes = names.filter((n) => !sameSet(values(entry, n), attrs[n]!)).map((n) => replace(n, attrs[n]!));
    if (changes.length === 0) return { outcome: 'unchanged', detail: 'already as before' };
    await this.client.request(`restore ${prior.dn}`, (c) => c.modify(prior.dn, changes));
    return {
      outcome: 'compensated',
      detail: `restored ${changes.map((c) => c.modification.type).join(', ')} of ${prior.dn}`,
    };
  }

  /**
   * The subject's membership back to `member` (and the placeholder as it was); `created`: the
   * group was the operation's own, deleted when nobody else is in it.
   */
  private async restoreMembership(
    prior: MemberPrior,
    name: string,
    member: boolean,
    created: boolean,
  ): Promise<CompensateResult> {
    for (let attempt = 0; attempt < 4; attempt++) {
      const s = await this.groupState(prior.groupDn, name, prior.userDn);
      if (created) {
        if (s === null) return { outcome: 'unchanged', detail: `${prior.groupDn} already gone` };
        const realMembers = s.count - (s.hasPlaceholder ? 1 : 0) - (s.isMember ? 1 : 0);
        if (realMembers === 0) {
          // The group we created holds nobody else: delete it, as it was before.
          const code = await this.client.tolerate(`delete ${prior.groupDn}`, (c) => c.del(prior.groupDn), [32]);
          if (code === 0) return { outcome: 'compensated', detail: `deleted ${prior.groupDn}` };
          continue;
        }
        if (!s.isMember) return { outcome: 'unchanged', detail: 'not a member' };
        if (await this.modifyMembers(s, prior.userDn, false, false))
          return {
            outcome: 'compensated',
            detail: `removed ${prior.userDn}; ${prior.groupDn} has other members now, kept`,
          };
        continue;
      }
      if (s === null)
        throw new PermanentTargetError(
          'CompensationImpossible',
          `target ${this.target}: ${prior.groupDn} disappeared; cannot restore membership of ${prior.userDn}`,
        );
      if (s.isMember === member && s.hasPlaceholder === prior.placeholder)
        return { outcome: 'unchanged', detail: 'already as before' };
      if (await this.modifyMembers(s, prior.userDn, member, prior.placeholder)) {
        return {
          outcome: 'compensated',
          detail: `${member ? 'added' : 'removed'} ${prior.userDn} ${member ? 'to' : 'from'} ${prior.groupDn}`,
        };
      }
    }
    throw new TransientTargetError(`target ${this.target}: ${prior.groupDn} keeps changing under us`);
  }
}

/** What the recorded prior state says for the inverse (./compensation.ts). */
function priorFacts(prior: Prior | null): PriorFacts | null {
  if (!prior || typeof prior !== 'object') return null;
  if (prior.kind === 'attrs') {
    const lock = prior.attrs[LOCK_ATTR];
    return { kind: 'account', existed: !prior.created, ...(lock ? { active: lock.length === 0 } : {}) };
  }
  if (prior.kind === 'member') return { kind: 'membership', member: prior.member, created: !prior.existed };
  return null;
}

export function createLdapConnector(
  target: string,
  config: LdapConfig,
  secrets: SecretSource = secretSource(),
): Connector {
  const c = ldapConfigSchema.parse(config);
  const client = new LdapClient(target, {
    url: c.url,
    bindDn: c.bindDn,
    password: secrets.reader(c.bindPassword, `target ${target}: bind password`),
    timeoutMs: c.timeoutMs,
    ...(c.rateLimit ? { rateLimit: c.rateLimit } : {}),
  });
  return new LdapConnector(target, c, client);
}
