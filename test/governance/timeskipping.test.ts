/**
 * Governance on Temporal's time-skipping test server: days of durable timers in seconds of
 * wall time. The worker is the real one (real activities; PostgreSQL and scim2-server targets).
 *   - a 30-day effective date
 *   - a 72-hour approval deadline with reminders and escalation (and one that expires)
 *   - a scheduled amendment superseded by a later one for its sequence, and one cancelled
 *   - a gap in the sequence: reported, then invalid at the gap deadline; a gap filled in time
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApprovalRefusedError } from '../../src/client';
import { until } from '../harness/until';
import { newSecret, type Receiver, startReceiver } from '../notify/receiver';
import { baseline, changes, customer } from '../workflows/fixtures';
import { pgSnapshot } from '../workflows/stack';
import { startTimeStack, type TimeStack } from './timeskipping';

const HOUR = 3600_000;
const DAY = 24 * HOUR;

const POLICY = {
  approvers: ['dana', 'erin'],
  required: 1,
  deadline: '72h',
  onDeadline: 'escalate',
  escalation: { approvers: ['cio'], required: 1, deadline: '24h' },
  reminderEvery: '24h',
  ordering: { gapDeadline: '2d' },
};

let stack: TimeStack;
/** Approval notices (issue 12) go to a local receiver that verifies their signatures. */
const notifySecret = newSecret();
let receiver: Receiver;
beforeAll(async () => {
  receiver = await startReceiver(notifySecret);
  const file = join(mkdtempSync(join(tmpdir(), 'amendctl-ts-notify-')), 'notifications.yaml');
  writeFileSync(
    file,
    `endpoints:\n  - name: approvers\n    url: ${receiver.url}\n    secret: env:AMENDCTL_TEST_TS_NOTIFY_SECRET\n`,
  );
  stack = await startTimeStack('ts', POLICY, {
    AMENDCTL_NOTIFICATIONS: file,
    AMENDCTL_TEST_TS_NOTIFY_SECRET: notifySecret,
  });
});
afterAll(async () => {
  await stack?.stop();
  await receiver?.close();
  delete process.env.AMENDCTL_NOTIFICATIONS;
});

test('a 30-day effective date: scheduled, nothing changes, then it applies on the day', async () => {
  const c = customer('eff');
  await stack.client.submitAmendment(baseline(c, [['bob', 'member']]));
  expect((await stack.client.waitForResult(`${c.id}-001`)).status).toBe('completed');

  const effectiveAt = new Date((await stack.now()) + 30 * DAY).toISOString();
  const a = {
    ...changes(c, 2, [
      { op: 'add', path: 'namedUsers', value: { email: c.email('dave'), name: 'Dave', role: 'member' } },
    ]),
    effectiveAt,
  };
  await stack.client.submitAmendment(a);
  const scheduled = await stack.until(a.amendmentId, 'scheduled');
  expect(scheduled.reason).toBe(`takes effect at ${effectiveAt}`);

  await stack.skip(29 * DAY);
  expect((await stack.client.getStatus(a.amendmentId)).status).toBe('scheduled');
  expect(Object.keys(await pgSnapshot(c.domain))).toEqual([c.email('bob')]);

  await stack.skip(1 * DAY + HOUR);
  const v = await stack.client.waitForResult(a.amendmentId);
  expect(v.status).toBe('completed');
  expect(Date.parse(v.finishedAt!)).toBeGreaterThanOrEqual(Date.parse(effectiveAt));
  expect(Object.keys(await pgSnapshot(c.domain)).sort()).toEqual([c.email('bob'), c.email('dave')]);
});

