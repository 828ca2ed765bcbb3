/**
 * Drift on an LDAP directory (the harness's slapd, with the ppolicy lock): out-of-band changes
 * made with a plain LDAP client (an extra admin membership, a re-enabled account, a deleted
 * membership, an unmanaged account in a managed group) are reported by `amendctl drift`, and a
 * reconciliation under the repair policy puts the directory back as the contract says.
 */
import { Attribute, Change, Client as LdapClient, type Entry } from 'ldapts';
import { join } from 'node:path';
import { driftCommand } from '../../src/cli/commands/drift';
import type { CliIO } from '../../src/cli/io';
import type { ReconcileView } from '../../src/workflows/reconcile-definitions';
import { need } from '../harness/env';
import { baseline, changes, customer } from '../workflows/fixtures';
import { startStack, type Stack } from '../workflows/stack';

const FIXTURES = join(__dirname, 'fixtures');
const TARGETS = join(FIXTURES, 'directory-targets.yaml');
const RULES = join(FIXTURES, 'directory-rules.yaml');

let stack: Stack;
let ldap: LdapClient;
let base: string;
const saved = { targets: process.env.AMENDCTL_TARGETS, rules: process.env.AMENDCTL_RULES };
const c = customer('ldrift');

beforeAll(async () => {
  base = need('AMENDCTL_TEST_LDAP_BASE_DN');
  ldap = new LdapClient({ url: need('AMENDCTL_TEST_LDAP_URL'), timeout: 5000 });
  await ldap.bind(need('AMENDCTL_TEST_LDAP_BIND_DN'), need('AMENDCTL_TEST_LDAP_PASSWORD'));
  await ldap.add(`ou=roles,${base}`, { objectClass: ['organizationalUnit'], ou: ['roles'] }).catch((err: Error) => {
    if (!/already ?exists/i.test(`${err.name} ${err.message}`)) throw err; // AlreadyExistsError (0x44): another test file made it
  });
  stack = await startStack('ldrift', {
    targetsFile: TARGETS,
    rulesFile: RULES,
    env: {
      AMENDCTL_DIRECTORY_URL: need('AMENDCTL_TEST_LDAP_URL'),
      AMENDCTL_DIRECTORY_BIND_DN: need('AMENDCTL_TEST_LDAP_BIND_DN'),
      AMENDCTL_DIRECTORY_BIND_PASSWORD: need('AMENDCTL_TEST_LDAP_PASSWORD'),
      AMENDCTL_DIRECTORY_BASE_DN: base,
    },
  });
  // `amendctl drift` runs with the worker's configuration.
  process.env.AMENDCTL_TARGETS = TARGETS;
  process.env.AMENDCTL_RULES = RULES;
});
afterAll(async () => {
  for (const [k, v] of [
    ['AMENDCTL_TARGETS', saved.targets],
    ['AMENDCTL_RULES', saved.rules],
  ] as const) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  await stack?.stop();
  await ldap?.unbind();
});

async function drift(): Promise<{
  code: number;
  found: { total: number; differences: Array<{ kind: string; subject: string; group?: string; unmanaged?: boolean }> };
}> {
  let out = '';
  const io: CliIO = { out: (t) => void (out += t), err: () => undefined };
  const code = await driftCommand(
    [c.contractId, '--json', '--address', need('AMENDCTL_TEST_TEMPORAL_ADDRESS'), '--task-queue', stack.taskQueue],
    io,
  );
  return { code, found: JSON.parse(out) };
}

const user = (email: string) => `uid=${email},ou=people,${base}`;
const vals = (e: Entry | undefined, name: string): string[] => {
  const k = e && Object.keys(e).find((x) => x.toLowerCase() === name.toLowerCase());
  if (!e || !k) return [];
  const v = e[k]!;
  return (Array.isArray(v) ? v : [v]).map((x) => (Buffer.isBuffer(x) ? x.toString('utf8') : x));
};
async function entry(dn: string, attributes: string[]): Promise<Entry | undefined> {
  return (await ldap.search(dn, { scope: 'base', attributes })).searchEntries[0];
}

