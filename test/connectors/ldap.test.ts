/**
 * The LDAP connector against OpenLDAP slapd (started by the harness): the shared
 * conformance suite through a TCP proxy, read back with a separate ldapts client that
 * uses the library's own filter encoding (not the connector's escaping), and the
 * directory-specific behaviour: administrative lock refuses binds, the last-member case
 * of groupOfNames, look-alike names, error classification.
 */
import { randomBytes } from 'node:crypto';
import {
  AndFilter,
  Attribute,
  BusyError,
  Change,
  Client,
  EqualityFilter,
  InsufficientAccessError,
  InvalidCredentialsError,
  InvalidDNSyntaxError,
  UnavailableError,
  UndefinedTypeError,
  type Entry,
} from 'ldapts';
import { classifyLdapError, createLdapConnector, LOCKED_VALUE, type LdapConfig } from '../../src/connectors/ldap';
import {
  PermanentTargetError,
  TransientTargetError,
  type AccountState,
  type CompensationSpec,
} from '../../src/connectors/types';
import type { Action } from '../../src/domain/plan';
import type { JsonValue } from '../../src/domain/json';
import { freePort } from '../harness/proc';
import { need } from '../harness/env';
import { describeConformance, plannedOperation, startTcpProxy } from './conformance';

const PASSWORD_ENV = 'AMENDCTL_TEST_LDAP_CONNECTOR_PASSWORD';

function config(over: Partial<LdapConfig> = {}): LdapConfig {
  process.env[PASSWORD_ENV] = need('AMENDCTL_TEST_LDAP_PASSWORD');
  return {
    type: 'ldap',
    url: need('AMENDCTL_TEST_LDAP_URL'),
    bindDn: need('AMENDCTL_TEST_LDAP_BIND_DN'),
    bindPassword: { env: PASSWORD_ENV },
    usersDn: need('AMENDCTL_TEST_LDAP_USERS_DN'),
    groupsDn: need('AMENDCTL_TEST_LDAP_GROUPS_DN'),
    attributeMap: { displayName: 'displayName', email: 'mail', externalId: 'employeeNumber' },
    emptyGroupMember: '',
    timeoutMs: 5000,
    ...over,
  };
}

/** An admin client of its own, for reading back and arranging. */
async function adminClient(): Promise<Client> {
  const c = new Client({ url: need('AMENDCTL_TEST_LDAP_URL'), timeout: 5000 });
  await c.bind(need('AMENDCTL_TEST_LDAP_BIND_DN'), need('AMENDCTL_TEST_LDAP_PASSWORD'));
  return c;
}

function vals(e: Entry, name: string): string[] {
  const k = Object.keys(e).find((x) => x.toLowerCase() === name.toLowerCase());
  if (!k) return [];
  const v = e[k]!;
  return (Array.isArray(v) ? v : [v]).map((x) => (Buffer.isBuffer(x) ? x.toString('utf8') : x));
}

/** The account as slapd holds it, with ldapts' own filter objects (no string filters, no connector code). */
async function readBack(c: Client, subject: string): Promise<AccountState | null> {
  const res = await c.search(need('AMENDCTL_TEST_LDAP_USERS_DN'), {
    scope: 'one',
    filter: new AndFilter({
      filters: [
        new EqualityFilter({ attribute: 'objectClass', value: 'inetOrgPerson' }),
        new EqualityFilter({ attribute: 'uid', value: subject }),
      ],
    }),
    attributes: ['uid', 'displayName', 'mail', 'employeeNumber', 'pwdAccountLockedTime'],
  });
  const mine = res.searchEntries.filter((e) => vals(e, 'uid').includes(subject));
  if (mine.length === 0) return null;
  expect(mine).toHaveLength(1);
  const e = mine[0]!;
  const groups = await c.search(need('AMENDCTL_TEST_LDAP_GROUPS_DN'), {
    scope: 'one',
    filter: new EqualityFilter({ attribute: 'member', value: e.dn }),
    attributes: ['cn'],
  });
  const attributes: Record<string, string> = {};
  for (const [k, a] of [
    ['displayName', 'displayName'],
    ['email', 'mail'],
    ['externalId', 'employeeNumber'],
  ] as const) {
    const v = vals(e, a)[0];
    if (v !== undefined) attributes[k] = v;
  }
  return {
    subject,
    id: e.dn,
    active: vals(e, 'pwdAccountLockedTime').length === 0,
    groups: groups.searchEntries.map((g) => vals(g, 'cn')[0]!).sort(),
    attributes,
  };
}