test('a 72-hour approval deadline: reminders recorded, the submitter and strangers ignored with reasons, escalation to the second group', async () => {
  const c = customer('esc');
  const a = baseline(c, [['alice', 'admin']], { submittedBy: 'sam' });
  await stack.client.submitAmendment(a);
  let v = await stack.until(a.amendmentId, 'pending_approval');
  expect(v.approval).toMatchObject({ stage: 'primary', needed: 1, stillNeeded: 1, eligible: ['dana', 'erin'] });
  const requested = Date.parse(v.approval!.requestedAt!);
  expect(Date.parse(v.approval!.deadline!) - requested).toBe(72 * HOUR);

  // The submitter's own approval and a stranger's (signals) are recorded and ignored; status says why.
  await stack.client.approve(a.amendmentId, { by: 'sam' });
  await stack.client.approve(a.amendmentId, { by: 'mallory', comment: 'lgtm' });
  v = await stack.until(a.amendmentId, 'pending_approval', (x) => (x.approval?.ignored.length ?? 0) === 2);
  expect(v.approval!.ignored.map((i) => i.why)).toEqual([
    'sam submitted this amendment and may not approve it (separation of duties)',
    'mallory is not an approver for this amendment',
  ]);
  expect(v.approval!.approvals).toEqual([]);
  // The Update refuses at once, with the reason.
  await expect(stack.client.approveNow(a.amendmentId, { by: 'mallory' })).rejects.toThrow(
    new ApprovalRefusedError('mallory is not an approver for this amendment', 'ApproverNotAllowed'),
  );

  await stack.skip(71 * HOUR);
  v = await stack.until(a.amendmentId, 'pending_approval', (x) => x.approval!.reminders.length === 2);
  expect(v.approval!.stage).toBe('primary');
  // Timers fire at (or just after) their time: within a minute of 24 h and 48 h.
  expect(v.approval!.reminders.map((r) => Math.round((Date.parse(r.at) - requested) / 60_000))).toEqual([
    24 * 60,
    48 * 60,
  ]);
  expect(v.approval!.reminders[0]!.to).toEqual(['dana', 'erin']);

  await stack.skip(2 * HOUR);
  v = await stack.until(a.amendmentId, 'pending_approval', (x) => x.approval!.stage === 'escalated');
  expect(v.approval).toMatchObject({ eligible: ['cio'], needed: 1, stillNeeded: 1 });
  expect(Math.round((Date.parse(v.approval!.escalatedAt!) - requested) / 60_000)).toBe(72 * 60);
  expect(Date.parse(v.approval!.deadline!) - requested).toBe(96 * HOUR); // the escalation's 24 h from the planned deadline
  expect(v.reason).toMatch(/waiting for 1 more approval \(escalated\) from cio by /);
  await expect(stack.client.approveNow(a.amendmentId, { by: 'dana' })).rejects.toThrow(
    /dana is not in the escalation approver group/,
  );

  const r = await stack.client.approveNow(a.amendmentId, { by: 'cio', comment: 'approved after escalation' });
  expect(r).toMatchObject({ approved: true, stillNeeded: 0 });
  v = await stack.client.waitForResult(a.amendmentId);
  expect(v.status).toBe('completed');
  expect(v.approval!.approvals).toEqual([
    expect.objectContaining({ by: 'cio', comment: 'approved after escalation', stage: 'escalated' }),
  ]);
  expect(await pgSnapshot(c.domain)).toEqual({ [c.email('alice')]: { login: true, memberOf: ['app_admin'] } });

  // The reminders and the escalation are in the workflow history (memo changes) for the audit.
  const history = await stack.client.handle(a.amendmentId).fetchHistory();
  const memoKeys = (history.events ?? []).flatMap((e) =>
    Object.keys(e.workflowPropertiesModifiedEventAttributes?.upsertedMemo?.fields ?? {}),
  );
  expect(memoKeys.filter((k) => k === 'approvalReminder')).toHaveLength(2);
  expect(memoKeys.filter((k) => k === 'approvalEscalated')).toHaveLength(1);

  // And each was a signed notice to the configured endpoint: requested, two reminders, the escalation (to cio), the decision.
  const ids = [1, 2]
    .map((n) => `${a.amendmentId}:reminded:${n}`)
    .concat([`${a.amendmentId}:requested:1`, `${a.amendmentId}:escalated:1`, `${a.amendmentId}:decided:1`]);
  const notices = await until('every notice delivered', async () => {
    const got = receiver.deliveries.filter((d) => String(d.headers['webhook-id']).startsWith(`${a.amendmentId}:`));
    return ids.every((id) => got.some((d) => d.headers['webhook-id'] === id)) ? got : undefined;
  });
  expect(notices.every((d) => d.verified && d.hmacOk)).toBe(true);
  expect(notices.map((d) => String(d.headers['webhook-id'])).sort()).toEqual([...ids].sort());
  const escalated = JSON.stringify(
    notices.find((d) => d.headers['webhook-id'] === `${a.amendmentId}:escalated:1`)!.json,
  );
  expect(escalated).toContain('cio');
});

test('when the escalation deadline passes too, the amendment is rejected and nothing changes', async () => {
  const c = customer('exp');
  const a = baseline(c, [['alice', 'admin']], { submittedBy: 'sam' });
  await stack.client.submitAmendment(a);
  await stack.until(a.amendmentId, 'pending_approval');
  await stack.skip(72 * HOUR + 24 * HOUR + HOUR);
  const v = await stack.client.waitForResult(a.amendmentId);
  expect(v.status).toBe('rejected');
  expect(v.reason).toMatch(/^no decision by the escalation deadline .*: rejected by the approval policy/);
  expect(v.approval!.expired).toBe(true);
  expect(await pgSnapshot(c.domain)).toEqual({});
});

