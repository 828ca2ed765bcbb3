/**
 * readState (drift's read) of the scim, postgres and ldap connectors against the real servers:
 * the same answer whether the connector looks a few accounts up one by one or lists the whole
 * target in pages; missing groups are null; accounts nobody asked for are not in `accounts`
 * but are members where they are. Identifiers with quotes and filter characters stay exact.
 */
import { randomBytes } from 'node:crypto';
import { createLdapConnector } from '../../src/connectors/ldap';
import { createPostgresConnector, postgresConfigSchema } from '../../src/connectors/postgres';
import { createScimConnector, scimConfigSchema } from '../../src/connectors/scim';
import type { Connector, OperationSpec, TargetState } from '../../src/connectors/types';
import type { Action } from '../../src/domain/plan';
import type { JsonValue } from '../../src/domain/json';
import { need } from '../harness/env';

const run = randomBytes(3).toString('hex');
const N = 25; // more than the connectors' FEW_SUBJECTS (20): the list mode

function connectors(): Array<{ name: string; connector: Connector; kind: 'group' | 'role'; group: string }> {
  process.env.AMENDCTL_TEST_DRIFT_SCIM_TOKEN = need('AMENDCTL_TEST_SCIM_TOKEN');
  process.env.AMENDCTL_TEST_DRIFT_PG_PASSWORD = need('AMENDCTL_TEST_PG_PASSWORD');
  process.env.AMENDCTL_TEST_DRIFT_LDAP_PASSWORD = need('AMENDCTL_TEST_LDAP_PASSWORD');
  return [
    {
      name: 'scim',
      connector: createScimConnector(
        'idp',
        scimConfigSchema.parse({
          type: 'scim',
          baseUrl: need('AMENDCTL_TEST_SCIM_URL'),
          auth: { bearerTokenEnv: 'AMENDCTL_TEST_DRIFT_SCIM_TOKEN' },
          pageSize: 7,
        }),
      ),
      kind: 'group',
      group: `drift-${run}-members`,
    },
    {
      name: 'postgres',
      connector: createPostgresConnector(
        'warehouse',
        postgresConfigSchema.parse({
          type: 'postgres',
          host: need('AMENDCTL_TEST_PG_HOST'),
          port: Number(need('AMENDCTL_TEST_PG_PORT')),
          database: 'warehouse',
          user: 'amendctl',
          password: { env: 'AMENDCTL_TEST_DRIFT_PG_PASSWORD' },
          createMissingRoles: true,
        }),
      ),
      kind: 'role',
      group: `drift_${run}_"role"`,
    },
    {
      name: 'ldap',
      connector: createLdapConnector('directory', {
        type: 'ldap',
        url: need('AMENDCTL_TEST_LDAP_URL'),
        bindDn: need('AMENDCTL_TEST_LDAP_BIND_DN'),
        bindPassword: { env: 'AMENDCTL_TEST_DRIFT_LDAP_PASSWORD' },
        usersDn: need('AMENDCTL_TEST_LDAP_USERS_DN'),
        groupsDn: need('AMENDCTL_TEST_LDAP_GROUPS_DN'),
        attributeMap: { displayName: 'displayName', email: 'mail', externalId: 'employeeNumber' },
        emptyGroupMember: '',
        timeoutMs: 5000,
      }),
      kind: 'group',
      group: `drift-${run}-members (a*)`,
    },
  ];
}

const op = (
  target: string,
  action: Action,
  subject: string,
  params: Record<string, JsonValue> = {},
): OperationSpec => ({ id: `${target}:${action}:${subject}`, target, action, subject, params });
const sorted = (s: TargetState) => ({
  accounts: [...s.accounts]
    .sort((a, b) => a.subject.localeCompare(b.subject))
    .map((a) => ({ subject: a.subject, active: a.active, displayName: a.attributes.displayName ?? null })),
  members: Object.fromEntries(Object.entries(s.members).map(([k, v]) => [k, v === null ? null : [...v].sort()])),
});

describe.each(connectors())('$name readState', ({ connector, kind, group }) => {
  const t = connector.target;
  const subjects = Array.from({ length: N }, (_, i) =>
    `d${String(i).padStart(2, '0')}(*)"${run}@drift.test`.replace('"', t === 'warehouse' ? '"' : ''),
  );
  const outsider = `outsider-${run}@drift.test`;

  beforeAll(async () => {
    for (const s of [...subjects, outsider]) {
      await connector.apply(
        op(t, 'ensureAccount', s, {
          attributes: t === 'warehouse' ? {} : { displayName: `Name ${s.slice(0, 3)}`, email: s },
        }),
      );
    }
    for (const s of [...subjects.slice(0, 10), outsider])
      await connector.apply(op(t, kind === 'role' ? 'grantRole' : 'joinGroup', s, { [kind]: group }));
    await connector.apply(op(t, 'deactivateAccount', subjects[3]!));
  }, 120_000);
  afterAll(async () => {
    await connector.close();
  });

  test('lookup and list modes agree, with activity, attributes and members', async () => {
    const query = {
      subjects,
      groups: [
        { name: group, kind },
        { name: `drift-${run}-none`, kind },
      ],
    };
    const listed = sorted(await connector.readState!(query));
    expect(listed.accounts).toHaveLength(N);
    expect(listed.accounts.filter((a) => !a.active).map((a) => a.subject)).toEqual([subjects[3]]);
    if (t !== 'warehouse') expect(listed.accounts[0]!.displayName).toBe('Name d00');
    expect(listed.members).toEqual({
      [group]: [...subjects.slice(0, 10), outsider].sort(),
      [`drift-${run}-none`]: null,
    });
    const few = sorted(await connector.readState!({ subjects: subjects.slice(0, 5), groups: [{ name: group, kind }] }));
    expect(few.accounts).toEqual(listed.accounts.slice(0, 5));
    expect(few.members).toEqual({ [group]: listed.members[group] });
  });
});
