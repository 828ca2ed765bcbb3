/** The approval state machine (src/workflows/approval.ts) and the approval policy file (src/worker/config.ts): pure, no servers. */
import { ApprovalState, eligibleApprovers } from '../../src/workflows/approval';
import type { ApprovalPolicy } from '../../src/workflows/definitions';
import { governancePolicyFrom } from '../../src/worker/config';

const H = 3600_000;
const T0 = Date.parse('2026-03-01T09:00:00Z');
const at = (ms: number) => new Date(ms).toISOString();
const reasons = [{ ruleId: 'admin', message: 'grants admin' }];

function machine(policy: Partial<ApprovalPolicy>, submittedBy = 'sam'): ApprovalState {
  const s = new ApprovalState(
    { approvers: ['dana', 'erin', 'sam'], groups: {}, required: 1, separationOfDuties: true, ...policy },
    submittedBy,
    true,
    reasons,
  );
  s.start(T0);
  return s;
}

describe('who may approve', () => {
  test('named users, group references and every group when none is referenced', () => {
    expect(eligibleApprovers({ approvers: ['*'] })).toBe('*');
    expect(
      [
        ...(eligibleApprovers({
          approvers: ['dana', 'group:sec'],
          groups: { sec: ['sec1', 'sec2'], other: ['x'] },
        }) as Set<string>),
      ].sort(),
    ).toEqual(['dana', 'sec1', 'sec2']);
    expect([...(eligibleApprovers({ approvers: ['dana'], groups: { sec: ['sec1'] } }) as Set<string>)].sort()).toEqual([
      'dana',
      'sec1',
    ]);
  });

  test('the submitter never counts (separation of duties), and says why', () => {
    const s = machine({});
    expect(s.approve({ by: 'sam', at: at(T0) })).toBe(false);
    expect(s.approved).toBe(false);
    expect(s.view.ignored[0]!.why).toMatch(/sam submitted this amendment.*separation of duties/);
    expect(s.view.eligible).toEqual(['dana', 'erin']);
  });

  test('someone not allowed is recorded and ignored; a repeat does not count twice', () => {
    const s = machine({ required: 2 });
    expect(s.approve({ by: 'mallory', at: at(T0) })).toBe(false);
    expect(s.view.ignored.map((i) => i.why)).toEqual(['mallory is not an approver for this amendment']);
    expect(s.approve({ by: 'dana', at: at(T0) })).toBe(true);
    expect(s.approve({ by: 'dana', at: at(T0) })).toBe(false);
    expect(s.approved).toBe(false);
    expect(s.view.stillNeeded).toBe(1);
    expect(s.waitingFor()).toMatch(/^waiting for 1 more approval from erin$/);
  });

  test('N of M: two distinct approvers are needed', () => {
    const s = machine({ required: 2 });
    s.approve({ by: 'dana', at: at(T0) });
    s.approve({ by: 'erin', at: at(T0 + 1) });
    expect(s.approved).toBe(true);
    expect(s.view.stillNeeded).toBe(0);
  });

  test('anyone may reject if allowed to approve; the submitter may withdraw; a stranger may not', () => {
    const a = machine({});
    expect(a.reject({ by: 'mallory', at: at(T0), reason: 'no' })).toBe(false);
    expect(a.view.ignored[0]!.why).toMatch(/mallory is not an approver/);
    expect(a.reject({ by: 'sam', at: at(T0), reason: 'withdrawn' })).toBe(true);
    expect(a.rejected).toBe(true);
  });
});