test('a scheduled amendment is superseded by a later one for its sequence; another is cancelled', async () => {
  const c = customer('sup');
  await stack.client.submitAmendment(baseline(c, [['bob', 'member']]));
  expect((await stack.client.waitForResult(`${c.id}-001`)).status).toBe('completed');
  const t = await stack.now();

  const first = {
    ...changes(
      c,
      2,
      [{ op: 'add', path: 'namedUsers', value: { email: c.email('dave'), name: 'Dave', role: 'member' } }],
      { amendmentId: `${c.id}-002a` },
    ),
    effectiveAt: new Date(t + 30 * DAY).toISOString(),
  };
  await stack.client.submitAmendment(first);
  await stack.until(first.amendmentId, 'scheduled');
  const second = {
    ...changes(
      c,
      2,
      [{ op: 'add', path: 'namedUsers', value: { email: c.email('erin'), name: 'Erin', role: 'viewer' } }],
      { amendmentId: `${c.id}-002b` },
    ),
    effectiveAt: new Date(t + 10 * DAY).toISOString(),
  };
  await stack.client.submitAmendment(second);

  const gone = await stack.client.waitForResult(first.amendmentId);
  expect(gone.status).toBe('rejected');
  expect(gone.reason).toMatch(new RegExp(`superseded by amendment ${second.amendmentId} before it took effect`));
  expect(gone.cancellation).toMatchObject({ kind: 'superseded', by: second.amendmentId });

  const third = {
    ...changes(c, 3, [{ op: 'set', path: 'seats', value: 20 }]),
    effectiveAt: new Date(t + 20 * DAY).toISOString(),
  };
  await stack.client.submitAmendment(third);
  await stack.until(third.amendmentId, 'scheduled');
  await stack.client.cancel(third.amendmentId, { by: 'ops-olga', reason: 'deal renegotiated' });
  const cancelled = await stack.client.waitForResult(third.amendmentId);
  expect(cancelled.status).toBe('rejected');
  expect(cancelled.reason).toBe('cancelled by ops-olga before it took effect: deal renegotiated');

  await stack.skip(10 * DAY + HOUR);
  expect((await stack.client.waitForResult(second.amendmentId)).status).toBe('completed');
  expect(Object.keys(await pgSnapshot(c.domain)).sort()).toEqual([c.email('bob'), c.email('erin')]);
  const { view } = await stack.client.getContract(c.contractId);
  expect(view).toMatchObject({ appliedSequence: 2, lastAmendmentId: second.amendmentId, scheduled: [], waiting: [] });
});

test('a gap in the sequence is reported by number, and the waiting amendment ends invalid at the gap deadline', async () => {
  const c = customer('gap');
  await stack.client.submitAmendment(baseline(c, [['bob', 'member']]));
  expect((await stack.client.waitForResult(`${c.id}-001`)).status).toBe('completed');

  const fourth = changes(c, 4, [{ op: 'set', path: 'seats', value: 12 }]);
  await stack.client.submitAmendment(fourth);
  let v = await stack.until(fourth.amendmentId, 'queued', (x) => (x.queue?.missing.length ?? 0) > 0);
  expect(v.queue!.missing).toEqual([2, 3]);
  expect(v.reason).toMatch(
    new RegExp(
      `^sequence 2, 3 of contract ${c.contractId} has not arrived \\(the contract is at sequence 1\\); this amendment ends invalid at `,
    ),
  );

  // Sequence 2 arrives and applies; 3 is still missing, and the gap clock keeps running.
  await stack.client.submitAmendment(changes(c, 2, [{ op: 'set', path: 'seats', value: 11 }]));
  expect((await stack.client.waitForResult(`${c.id}-002`)).status).toBe('completed');
  v = await stack.until(fourth.amendmentId, 'queued', (x) => x.queue?.missing.join() === '3');
  expect(v.reason).toMatch(/^sequence 3 of contract .* has not arrived \(the contract is at sequence 2\)/);

  await stack.skip(2 * DAY + HOUR);
  v = await stack.client.waitForResult(fourth.amendmentId);
  expect(v.status).toBe('invalid');
  expect(v.reason).toMatch(
    /^sequence 3 of contract .* has not arrived .* by the gap deadline .*; amendment .*-004 \(sequence 4\) cannot apply without it/,
  );
  const { view } = await stack.client.getContract(c.contractId);
  expect(view).toMatchObject({ appliedSequence: 2, waiting: [] });
});

test('a gap filled before its deadline: the early amendment applies after its predecessor', async () => {
  const c = customer('fill');
  const second = changes(c, 2, [
    { op: 'add', path: 'namedUsers', value: { email: c.email('dave'), name: 'Dave', role: 'member' } },
  ]);
  await stack.client.submitAmendment(second);
  await stack.until(second.amendmentId, 'queued', (x) => x.queue?.missing.join() === '1');
  await stack.skip(1 * DAY);
  expect((await stack.client.getStatus(second.amendmentId)).status).toBe('queued');
  await stack.client.submitAmendment(baseline(c, [['bob', 'member']]));
  expect((await stack.client.waitForResult(second.amendmentId)).status).toBe('completed');
  expect(Object.keys(await pgSnapshot(c.domain)).sort()).toEqual([c.email('bob'), c.email('dave')]);
});