test('directory drift: reported by amendctl drift, repaired by a reconciliation under repair', async () => {
  await stack.client.submitAmendment(
    baseline(c, [
      ['bob', 'member'],
      ['carol', 'viewer'],
      ['dave', 'member'],
    ]),
  );
  expect((await stack.client.waitForResult(`${c.id}-001`)).status).toBe('completed');
  await stack.client.submitAmendment(
    changes(c, 2, [{ op: 'remove', path: 'namedUsers', match: { email: c.email('carol') } }]),
  );
  expect((await stack.client.waitForResult(`${c.id}-002`)).status).toBe('completed');
  expect(await drift()).toEqual({ code: 0, found: expect.objectContaining({ total: 0 }) });

  const stranger = `mallory@elsewhere-${c.id}.test`;
  await ldap.add(`cn=${c.id}-admins,ou=roles,${base}`, {
    objectClass: ['groupOfNames'],
    cn: [`${c.id}-admins`],
    member: [user(c.email('bob'))],
  }); // an extra admin membership
  await ldap.modify(user(c.email('carol')), [
    new Change({ operation: 'delete', modification: new Attribute({ type: 'pwdAccountLockedTime', values: [] }) }),
  ]); // a re-enabled account
  await ldap.modify(`cn=${c.id}-mod-analytics,ou=groups,${base}`, [
    new Change({
      operation: 'delete',
      modification: new Attribute({ type: 'member', values: [user(c.email('dave'))] }),
    }),
  ]); // a deleted membership
  await ldap.add(user(stranger), { objectClass: ['inetOrgPerson'], uid: [stranger], cn: ['Mallory'], sn: ['Mallory'] });
  await ldap.modify(`cn=${c.id}-members,ou=roles,${base}`, [
    new Change({ operation: 'add', modification: new Attribute({ type: 'member', values: [user(stranger)] }) }),
  ]); // an unmanaged account in a managed group

  const { code, found } = await drift();
  expect(code).toBe(1);
  expect(
    found.differences
      .map((d) => `${d.kind} ${d.subject}${d.group ? ` ${d.group}` : ''}${d.unmanaged ? ' (unmanaged)' : ''}`)
      .sort(),
  ).toEqual(
    [
      `account_active ${c.email('carol')}`,
      `membership_extra ${c.email('bob')} ${c.id}-admins`,
      `membership_extra ${stranger} ${c.id}-members (unmanaged)`,
      `membership_missing ${c.email('dave')} ${c.id}-mod-analytics`,
    ].sort(),
  );

  const h = await stack.client.client.workflow.start('reconcileWorkflow', {
    workflowId: `reconcile-${c.contractId}-ldap`,
    taskQueue: stack.taskQueue,
    args: [{ contractId: c.contractId, policy: 'repair' }],
  });
  const v = (await h.result()) as ReconcileView;
  expect(v.status).toBe('repaired');
  expect((await drift()).found.total).toBe(0);
  expect(vals(await entry(user(c.email('carol')), ['pwdAccountLockedTime']), 'pwdAccountLockedTime')).toHaveLength(1);
  expect(
    vals(await entry(`cn=${c.id}-members,ou=roles,${base}`, ['member']), 'member').map((m) => m.toLowerCase()),
  ).not.toContain(user(stranger).toLowerCase());
  expect(
    vals(await entry(`cn=${c.id}-admins,ou=roles,${base}`, ['member']), 'member').map((m) => m.toLowerCase()),
  ).not.toContain(user(c.email('bob')).toLowerCase());
  expect(
    vals(await entry(`cn=${c.id}-mod-analytics,ou=groups,${base}`, ['member']), 'member').map((m) => m.toLowerCase()),
  ).toContain(user(c.email('dave')).toLowerCase());
});