async function setPassword(c: Client, dn: string, password: string): Promise<void> {
  await c.modify(dn, [
    new Change({ operation: 'replace', modification: new Attribute({ type: 'userPassword', values: [password] }) }),
  ]);
}

async function groupMembers(c: Client, group: string): Promise<string[] | null> {
  const res = await c.search(need('AMENDCTL_TEST_LDAP_GROUPS_DN'), {
    scope: 'one',
    filter: new EqualityFilter({ attribute: 'cn', value: group }),
    attributes: ['member', 'cn'],
  });
  const g = res.searchEntries.find((e) => vals(e, 'cn').includes(group));
  return g ? vals(g, 'member') : null;
}

describeConformance('ldap', async () => {
  const proxy = await startTcpProxy({ host: '127.0.0.1', port: Number(need('AMENDCTL_TEST_LDAP_PORT')) });
  const admin = await adminClient();
  const connector = createLdapConnector(
    'directory',
    config({ url: `ldap://127.0.0.1:${proxy.port}`, timeoutMs: 2000 }),
  );
  return {
    connector,
    readBack: (s) => readBack(admin, s),
    outage: proxy.outage,
    groupExists: async (g) => (await groupMembers(admin, g)) !== null,
    accountCount: async (s) =>
      (
        await admin.search(need('AMENDCTL_TEST_LDAP_BASE_DN'), {
          scope: 'sub',
          filter: new EqualityFilter({ attribute: 'uid', value: s }),
          attributes: ['uid'],
        })
      ).searchEntries.length,
    cleanup: async () => {
      await admin.unbind();
      await proxy.close();
    },
  };
});

