/**
 * Accounts shared by several contracts (issue 10, point 2), on the real dev server,
 * PostgreSQL and scim2-server: an amendment changes only what its own contract grants; an
 * account is deactivated only when no contract names it any more, and reactivated when one
 * does again; the second contract links the first one's account and never takes it over.
 * Concurrent amendments of the two contracts leave exactly what both say.
 */
import { randomBytes } from 'node:crypto';
import type { Role } from '../../src/domain/contract';
import { RawScim } from '../harness/servers/scim';
import { need } from '../harness/env';
import { baseline, changes, customer, type Customer } from './fixtures';
import { pgAdmin, startStack, type PgRole, type Stack } from './stack';

let stack: Stack;
let scim: RawScim;

beforeAll(async () => {
  stack = await startStack('shares', { env: { AMENDCTL_AUDIT_PORT: need('AMENDCTL_TEST_PG_PORT') } });
  scim = new RawScim(need('AMENDCTL_TEST_SCIM_URL'), need('AMENDCTL_TEST_SCIM_TOKEN'));
});
afterAll(async () => {
  await stack?.stop();
});

function person(): string {
  return `pat-${randomBytes(3).toString('hex')}@shared.example`;
}

const add = (c: Customer, seq: number, email: string, role: Role) =>
  changes(c, seq, [{ op: 'add', path: 'namedUsers', value: { email, name: 'Pat Shared', role } }]);
const remove = (c: Customer, seq: number, email: string) =>
  changes(c, seq, [{ op: 'remove', path: 'namedUsers', match: { email } }]);
const role = (c: Customer, seq: number, email: string, to: Role) =>
  changes(c, seq, [{ op: 'set', path: 'namedUsers.role', match: { email }, value: to }]);

async function completed(...amendments: Array<ReturnType<typeof changes>>): Promise<void> {
  await Promise.all(amendments.map((a) => stack.client.submitAmendment(a)));
  const views = await Promise.all(amendments.map((a) => stack.client.waitForResult(a.amendmentId)));
  expect(
    views.map((v) => `${v.amendmentId}: ${v.status}${v.status !== 'completed' && v.reason ? ` (${v.reason})` : ''}`),
  ).toEqual(amendments.map((a) => `${a.amendmentId}: completed`));
}

async function idp(email: string) {
  const a = await scim.readBack(email);
  return a && { active: a.active, groups: a.groups, externalId: a.attributes.externalId };
}

async function warehouse(email: string): Promise<PgRole | undefined> {
  const c = await pgAdmin();
  try {
    const r = await c.query<{ rolcanlogin: boolean; member_of: string[] | null }>(
      `SELECT u.rolcanlogin, array_remove(array_agg(r.rolname::text ORDER BY r.rolname), NULL) AS member_of
         FROM pg_roles u LEFT JOIN pg_auth_members m ON m.member = u.oid LEFT JOIN pg_roles r ON r.oid = m.roleid
        WHERE u.rolname = $1 GROUP BY u.rolcanlogin`,
      [email],
    );
    const row = r.rows[0];
    return row && { login: row.rolcanlogin, memberOf: row.member_of ?? [] };
  } finally {
    await c.end();
  }
}

test("two contracts name one person: removed from one, the account keeps the other's access; removed from both, it is deactivated; named again, reactivated", async () => {
  const a = customer('sha');
  const b = customer('shb');
  const pat = person();
  await completed(baseline(a, [['ann', 'member']]), baseline(b, [['bea', 'viewer']]));

  await completed(add(a, 2, pat, 'member'));
  await completed(add(b, 2, pat, 'viewer'));
  // B linked A's account: one user, A's externalId kept, both customers' groups; both warehouse roles.
  expect(await idp(pat)).toEqual({
    active: true,
    groups: [`${a.id}-members`, `${a.id}-mod-analytics`, `${b.id}-mod-analytics`, `${b.id}-viewers`].sort(),
    externalId: `${a.id}:${pat}`,
  });
  expect(await warehouse(pat)).toEqual({ login: true, memberOf: ['app_read', 'app_write'] });
  expect(
    (await scim.list<{ userName: string }>('/Users')).filter((u) => u.userName.toLowerCase() === pat),
  ).toHaveLength(1);

  await completed(remove(b, 3, pat));
  expect(await idp(pat)).toEqual({
    active: true,
    groups: [`${a.id}-members`, `${a.id}-mod-analytics`],
    externalId: `${a.id}:${pat}`,
  });
  expect(await warehouse(pat)).toEqual({ login: true, memberOf: ['app_write'] });

  await completed(remove(a, 3, pat));
  expect(await idp(pat)).toEqual({ active: false, groups: [], externalId: `${a.id}:${pat}` });
  expect(await warehouse(pat)).toEqual({ login: false, memberOf: [] });

  // Named again by B alone: reactivated, and now B's account.
  await completed(add(b, 4, pat, 'member'));
  expect(await idp(pat)).toEqual({
    active: true,
    groups: [`${b.id}-members`, `${b.id}-mod-analytics`],
    externalId: `${b.id}:${pat}`,
  });
  expect(await warehouse(pat)).toEqual({ login: true, memberOf: ['app_write'] });
}, 180_000);

test('concurrent amendments of two contracts sharing a person and a warehouse role leave exactly what both contracts say', async () => {
  const c = customer('shc');
  const d = customer('shd');
  const pat = person();
  await completed(baseline(c, [['cy', 'member']]), baseline(d, [['di', 'member']]));
  await completed(add(c, 2, pat, 'member'), add(d, 2, pat, 'member'));
  expect(await warehouse(pat)).toEqual({ login: true, memberOf: ['app_write'] });

  // At the same time: C removes the person, D moves them to viewer. Both revoke app_write (the
  // role they shared); whichever runs second revokes it. D's grant of app_read and the account stay.
  await completed(remove(c, 3, pat), role(d, 3, pat, 'viewer'));
  expect(await idp(pat)).toEqual({
    active: true,
    groups: [`${d.id}-mod-analytics`, `${d.id}-viewers`],
    externalId: expect.stringMatching(/^sh[cd]-/),
  });
  expect(await warehouse(pat)).toEqual({ login: true, memberOf: ['app_read'] });

  // At the same time: C names them again as viewer, D removes them. The account stays active, with C's access only.
  await completed(add(c, 4, pat, 'viewer'), remove(d, 4, pat));
  expect(await idp(pat)).toMatchObject({ active: true, groups: [`${c.id}-mod-analytics`, `${c.id}-viewers`] });
  expect(await warehouse(pat)).toEqual({ login: true, memberOf: ['app_read'] });

  // C removes them while D amends something else: no contract names them now, so they are deactivated everywhere.
  await completed(remove(c, 5, pat), add(d, 5, `other-${pat}`, 'viewer'));
  expect(await idp(pat)).toMatchObject({ active: false, groups: [] });
  expect(await warehouse(pat)).toEqual({ login: false, memberOf: [] });
}, 240_000);