describe('deadline, escalation and reminders (time as an argument)', () => {
  test('no deadline: nothing to wake for', () => {
    const s = machine({});
    expect(s.nextWakeMs()).toBeUndefined();
    expect(s.tick(T0 + 1000 * H)).toBeUndefined();
    expect(s.view.deadline).toBeUndefined();
  });

  test('reminders every 24 h until the 72 h deadline, then rejected (expired)', () => {
    const s = machine({ deadlineSeconds: 72 * 3600, reminderEverySeconds: 24 * 3600, onDeadline: 'reject' });
    expect(s.view.deadline).toBe(at(T0 + 72 * H));
    expect(s.nextWakeMs()).toBe(T0 + 24 * H);
    expect(s.tick(T0 + 23 * H)).toBeUndefined();
    expect(s.tick(T0 + 24 * H)).toMatchObject({
      kind: 'reminded',
      reminder: { at: at(T0 + 24 * H), stage: 'primary', to: ['dana', 'erin'] },
    });
    expect(s.nextWakeMs()).toBe(T0 + 48 * H);
    expect(s.tick(T0 + 48 * H)?.kind).toBe('reminded');
    expect(s.nextWakeMs()).toBe(T0 + 72 * H); // no reminder at the deadline itself
    expect(s.tick(T0 + 72 * H)).toEqual({ kind: 'expired', at: at(T0 + 72 * H) });
    expect(s.expired).toBe(true);
    expect(s.approved).toBe(false);
    expect(s.view.reminders).toHaveLength(2);
    // An approval after the deadline does not count.
    expect(s.approve({ by: 'dana', at: at(T0 + 73 * H) })).toBe(false);
    expect(s.view.ignored[0]!.why).toMatch(/deadline .* has passed/);
  });

  test('escalation: at the deadline the second group decides, with its own count and deadline', () => {
    const s = machine({
      required: 2,
      deadlineSeconds: 72 * 3600,
      onDeadline: 'escalate',
      escalation: {
        approvers: ['group:directors'],
        groups: { directors: ['dir1', 'dir2', 'sam'] },
        required: 1,
        deadlineSeconds: 24 * 3600,
      },
    });
    s.approve({ by: 'dana', at: at(T0 + H) }); // one of two, then silence
    expect(s.tick(T0 + 72 * H)).toEqual({ kind: 'escalated', at: at(T0 + 72 * H) });
    expect(s.stage).toBe('escalated');
    expect(s.view).toMatchObject({
      needed: 1,
      stillNeeded: 1,
      escalatedAt: at(T0 + 72 * H),
      deadline: at(T0 + 96 * H),
      eligible: ['dir1', 'dir2'],
    });
    expect(s.approved).toBe(false); // dana's first-stage approval does not decide the escalated stage
    expect(s.approve({ by: 'erin', at: at(T0 + 73 * H) })).toBe(false);
    expect(s.view.ignored.at(-1)!.why).toMatch(/not in the escalation approver group/);
    expect(s.approve({ by: 'sam', at: at(T0 + 73 * H) })).toBe(false); // still the submitter
    expect(s.approve({ by: 'dir2', at: at(T0 + 74 * H) })).toBe(true);
    expect(s.approved).toBe(true);
    expect(s.view.approvals.map((a) => [a.by, a.stage])).toEqual([
      ['dana', 'primary'],
      ['dir2', 'escalated'],
    ]);
  });

  test('escalation that also passes its deadline expires', () => {
    const s = machine({
      deadlineSeconds: 3600,
      onDeadline: 'escalate',
      escalation: { approvers: ['dir1'], required: 1, deadlineSeconds: 3600 },
    });
    expect(s.tick(T0 + H)?.kind).toBe('escalated');
    expect(s.tick(T0 + 2 * H)?.kind).toBe('expired');
    expect(s.expired).toBe(true);
  });
});

describe('the approval policy file', () => {
  test('durations, escalation and ordering are read; defaults fill the rest', () => {
    const p = governancePolicyFrom({
      approvers: ['group:security'],
      groups: { security: ['sec1', 'sec2'] },
      required: 2,
      deadline: '72h',
      onDeadline: 'escalate',
      escalation: { approvers: ['cio'], deadline: '1d' },
      reminderEvery: '24h',
      ordering: { gapDeadline: '7d' },
    });
    expect(p.approval).toEqual({
      approvers: ['group:security'],
      groups: { security: ['sec1', 'sec2'] },
      required: 2,
      separationOfDuties: true,
      onDeadline: 'escalate',
      deadlineSeconds: 72 * 3600,
      reminderEverySeconds: 24 * 3600,
      escalation: { approvers: ['cio'], groups: {}, required: 1, deadlineSeconds: 86400 },
    });
    expect(p.ordering).toEqual({ gapDeadlineSeconds: 7 * 86400 });
    expect(governancePolicyFrom({}).ordering.gapDeadlineSeconds).toBe(7 * 86400);
  });

  test('an inconsistent policy is refused with the field named', () => {
    expect(() => governancePolicyFrom({ onDeadline: 'escalate', deadline: '1h' })).toThrow(/escalation/);
    expect(() => governancePolicyFrom({ approvers: ['group:nope'] })).toThrow(/group:nope names no group/);
    expect(() => governancePolicyFrom({ deadline: '72 hours' })).toThrow(/duration/);
  });
});