describe('ldap connector, directory behaviour', () => {
  const run = randomBytes(4).toString('hex');
  let admin: Client;
  const connector = () => createLdapConnector('directory', config());
  const c = connector();
  const op = (
    action: Action,
    subject: string,
    params: Record<string, JsonValue> = {},
    attributesBefore?: Record<string, string>,
  ): CompensationSpec => plannedOperation('directory', action, subject, params, attributesBefore);

  beforeAll(async () => {
    admin = await adminClient();
  });
  afterAll(async () => {
    await admin.unbind();
    await c.close();
  });

  test('deactivation is an administrative ppolicy lock: the directory refuses the account binds, reactivation restores them', async () => {
    const subject = `lock-${run}@example.test`;
    await c.apply(op('ensureAccount', subject, { attributes: { displayName: 'Lock Test', email: subject } }));
    const dn = (await c.readAccount(subject))!.id;
    const userPassword = randomBytes(9).toString('hex');
    await setPassword(admin, dn, userPassword);
    const bindAsUser = async () => {
      const u = new Client({ url: need('AMENDCTL_TEST_LDAP_URL'), timeout: 5000 });
      try {
        await u.bind(dn, userPassword);
        return true;
      } catch (err) {
        if (err instanceof InvalidCredentialsError) return false;
        throw err;
      } finally {
        await u.unbind();
      }
    };
    expect(await bindAsUser()).toBe(true);
    const r = await c.apply(op('deactivateAccount', subject));
    expect(r.outcome).toBe('applied');
    const locked = await admin.search(dn, { scope: 'base', attributes: ['pwdAccountLockedTime'] });
    expect(vals(locked.searchEntries[0]!, 'pwdAccountLockedTime')).toEqual([LOCKED_VALUE]);
    expect(await bindAsUser()).toBe(false);
    expect((await c.readAccount(subject))!.active).toBe(false);
    await c.apply(op('reactivateAccount', subject));
    expect(await bindAsUser()).toBe(true);
    // Compensating the deactivation of an account that was active unlocks it again.
    const again = await c.apply(op('deactivateAccount', subject));
    expect(await bindAsUser()).toBe(false);
    expect((await c.compensate(op('deactivateAccount', subject), JSON.parse(JSON.stringify(again)))).outcome).toBe(
      'compensated',
    );
    expect(await bindAsUser()).toBe(true);
  });

  test('groupOfNames: the last member leaving leaves the placeholder, the group stays; a join drops the placeholder; compensation restores both', async () => {
    const subject = `last-${run}@example.test`;
    const group = `last-${run}`;
    await c.apply(op('ensureAccount', subject, { attributes: { displayName: 'Last Member' } }));
    const dn = (await c.readAccount(subject))!.id;
    const join = await c.apply(op('joinGroup', subject, { group }));
    expect(join.detail).toMatch(/created/);
    expect(await groupMembers(admin, group)).toEqual([dn]);

    const leave = await c.apply(op('leaveGroup', subject, { group }));
    expect(leave.outcome).toBe('applied');
    expect(await groupMembers(admin, group)).toEqual(['']);
    expect((await c.readAccount(subject))!.groups).toEqual([]);

    // Compensate the leave: the member is back and the placeholder gone, in one modify.
    expect((await c.compensate(op('leaveGroup', subject, { group }), JSON.parse(JSON.stringify(leave)))).outcome).toBe(
      'compensated',
    );
    expect(await groupMembers(admin, group)).toEqual([dn]);

    // Leave again, then a fresh join onto the placeholder-only group, then compensate that join.
    await c.apply(op('leaveGroup', subject, { group }));
    const rejoin = await c.apply(op('joinGroup', subject, { group }));
    expect(await groupMembers(admin, group)).toEqual([dn]);
    await c.compensate(op('joinGroup', subject, { group }), JSON.parse(JSON.stringify(rejoin)));
    expect(await groupMembers(admin, group)).toEqual(['']);

    // Compensate the first join, which created the group: the group goes.
    await c.apply(op('joinGroup', subject, { group }));
    expect((await c.compensate(op('joinGroup', subject, { group }), JSON.parse(JSON.stringify(join)))).outcome).toBe(
      'compensated',
    );
    expect(await groupMembers(admin, group)).toBeNull();
  });

  test('roles are groupOfNames entries under rolesDn', async () => {
    const subject = `role-${run}@example.test`;
    await c.apply(op('ensureAccount', subject, { attributes: {} }));
    await c.apply(op('grantRole', subject, { role: `r-${run}` }));
    expect((await c.readAccount(subject))!.groups).toEqual([`r-${run}`]);
    await c.apply(op('revokeRole', subject, { role: `r-${run}` }));
    expect((await c.readAccount(subject))!.groups).toEqual([]);
  });

  test('a name the directory matches case- or compatibility-insensitively is a conflict, never the other account', async () => {
    const subject = `ann-${run}@example.test`;
    await c.apply(op('ensureAccount', subject, { attributes: { displayName: 'Ann' } }));
    const before = await readBack(admin, subject);
    for (const lookalike of [subject.toUpperCase(), subject.replace('ann', 'ａｎｎ')]) {
      expect(await c.readAccount(lookalike)).toBeNull();
      const err = await c
        .apply(op('ensureAccount', lookalike, { attributes: { displayName: 'Mallory' } }))
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PermanentTargetError);
      expect((err as PermanentTargetError).type).toBe('TargetConflict');
      await expect(c.apply(op('deactivateAccount', lookalike))).rejects.toMatchObject({ type: 'TargetConflict' });
    }
    expect(await readBack(admin, subject)).toEqual(before);
  });

  test('attributes: updateAttributes changes displayName (and cn), compensation restores them; unmapped attributes are refused', async () => {
    const subject = `attrs-${run}@example.test`;
    await c.apply(
      op('ensureAccount', subject, { attributes: { displayName: 'Before', email: subject, externalId: 'acme:1' } }),
    );
    const update = op('updateAttributes', subject, { attributes: { displayName: 'After' } }, { displayName: 'Before' });
    const r = await c.apply(update);
    const dn = (await c.readAccount(subject))!.id;
    const e = (await admin.search(dn, { scope: 'base', attributes: ['cn', 'displayName', 'employeeNumber'] }))
      .searchEntries[0]!;
    expect([vals(e, 'cn'), vals(e, 'displayName'), vals(e, 'employeeNumber')]).toEqual([
      ['After'],
      ['After'],
      ['acme:1'],
    ]);
    await c.compensate(update, JSON.parse(JSON.stringify(r)));
    const back = (await admin.search(dn, { scope: 'base', attributes: ['cn', 'displayName'] })).searchEntries[0]!;
    expect([vals(back, 'cn'), vals(back, 'displayName')]).toEqual([['Before'], ['Before']]);
    await expect(c.apply(op('updateAttributes', subject, { attributes: { phone: '1' } }))).rejects.toMatchObject({
      type: 'InvalidAttribute',
    });
    await expect(
      c.apply(op('updateAttributes', `nobody-${run}@example.test`, { attributes: { displayName: 'x' } })),
    ).rejects.toMatchObject({ type: 'AccountMissing' });
  });

  test('results carry no credential', async () => {
    const subject = `secret-${run}@example.test`;
    const results = [
      await c.apply(op('ensureAccount', subject, { attributes: { displayName: 'S' } })),
      await c.apply(op('joinGroup', subject, { group: `s-${run}` })),
      await c.apply(op('deactivateAccount', subject)),
    ];
    const text = JSON.stringify([results, await c.readAccount(subject)]);
    expect(text).not.toContain(need('AMENDCTL_TEST_LDAP_PASSWORD'));
  });

  describe('error classification', () => {
    test('wrong bind password: permanent TargetAuthentication', async () => {
      process.env.AMENDCTL_TEST_LDAP_WRONG = 'not-the-password';
      const bad = createLdapConnector('directory', config({ bindPassword: { env: 'AMENDCTL_TEST_LDAP_WRONG' } }));
      await expect(bad.readAccount('x@example.test')).rejects.toMatchObject({
        name: 'PermanentTargetError',
        type: 'TargetAuthentication',
      });
      await bad.close();
    });

    test('unset password variable: permanent TargetMisconfigured naming the variable, not a value', async () => {
      const bad = createLdapConnector(
        'directory',
        config({ bindPassword: { env: 'AMENDCTL_TEST_LDAP_UNSET_VARIABLE' } }),
      );
      await expect(bad.readAccount('x@example.test')).rejects.toMatchObject({
        type: 'TargetMisconfigured',
        message: expect.stringContaining('AMENDCTL_TEST_LDAP_UNSET_VARIABLE'),
      });
    });

    test('nobody listening: transient', async () => {
      const port = await freePort();
      const bad = createLdapConnector('directory', config({ url: `ldap://127.0.0.1:${port}` }));
      await expect(bad.apply(op('ensureAccount', 'x@example.test', { attributes: {} }))).rejects.toBeInstanceOf(
        TransientTargetError,
      );
      await bad.close();
    });

    test('an account without write access: permanent TargetForbidden', async () => {
      const subject = `reader-${run}@example.test`;
      await c.apply(op('ensureAccount', subject, { attributes: {} }));
      const dn = (await c.readAccount(subject))!.id;
      const pw = randomBytes(9).toString('hex');
      await setPassword(admin, dn, pw);
      process.env.AMENDCTL_TEST_LDAP_READER = pw;
      const reader = createLdapConnector(
        'directory',
        config({ bindDn: dn, bindPassword: { env: 'AMENDCTL_TEST_LDAP_READER' } }),
      );
      expect((await reader.readAccount(subject))!.id).toBe(dn);
      await expect(
        reader.apply(op('ensureAccount', `new-${run}@example.test`, { attributes: {} })),
      ).rejects.toMatchObject({ type: 'TargetForbidden' });
      await reader.close();
    });

    test('a usersDn that is not a DN: permanent InvalidIdentifier', async () => {
      const bad = createLdapConnector('directory', config({ usersDn: 'ou=people,,dc=amendctl' }));
      await expect(bad.readAccount('x@example.test')).rejects.toMatchObject({ type: 'InvalidIdentifier' });
      await bad.close();
    });

    test('a NUL in a subject is escaped (\\00) and stored literally, never truncated', async () => {
      const subject = `nul\u0000-${run}@example.test`;
      const r = await c.apply(op('ensureAccount', subject, { attributes: {} }));
      expect(r.detail).toContain('\\00');
      expect((await readBack(admin, subject))!.subject).toBe(subject);
      expect(await readBack(admin, 'nul')).toBeNull();
      expect(await c.readAccount(`nul-${run}@example.test`)).toBeNull();
    });

    test.each([
      ['busy (51)', 'transient', () => new BusyError()],
      ['unavailable (52)', 'transient', () => new UnavailableError()],
      [
        'ECONNREFUSED',
        'transient',
        () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }),
      ],
      ['operation timeout', 'transient', () => new Error('SearchRequest: Operation timed out')],
      ['insufficientAccessRights (50)', 'TargetForbidden', () => new InsufficientAccessError()],
      ['invalidDNSyntax (34)', 'InvalidIdentifier', () => new InvalidDNSyntaxError()],
      ['undefinedAttributeType (17), e.g. no ppolicy overlay', 'TargetMisconfigured', () => new UndefinedTypeError()],
    ] as const)('%s -> %s', (_name, want, make) => {
      const got = classifyLdapError(make(), 'x');
      if (want === 'transient') expect(got).toBeInstanceOf(TransientTargetError);
      else expect(got).toMatchObject({ name: 'PermanentTargetError', type: want });
    });
  });
});
