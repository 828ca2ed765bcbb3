/**
 * A 2,000-user baseline on the dev server against real PostgreSQL and scim2-server (issue 9):
 * every account is read back with clients of the test's own, and no workflow history or
 * payload comes near Temporal's limits (10,240 events warned, 2 MB per payload).
 */
import type { Payload } from '@temporalio/common';
import { RawScim } from '../harness/servers/scim';
import { need } from '../harness/env';
import { baseline, customer } from '../workflows/fixtures';
import { pgSnapshot, startStack, type Stack } from '../workflows/stack';

const USERS = 2000;
const EVENTS_WARN = 10_240;
const PAYLOAD_LIMIT = 2 * 1024 * 1024;

let stack: Stack;
let scim: RawScim;

beforeAll(async () => {
  // The reference targets allow 50 requests a second; this test is about size, not the limit.
  stack = await startStack('scale', { env: { AMENDCTL_IDP_RATE: '5000', AMENDCTL_WAREHOUSE_RATE: '5000' } });
  scim = new RawScim(need('AMENDCTL_TEST_SCIM_URL'), need('AMENDCTL_TEST_SCIM_TOKEN'));
});
afterAll(async () => {
  await stack?.stop();
});

/** Every payload in a history (inputs, results, markers, signals, heartbeats), found by shape. */
function payloads(value: unknown, out: Payload[] = []): Payload[] {
  if (value === null || typeof value !== 'object') return out;
  if (value instanceof Uint8Array) return out;
  const v = value as Record<string, unknown>;
  if (v.data instanceof Uint8Array && v.metadata && typeof v.metadata === 'object') {
    out.push(v as Payload);
    return out;
  }
  for (const x of Object.values(v)) payloads(x, out);
  return out;
}

test(`a ${USERS}-user baseline provisions every account, within Temporal's limits`, async () => {
  const c = customer('large');
  const roles = ['member', 'viewer'] as const;
  const users = Array.from(
    { length: USERS },
    (_, i) => [`user${String(i).padStart(5, '0')}`, roles[i % 2]!] as [string, (typeof roles)[number]],
  );
  const a = baseline(c, users, { seats: USERS, modules: ['analytics', 'billing'] });
  await stack.client.submitAmendment(a);
  const v = await stack.client.waitForResult(a.amendmentId);
  expect(v.status).toBe('completed');
  // Per user: idp account, role group and two module groups; warehouse login role and its role-map role.
  expect(v.operationsTotal).toBe(USERS * 6);
  expect(v.operationCounts).toEqual({ idp: { applied: USERS * 4 }, warehouse: { applied: USERS * 2 } });
  // The view stays small whatever the plan's size: counts, the first operations and changes.
  expect(JSON.stringify(v).length).toBeLessThan(128 * 1024);

  // PostgreSQL, read back with the test's own client: a LOGIN role per user in its role-map role.
  const pg = await pgSnapshot(c.domain);
  expect(Object.keys(pg)).toHaveLength(USERS);
  for (const [local, role] of users)
    expect(pg[c.email(local)]).toEqual({ login: true, memberOf: [role === 'member' ? 'app_write' : 'app_read'] });

  // SCIM: every user active, every group with exactly its members.
  const scimUsers = (await scim.list<{ id: string; userName: string; active: boolean }>('/Users')).filter((u) =>
    u.userName.endsWith(`@${c.domain}`),
  );
  expect(scimUsers).toHaveLength(USERS);
  expect(scimUsers.every((u) => u.active)).toBe(true);
  const idOf = new Map(scimUsers.map((u) => [u.id, u.userName]));
  const groups = (await scim.list<{ displayName: string; members?: Array<{ value: string }> }>('/Groups')).filter((g) =>
    g.displayName.startsWith(`${c.id}-`),
  );
  const members = (name: string) =>
    (groups.find((g) => g.displayName === name)?.members ?? []).map((m) => idOf.get(m.value)).sort();
  const emails = (role?: string) =>
    users
      .filter(([, r]) => !role || r === role)
      .map(([l]) => c.email(l))
      .sort();
  expect(members(`${c.id}-members`)).toEqual(emails('member'));
  expect(members(`${c.id}-viewers`)).toEqual(emails('viewer'));
  expect(members(`${c.id}-mod-analytics`)).toEqual(emails());
  expect(members(`${c.id}-mod-billing`)).toEqual(emails());

  // Temporal's limits: the amendment's and the contract's histories, every payload in them.
  for (const workflowId of [v.workflowId, `contract-${c.contractId}`]) {
    const history = await stack.client.client.workflow.getHandle(workflowId).fetchHistory();
    const events = history.events ?? [];
    expect(events.length).toBeLessThan(EVENTS_WARN / 4);
    const sizes = payloads(events).map((p) => p.data!.length);
    expect(sizes.length).toBeGreaterThan(0);
    expect(Math.max(...sizes)).toBeLessThan(PAYLOAD_LIMIT / 4);
  }
}, 900_000);
