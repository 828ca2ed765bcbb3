/**
 * The mass-change guard on the real dev server, PostgreSQL and scim2-server: suspending a
 * 12-user contract (the reference rules need no approval for a suspension) waits for approval,
 * the reason names the numbers, nothing is deactivated meanwhile; approved, it applies.
 */
import { baseline, changes, customer } from '../workflows/fixtures';
import { pgSnapshot, startStack, type Stack } from '../workflows/stack';
import { until } from '../harness/until';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack('guard');
});
afterAll(async () => {
  await stack?.stop();
});

test('suspending 12 named users waits for approval, naming the numbers; approved, every account is deactivated', async () => {
  const c = customer('guard');
  const users = Array.from({ length: 12 }, (_, i): [string, 'member'] => [`m${String(i).padStart(2, '0')}`, 'member']);
  const first = baseline(c, users, { seats: 20 });
  await stack.client.submitAmendment(first);
  expect((await stack.client.waitForResult(first.amendmentId)).status).toBe('completed');

  const suspend = changes(c, 2, [{ op: 'set', path: 'status', value: 'suspended' }]);
  await stack.client.submitAmendment(suspend);
  const v = await until(
    'pending',
    () => stack.client.getStatus(suspend.amendmentId).then((x) => (x.status === 'pending_approval' ? x : undefined)),
    30_000,
  );
  expect(v.approval?.reasons).toEqual([
    {
      ruleId: 'mass-change-guard',
      message: expect.stringMatching(/^deactivates 12 of the contract's 12 accounts \(100%\)/),
    },
  ]);
  expect(Object.values(await pgSnapshot(c.domain)).map((r) => r.login)).toEqual(Array(12).fill(true)); // nothing deactivated yet

  await stack.client.approve(suspend.amendmentId, { by: 'dana', comment: 'the customer asked for it' });
  expect((await stack.client.waitForResult(suspend.amendmentId)).status).toBe('completed');
  const after = Object.values(await pgSnapshot(c.domain));
  expect(after).toHaveLength(12);
  expect(after.filter((r) => r.login)).toEqual([]);
}, 120_000);

test('terminating a 100-user contract stays pending approval under the guard, both numbers in the reason; rejected, nothing is deactivated', async () => {
  const c = customer('guard100');
  const users = Array.from({ length: 100 }, (_, i): [string, 'member'] => [`u${String(i).padStart(3, '0')}`, 'member']);
  const first = baseline(c, users, { seats: 100 });
  await stack.client.submitAmendment(first);
  expect((await stack.client.waitForResult(first.amendmentId)).status).toBe('completed');

  const terminate = changes(c, 2, [{ op: 'set', path: 'status', value: 'terminated' }]);
  await stack.client.submitAmendment(terminate);
  const v = await until(
    'pending',
    () => stack.client.getStatus(terminate.amendmentId).then((x) => (x.status === 'pending_approval' ? x : undefined)),
    60_000,
  );
  const guard = v.approval!.reasons.find((r) => r.ruleId === 'mass-change-guard');
  expect(guard?.message).toMatch(/^deactivates 100 of the contract's 100 accounts \(100%\)/);
  expect(v.reason).toMatch(/^waiting for 1 more approval/);

  await stack.client.reject(terminate.amendmentId, { by: 'dana', reason: 'not before the renewal call' });
  expect((await stack.client.waitForResult(terminate.amendmentId)).status).toBe('rejected');
  const after = Object.values(await pgSnapshot(c.domain));
  expect(after).toHaveLength(100);
  expect(after.every((r) => r.login)).toBe(true);
}, 240_000);
