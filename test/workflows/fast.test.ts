/**
 * Fast workflow tests (issue 9, point 6): the real amendmentV4 and contractWorkflow on the run's
 * time-skipping test server, with stub activities (test/workflows/fast-stubs.ts): no PostgreSQL,
 * no targets. Queue, gap, approval, cancel, compensation, a 50,000-operation plan, each in well
 * under two seconds of wall time; the worker restart on the run's dev server (see there why).
 *
 *   AMENDCTL_TEST_SERVERS=timeskipping,temporal npx jest test/workflows/fast.test.ts
 */
import { proven } from '../harness/approvals';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure, type Payload } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import type { AmendmentInput } from '../../src/domain/amendment';
import {
  approveSignal,
  approveUpdate,
  type AmendmentView,
  cancelSignal,
  contractWorkflowId,
  KEEPER_AFTER_MS,
  keeperWorkflowId,
  rejectSignal,
} from '../../src/workflows/definitions';
import { type AmendmentHandle, type FastStack, gate, operationAt, startFastStack } from './fast-stubs';

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;
/** Deadlines these tests skip past (on this file's own time-skipping server, see fast-stubs.ts); what waits for no skip waits long (30 days). */
const GAP_DEADLINE_MINUTES = 10;
const APPROVAL_DEADLINE_MINUTES = 15;
/*
 * REPLAY_TIME (a bug reported with issue 9, not fixed here): amendmentV4 keeps times read from
 * workflow time right after a local activity (approval.requestedAt and the deadline after the
 * plan, amendment.ts approvalPhase; the gap's start can be too). When the SDK runs the code after
 * the activity in the next workflow task, the first execution reads that task's start time, and
 * a replay the activity's completion time from its marker: the value moves back by a few
 * milliseconds whenever the workflow is replayed. The tests below compare those times loosely.
 */

let stack: FastStack;
beforeAll(async () => {
  stack = await startFastStack('fast');
});
afterEach(async () => {
  await stack?.cleanup();
});
afterAll(async () => {
  await stack?.stop();
});

function amendment(
  contractId: string,
  sequence: number,
  opts: { id?: string; submittedBy?: string; effectiveAt?: string } = {},
): AmendmentInput {
  return {
    amendmentId: opts.id ?? `${contractId}-${String(sequence).padStart(3, '0')}`,
    contractId,
    sequence,
    submittedBy: opts.submittedBy ?? 'contracts-system',
    changes: [{ op: 'set', path: 'seats', value: 10 * sequence }],
    ...(opts.effectiveAt ? { effectiveAt: opts.effectiveAt } : {}),
  };
}

/** The workflow's result once it has closed (time does not skip meanwhile), or a failure naming what did not finish. */
function result(h: AmendmentHandle, timeoutMs?: number, on: FastStack = stack): Promise<AmendmentView> {
  return on.result(h.workflowId.replace(/^amendment-/, ''), timeoutMs);
}

async function eventually(what: string, ok: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`${what}: not so after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function untilTrue(what: string, ok: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`${what}: not so after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const { EventType } = temporal.api.enums.v1;
const WORKFLOW_TASK_EVENTS = new Set<number>([
  EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
  EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
  EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
]);

const APPROVAL_REASON = [{ ruleId: 'admin-grant', message: 'the amendment grants admin access' }];

test('happy path: 15 operations on 2 targets complete, counted per target, with 19 history events of its own in 4 to 6 workflow tasks', async () => {
  const c = stack.contractId('happy');
  const a = amendment(c, 1);
  const h = await stack.submit(a, { operations: { idp: 8, warehouse: 7 }, unchanged: (i) => i % 5 === 4 });
  const v = await result(h);

  expect(v.status).toBe('completed');
  // Operations 4 (idp), 9 and 14 (warehouse) were already so.
  expect(v.operationCounts).toEqual({ idp: { applied: 7, unchanged: 1 }, warehouse: { applied: 5, unchanged: 2 } });
  expect(v.reason).toBe('12 changed, 3 already so');
  expect(v.operationsTotal).toBe(15);
  expect(v.operations.map((o) => [o.target, o.outcome])).toEqual(
    Array.from({ length: 15 }, (_, i) => [i < 8 ? 'idp' : 'warehouse', i % 5 === 4 ? 'unchanged' : 'applied']),
  );
  // One batch per target, on that target's own task queue, with the default retry budget.
  expect(
    stack.stubs
      .applies(a.amendmentId)
      .map((b) => [b.target, b.batch, b.of, b.from, b.to, b.taskQueue, b.attempt, b.budgetSeconds])
      .sort(),
  ).toEqual([
    ['idp', 1, 1, 0, 8, `${stack.taskQueue}.target.idp`, 1, 300],
    ['warehouse', 1, 1, 8, 15, `${stack.taskQueue}.target.warehouse`, 1, 300],
  ]);
  expect(stack.stubs.compensations(a.amendmentId)).toEqual([]);
  // The audit record got the final view, once.
  expect(stack.stubs.calls.audit.filter((x) => x.view.amendmentId === a.amendmentId).map((x) => x.view)).toEqual([v]);
  // The contract took the new state and the turn is free.
  const contract = await stack.untilContract(
    c,
    'applied sequence 1, turn released',
    (x) => x.appliedSequence === 1 && x.holder === undefined,
  );
  expect(contract.lastAmendmentId).toBe(a.amendmentId);

  // The history: 19 events of the amendment's own (start, three local activities' markers, status
  // upserts, the keeper's timer started and cancelled, the batches, signals, completion), carried
  // by one workflow task per wake-up. How many wake-ups depends on timing: both batches completing
  // while one task runs make one, or each its own. So 4 to 6 tasks: 31 to 37 events.
  const events = (await h.fetchHistory()).events ?? [];
  const own = events.filter((e) => !WORKFLOW_TASK_EVENTS.has(Number(e.eventType)));
  expect(own.length).toBe(19);
  // Released well before KEEPER_AFTER_MS: no turn keeper (a workflow of its own) was started.
  const types = own.map((e) => Number(e.eventType));
  expect(types).not.toContain(EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED);
  expect(types.filter((t) => t === EventType.EVENT_TYPE_TIMER_CANCELED)).toHaveLength(1);
  const tasks = (events.length - own.length) / 3;
  expect(tasks).toBeGreaterThanOrEqual(4);
  expect(tasks).toBeLessThanOrEqual(6);
});

test('a plan with violations ends invalid, changes nothing and releases the contract', async () => {
  const c = stack.contractId('violation');
  const a = amendment(c, 1);
  const violations = [
    { ruleId: 'seat-limit', message: 'seats exceed the tier limit' },
    { ruleId: 'region', message: 'region eu has no warehouse' },
  ];
  const v = await result(await stack.submit(a, { violations }));
  expect(v.status).toBe('invalid');
  expect(v.reason).toBe('seats exceed the tier limit; region eu has no warehouse');
  expect(v.violations).toEqual(violations);
  expect(v.operationsTotal).toBe(0);
  expect(stack.stubs.applies(a.amendmentId)).toEqual([]);
  await stack.untilContract(c, 'released, nothing applied', (x) => x.holder === undefined && x.appliedSequence === 0);
});

test('a batch that throws a retryable error once is retried by Temporal and completes', async () => {
  const c = stack.contractId('flaky');
  const a = amendment(c, 1);
  const h = await stack.submit(a, { operations: { idp: 4, warehouse: 4 }, flakyOnce: ['warehouse#1'] });
  const v = await result(h);
  expect(v.status).toBe('completed');
  expect(v.operationCounts).toEqual({ idp: { applied: 4 }, warehouse: { applied: 4 } });
  expect(
    stack.stubs
      .applies(a.amendmentId)
      .filter((b) => b.target === 'warehouse')
      .map((b) => b.attempt),
  ).toEqual([1, 2]);
  expect(
    stack.stubs
      .applies(a.amendmentId)
      .filter((b) => b.target === 'idp')
      .map((b) => b.attempt),
  ).toEqual([1]);
});

test('queue: sequence 2 submitted before 1 waits queued, naming sequence 1, and completes after 1', async () => {
  const c = stack.contractId('queue');
  const first = amendment(c, 1);
  const second = amendment(c, 2);
  const hold = gate();

  const h2 = await stack.submit(second, {});
  let v2 = await stack.until(
    second.amendmentId,
    'queued with sequence 1 missing',
    (v) => v.status === 'queued' && v.queue?.missing[0] === 1,
  );
  expect(v2.queue).toMatchObject({ appliedSequence: 0, missing: [1] });
  expect(v2.reason).toMatch(
    new RegExp(
      `^sequence 1 of contract ${c} has not arrived \\(the contract is at sequence 0\\); this amendment ends invalid at `,
    ),
  );

  // Sequence 1 arrives and takes the turn (its idp batch held at a gate): 2 now waits for it, by name.
  const h1 = await stack.submit(first, { gates: { 'idp#1': hold } });
  v2 = await stack.until(
    second.amendmentId,
    'waiting for the turn of sequence 1',
    (v) => v.status === 'queued' && v.queue?.holder?.amendmentId === first.amendmentId,
  );
  expect(v2.queue).toEqual({
    appliedSequence: 0,
    missing: [],
    holder: { amendmentId: first.amendmentId, sequence: 1, since: expect.any(String) },
  });
  expect(v2.reason).toBe(
    `waiting for the turn of contract ${c} (at sequence 0): amendment ${first.amendmentId} (sequence 1) holds it since ${v2.queue!.holder!.since}`,
  );
  await untilTrue('sequence 1 is applying', () => hold.reached);
  expect((await stack.status(second.amendmentId)).status).toBe('queued');
  expect(stack.stubs.calls.plan.filter((p) => p.amendmentId === second.amendmentId)).toEqual([]);

  hold.open();
  const v1 = await result(h1);
  expect(v1.status).toBe('completed');
  const v2done = await result(h2);
  expect(v2done.status).toBe('completed');
  // 2 was planned on the contract as 1 left it, after 1 was recorded.
  const plan2 = stack.stubs.calls.plan.find((p) => p.amendmentId === second.amendmentId)!;
  expect(plan2.applied).toMatchObject({ sequence: 1, amendmentId: first.amendmentId, contract: { seats: 10 } });
  expect(plan2.seq).toBeGreaterThan(stack.stubs.calls.audit.find((x) => x.view.amendmentId === first.amendmentId)!.seq);
  await stack.untilContract(
    c,
    'at sequence 2',
    (x) => x.appliedSequence === 2 && x.lastAmendmentId === second.amendmentId && x.holder === undefined,
  );
});

test('gap: sequence 3 with 2 missing names the gap, ends invalid at the gap deadline, and the contract then takes 2', async () => {
  const c = stack.contractId('gap');
  const one = amendment(c, 1);
  const two = amendment(c, 2);
  const three = amendment(c, 3);
  expect((await result(await stack.submit(one, {}))).status).toBe('completed');

  await stack.submit(three, { gapDeadlineSeconds: GAP_DEADLINE_MINUTES * 60 });
  let v3 = await stack.until(
    three.amendmentId,
    'queued with sequence 2 missing',
    (v) => v.status === 'queued' && v.queue?.missing[0] === 2,
  );
  const deadline = v3.queue!.gapDeadline!;
  expect(v3.queue).toEqual({ appliedSequence: 1, missing: [2], gapDeadline: deadline });
  expect(v3.reason).toBe(
    `sequence 2 of contract ${c} has not arrived (the contract is at sequence 1); this amendment ends invalid at ${deadline} unless it does`,
  );
  expect(Math.abs(Date.parse(deadline) - (await stack.now()) - GAP_DEADLINE_MINUTES * MINUTE)).toBeLessThan(MINUTE / 2);

  // A minute before the deadline it still waits; after it, it is invalid and out of the contract's line.
  await stack.skip(Date.parse(deadline) - (await stack.now()) - MINUTE);
  expect((await stack.status(three.amendmentId)).status).toBe('queued');
  await stack.skip(2 * MINUTE);
  v3 = await stack.final(three.amendmentId);
  expect(v3.status).toBe('invalid');
  expect(v3.reason).toBe(
    `sequence 2 of contract ${c} has not arrived (the contract is at sequence 1) by the gap deadline ${v3.queue!.gapDeadline}; amendment ${three.amendmentId} (sequence 3) cannot apply without it`,
  );
  // The same deadline, but for a few milliseconds: a replay can move it (REPLAY_TIME below).
  expect(Math.abs(Date.parse(v3.queue!.gapDeadline!) - Date.parse(deadline))).toBeLessThan(1000);
  expect(stack.stubs.calls.plan.filter((p) => p.amendmentId === three.amendmentId)).toEqual([]);
  await stack.untilContract(c, 'sequence 3 withdrawn', (x) => x.waiting.length === 0);

  expect((await result(await stack.submit(two, {}))).status).toBe('completed');
  await stack.untilContract(
    c,
    'at sequence 2',
    (x) => x.appliedSequence === 2 && x.lastAmendmentId === two.amendmentId && x.holder === undefined,
  );
});

describe('the late turn keeper (amendmentV4)', () => {
  const markers = (events: temporal.api.history.v1.IHistoryEvent[]): number =>
    events.filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_local_activity').length;

  test(`a holder pending approval starts its keeper ${KEEPER_AFTER_MS} ms into its turn; the contract stops checking once it runs`, async () => {
    const c = stack.contractId('keeper');
    const a = amendment(c, 1, { submittedBy: 'sam' });
    const h = await stack.submit(a, { approval: APPROVAL_REASON });
    await stack.until(a.amendmentId, 'pending approval', (x) => x.status === 'pending_approval');
    const keeper = stack.client.workflow.getHandle(keeperWorkflowId(h.workflowId));
    await eventually('the keeper runs', () =>
      keeper.describe().then(
        (d) => d.status.name === 'RUNNING',
        () => false,
      ),
    );
    // The keeper's timer fired, then the keeper started.
    const own = ((await h.fetchHistory()).events ?? []).map((e) => Number(e.eventType));
    const fired = own.indexOf(EventType.EVENT_TYPE_TIMER_FIRED);
    expect(fired).toBeGreaterThan(0);
    expect(own.indexOf(EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED)).toBeGreaterThan(fired);
    // The contract checked on it HOLDER_CHECK_MS into its turn (a local activity) and found the keeper.
    const contract = stack.client.workflow.getHandle(contractWorkflowId(c));
    await eventually('the contract checked on its holder', async () =>
      markers((await contract.fetchHistory()).events ?? []) > 0 ? true : false,
    );
    await h.signal(approveSignal, await proven(h, 'approve', { by: 'dana' }));
    expect((await result(h)).status).toBe('completed');
    await stack.untilContract(c, 'applied, turn released', (x) => x.appliedSequence === 1 && x.holder === undefined);
    // One check and its one timer: none after the keeper was found.
    const events = (await contract.fetchHistory()).events ?? [];
    expect(markers(events)).toBe(1);
    expect(events.filter((e) => Number(e.eventType) === EventType.EVENT_TYPE_TIMER_STARTED)).toHaveLength(1);
    expect(events.filter((e) => Number(e.eventType) === EventType.EVENT_TYPE_TIMER_FIRED)).toHaveLength(1);
  });

  test('a keeper that cannot start (its id still taken) is tried again while the turn is held, and starts once the id is free', async () => {
    const c = stack.contractId('squat');
    const a = amendment(c, 1, { submittedBy: 'sam' });
    const keeperId = keeperWorkflowId(`amendment-${a.amendmentId}`);
    // A workflow already runs under the keeper's id (as a reset's previous run's keeper may, for a moment).
    const squatter = await stack.client.workflow.start('turnKeeper', {
      taskQueue: stack.taskQueue,
      workflowId: keeperId,
      args: [{ contractId: 'elsewhere', amendmentId: 'elsewhere', workflowId: 'elsewhere' }],
    });
    const h = await stack.submit(a, { approval: APPROVAL_REASON });
    await stack.until(a.amendmentId, 'pending approval', (x) => x.status === 'pending_approval');
    // Its first try failed (a failed child start in its history); the id still belongs to the squatter.
    await eventually('a failed keeper start', async () =>
      ((await h.fetchHistory()).events ?? []).some(
        (e) => Number(e.eventType) === EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_FAILED,
      ),
    );
    expect((await squatter.describe()).parentExecution).toBeUndefined();
    await squatter.terminate('free the id');
    const run = (await h.describe()).runId;
    await eventually('its own keeper runs', () =>
      stack.client.workflow
        .getHandle(keeperId)
        .describe()
        .then(
          (d) => d.status.name === 'RUNNING' && d.parentExecution?.runId === run,
          () => false,
        ),
    );
    await h.signal(approveSignal, await proven(h, 'approve', { by: 'dana' }));
    expect((await result(h)).status).toBe('completed');
    await stack.untilContract(c, 'applied, turn released', (x) => x.appliedSequence === 1 && x.holder === undefined);
  });
});

describe('approval', () => {
  test("pending until someone other than the submitter approves; the submitter's approval is ignored; the Update refuses a stranger", async () => {
    const c = stack.contractId('approve');
    const a = amendment(c, 1, { submittedBy: 'sam' });
    const h = await stack.submit(a, {
      approval: APPROVAL_REASON,
      approvalPolicy: { approvers: ['sam', 'dana', 'erin'] },
    });
    let v = await stack.until(a.amendmentId, 'pending approval', (x) => x.status === 'pending_approval');
    expect(v.approval).toMatchObject({
      required: true,
      reasons: APPROVAL_REASON,
      needed: 1,
      stillNeeded: 1,
      eligible: ['dana', 'erin'],
      approvals: [],
    });
    expect(v.reason).toBe('waiting for 1 more approval from dana, erin');

    await h.signal(approveSignal, await proven(h, 'approve', { by: 'sam' }));
    v = await stack.until(
      a.amendmentId,
      "the submitter's approval recorded as ignored",
      (x) => (x.approval?.ignored.length ?? 0) === 1,
    );
    expect(v.status).toBe('pending_approval');
    expect(v.approval!.approvals).toEqual([]);
    expect(v.approval!.ignored[0]).toMatchObject({
      by: 'sam',
      why: 'sam submitted this amendment and may not approve it (separation of duties)',
    });

    // The Update's validator refuses a stranger (and the submitter) with the reason; nothing is recorded.
    const seen = (await h.fetchHistory()).events!.length;
    for (const [by, message] of [
      ['mallory', 'mallory is not an approver for this amendment'],
      ['sam', 'sam submitted this amendment and may not approve it (separation of duties)'],
    ] as const) {
      const err: unknown = await h.executeUpdate(approveUpdate, { args: [{ by }] }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(WorkflowUpdateFailedError);
      const cause = (err as WorkflowUpdateFailedError).cause;
      expect(cause).toBeInstanceOf(ApplicationFailure);
      expect(cause).toMatchObject({ type: 'ApproverNotAllowed', message });
    }
    // (The real server writes nothing for a refused Update; the test server has no speculative workflow tasks and writes an empty one.)
    const added = (await h.fetchHistory()).events!.slice(seen);
    expect(
      added.filter(
        (e) =>
          !e.workflowTaskScheduledEventAttributes &&
          !e.workflowTaskStartedEventAttributes &&
          !e.workflowTaskCompletedEventAttributes,
      ),
    ).toEqual([]);
    v = await stack.status(a.amendmentId);
    expect(v.status).toBe('pending_approval');
    expect(v.approval!.approvals).toEqual([]);
    expect(stack.stubs.applies(a.amendmentId)).toEqual([]);

    await h.signal(approveSignal, await proven(h, 'approve', { by: 'dana', comment: 'checked with the customer' }));
    v = await result(h);
    expect(v.status).toBe('completed');
    expect(v.approval!.approvals).toEqual([
      {
        by: 'dana',
        comment: 'checked with the customer',
        at: expect.any(String),
        stage: 'primary',
        proof: expect.objectContaining({ via: 'service', keyId: 'test-harness' }),
      },
    ]);
    expect(stack.stubs.applies(a.amendmentId)).toHaveLength(2);
  });

  test('reject ends it rejected and releases the contract: the next amendment proceeds', async () => {
    const c = stack.contractId('reject');
    const a = amendment(c, 1, { submittedBy: 'sam' });
    const next = amendment(c, 1, { id: `${c}-001-again` });
    const ha = await stack.submit(a, { approval: APPROVAL_REASON });
    await stack.until(a.amendmentId, 'pending approval', (x) => x.status === 'pending_approval');
    const hn = await stack.submit(next, {});
    await stack.untilContract(
      c,
      `${a.amendmentId} holds the turn, ${next.amendmentId} waits`,
      (x) => x.holder === a.amendmentId && x.waiting.some((w) => w.amendmentId === next.amendmentId),
    );
    expect((await stack.status(next.amendmentId)).status).toBe('queued');

    await ha.signal(rejectSignal, await proven(ha, 'reject', { by: 'dana', reason: 'not this quarter' }));
    const va = await result(ha);
    expect(va.status).toBe('rejected');
    expect(va.reason).toBe('rejected by dana: not this quarter');
    expect(va.approval!.rejection).toMatchObject({ by: 'dana', reason: 'not this quarter' });
    expect(stack.stubs.applies(a.amendmentId)).toEqual([]);

    const vn = await result(hn);
    expect(vn.status).toBe('completed');
    await stack.untilContract(
      c,
      `applied by ${next.amendmentId}`,
      (x) => x.appliedSequence === 1 && x.lastAmendmentId === next.amendmentId && x.holder === undefined,
    );
  });

  test('an approval deadline passed with no decision (time skipped) ends it rejected and releases the contract', async () => {
    const c = stack.contractId('deadline');
    const a = amendment(c, 1, { submittedBy: 'sam' });
    await stack.submit(a, {
      approval: APPROVAL_REASON,
      approvalPolicy: { approvers: ['dana'], deadlineSeconds: APPROVAL_DEADLINE_MINUTES * 60, onDeadline: 'reject' },
    });
    let v = await stack.until(a.amendmentId, 'pending approval', (x) => x.status === 'pending_approval');
    const deadline = v.approval!.deadline!;
    expect(Date.parse(deadline) - Date.parse(v.approval!.requestedAt!)).toBe(APPROVAL_DEADLINE_MINUTES * MINUTE);
    expect(v.reason).toBe(`waiting for 1 more approval from dana by ${deadline}`);

    await stack.skip(Date.parse(deadline) - (await stack.now()) - MINUTE);
    expect((await stack.status(a.amendmentId)).status).toBe('pending_approval');
    await stack.skip(2 * MINUTE);
    v = await stack.final(a.amendmentId);
    expect(v.status).toBe('rejected');
    expect(v.reason).toBe(
      `no decision by the approval deadline ${v.approval!.deadline}: rejected by the approval policy (0 approvals of 1 in time)`,
    );
    // The same deadline, but for a few milliseconds: a replay can move it (REPLAY_TIME below).
    expect(Math.abs(Date.parse(v.approval!.deadline!) - Date.parse(deadline))).toBeLessThan(1000);
    expect(v.approval!.expired).toBe(true);
    expect(stack.stubs.applies(a.amendmentId)).toEqual([]);
    await stack.untilContract(
      c,
      'turn released, nothing applied',
      (x) => x.holder === undefined && x.appliedSequence === 0,
    );
  });
});

describe('cancel', () => {
  test('a scheduled amendment cancelled before its effective date ends rejected with the cancellation', async () => {
    const c = stack.contractId('cancel');
    const effectiveAt = new Date((await stack.now()) + 30 * DAY).toISOString();
    const a = amendment(c, 1, { effectiveAt });
    const h = await stack.submit(a, {});
    let v = await stack.until(a.amendmentId, 'scheduled', (x) => x.status === 'scheduled');
    expect(v.reason).toBe(`takes effect at ${effectiveAt}`);
    await stack.untilContract(c, 'registered as scheduled', (x) =>
      x.scheduled.some((s) => s.amendmentId === a.amendmentId),
    );

    await h.signal(cancelSignal, { by: 'ops', reason: 'the customer withdrew it' });
    v = await stack.final(a.amendmentId);
    expect(v.status).toBe('rejected');
    expect(v.reason).toBe('cancelled by ops before it took effect: the customer withdrew it');
    expect(v.cancellation).toEqual({
      kind: 'cancelled',
      by: 'ops',
      reason: 'the customer withdrew it',
      at: expect.any(String),
    });
    expect(Date.parse(v.finishedAt!)).toBeLessThan(Date.parse(effectiveAt));
    expect(stack.stubs.calls.plan.filter((p) => p.amendmentId === a.amendmentId)).toEqual([]);
    await stack.untilContract(
      c,
      'withdrawn',
      (x) => x.scheduled.length === 0 && x.waiting.length === 0 && x.holder === undefined,
    );
  });

  test('a later amendment for the same sequence supersedes a scheduled one', async () => {
    const c = stack.contractId('supersede');
    const effectiveAt = new Date((await stack.now()) + 30 * DAY).toISOString();
    const scheduled = amendment(c, 1, { effectiveAt });
    const later = amendment(c, 1, { id: `${c}-001-later` });
    await stack.submit(scheduled, {});
    await stack.until(scheduled.amendmentId, 'scheduled', (x) => x.status === 'scheduled');
    await stack.untilContract(c, 'registered as scheduled', (x) =>
      x.scheduled.some((s) => s.amendmentId === scheduled.amendmentId),
    );

    await stack.submit(later, {});
    const vs = await stack.final(scheduled.amendmentId);
    const why = `amendment ${later.amendmentId} arrived for sequence 1 of contract ${c} before ${scheduled.amendmentId} took effect`;
    expect(vs.status).toBe('rejected');
    expect(vs.reason).toBe(`superseded by amendment ${later.amendmentId} before it took effect: ${why}`);
    expect(vs.cancellation).toEqual({ kind: 'superseded', by: later.amendmentId, reason: why, at: expect.any(String) });
    expect(stack.stubs.calls.plan.filter((p) => p.amendmentId === scheduled.amendmentId)).toEqual([]);

    expect((await stack.final(later.amendmentId)).status).toBe('completed');
    await stack.untilContract(
      c,
      `applied by ${later.amendmentId}`,
      (x) => x.appliedSequence === 1 && x.lastAmendmentId === later.amendmentId && x.scheduled.length === 0,
    );
  });
});

describe('compensation', () => {
  test('a permanent failure in one batch: no further batch starts, every dispatched batch is compensated newest first per target, rolled_back', async () => {
    const c = stack.contractId('undo');
    const a = amendment(c, 1);
    const idp2 = gate();
    const wh2 = gate();
    // idp: operations 0-29 in batches of 10; warehouse: 30-59. Operation 45 (warehouse batch 2) fails for good.
    const h = await stack.submit(a, {
      operations: { idp: 30, warehouse: 30 },
      batchSize: 10,
      failAt: 45,
      unchanged: (i) => i === 3 || i === 33,
      gates: { 'idp#2': idp2, 'warehouse#2': wh2 },
    });
    // Both targets' second batches in flight; then the warehouse one fails, and only then does idp's finish.
    await untilTrue('both second batches started', () => idp2.reached && wh2.reached);
    wh2.open();
    const failing = await stack.until(a.amendmentId, 'the failure recorded', (x) => (x.failures?.length ?? 0) > 0);
    expect(failing.failures!.map((f) => [f.id, f.error?.type])).toEqual([
      [operationAt(a.amendmentId, 'warehouse', 45).id, 'TargetRejected'],
    ]);
    idp2.open();
    const v = await result(h);

    const failure = `warehouse: ensure account u45@${a.amendmentId.toLowerCase()}.test failed: warehouse refused u45@${a.amendmentId.toLowerCase()}.test (scripted)`;
    expect(v.status).toBe('rolled_back');
    expect(v.reason).toBe(`${failure}; every applied operation was compensated`);
    // Nothing started after the failure: each target's third batch was skipped.
    expect(
      stack.stubs
        .applies(a.amendmentId)
        .map((b) => `${b.target}#${b.batch}`)
        .sort(),
    ).toEqual(['idp#1', 'idp#2', 'warehouse#1', 'warehouse#2']);
    // Every dispatched batch compensated, per target newest first, one after the other.
    const undos = stack.stubs.compensations(a.amendmentId);
    expect(undos.filter((b) => b.target === 'idp').map((b) => b.batch)).toEqual([2, 1]);
    expect(undos.filter((b) => b.target === 'warehouse').map((b) => b.batch)).toEqual([2, 1]);
    expect(Math.min(...undos.map((b) => b.seq))).toBeGreaterThan(
      Math.max(...stack.stubs.applies(a.amendmentId).map((b) => b.seq)),
    );
    expect(v.operationCounts).toEqual({
      idp: { compensated: 19, unchanged: 1, skipped: 10 },
      warehouse: { compensated: 14, unchanged: 1, failed: 1, skipped: 14 },
    });
    const shown = (i: number): string => v.operations[i]!.outcome;
    expect([shown(0), shown(3), shown(15), shown(25), shown(40), shown(45), shown(46)]).toEqual([
      'compensated',
      'unchanged',
      'compensated',
      'skipped',
      'compensated',
      'failed',
      'skipped',
    ]);
    expect(v.leftForOperator).toBeUndefined();
    await stack.untilContract(c, 'released, nothing applied', (x) => x.holder === undefined && x.appliedSequence === 0);
  });

  test('a Temporal cancellation request while batches run: the running batch ends first, every dispatched batch is compensated, rolled_back, released', async () => {
    const c = stack.contractId('tcancel');
    const a = amendment(c, 1);
    const idp2 = gate();
    const h = await stack.submit(a, {
      operations: { idp: 20, warehouse: 10 },
      batchSize: 10,
      gates: { 'idp#2': idp2 },
    });
    await untilTrue('idp batch 2 running', () => idp2.reached);
    await h.cancel();
    // The workflow waits for the running batch to end (it stops at its next heartbeat in a real worker; here it is let go).
    expect((await stack.status(a.amendmentId)).status).toBe('running');
    idp2.open();
    const v = await result(h);
    expect(v.status).toBe('rolled_back');
    expect(v.reason).toBe(
      'cancelled by a Temporal cancellation request (the Web UI or temporal workflow cancel); every applied operation was compensated',
    );
    expect(v.cancellation).toEqual({
      kind: 'cancelled',
      by: 'Temporal',
      at: expect.any(String),
      reason: 'a Temporal cancellation request (the Web UI or temporal workflow cancel)',
    });
    expect(
      stack.stubs
        .applies(a.amendmentId)
        .map((b) => `${b.target}#${b.batch}`)
        .sort(),
    ).toEqual(['idp#1', 'idp#2', 'warehouse#1']);
    const undos = stack.stubs.compensations(a.amendmentId);
    expect(undos.filter((b) => b.target === 'idp').map((b) => b.batch)).toEqual([2, 1]);
    expect(undos.filter((b) => b.target === 'warehouse').map((b) => b.batch)).toEqual([1]);
    expect(stack.stubs.audited(a.amendmentId)?.status).toBe('rolled_back');
    await stack.untilContract(c, 'released, nothing applied', (x) => x.holder === undefined && x.appliedSequence === 0);
  });

  test('a compensation that fails ends it failed, naming what is left for an operator', async () => {
    const c = stack.contractId('undofail');
    const a = amendment(c, 1);
    // idp: 0-19 in two batches, operation 15 fails for good, the compensation of 12 fails; warehouse: 20-29, its compensation cannot run.
    const h = await stack.submit(a, {
      operations: { idp: 20, warehouse: 10 },
      batchSize: 10,
      failAt: 15,
      undoFailsAt: [12],
      undoThrows: ['warehouse#1'],
    });
    const v = await result(h);
    const subject = (i: number): string => `u${i}@${a.amendmentId.toLowerCase()}.test`;

    expect(v.status).toBe('failed');
    const left = [
      `idp: ensure account ${subject(12)} (the target refused the compensation (scripted))`,
      `warehouse: the compensation of batch 1 of 1 could not run (warehouse cannot compensate batch 1 (scripted)): check operations 20-29 with amendctl status --operations`,
    ];
    expect([...v.leftForOperator!].sort()).toEqual([...left].sort());
    expect(v.reason).toMatch(
      new RegExp(`^idp: ensure account ${subject(15).replace(/\./g, '\\.')} failed: .* and 2 compensations failed: `),
    );
    expect(v.operationCounts).toEqual({
      idp: { compensated: 14, compensation_failed: 1, failed: 1, skipped: 4 },
      warehouse: { applied: 10 },
    });
    expect(v.operations[12]).toMatchObject({
      outcome: 'compensation_failed',
      compensation: { outcome: 'failed', detail: 'the target refused the compensation (scripted)' },
    });
    expect(
      stack.stubs
        .compensations(a.amendmentId)
        .filter((b) => b.target === 'idp')
        .map((b) => b.batch),
    ).toEqual([2, 1]);
    await stack.untilContract(c, 'released, nothing applied', (x) => x.holder === undefined && x.appliedSequence === 0);
  });
});

/** Every payload in a history (inputs, results, markers, memo, search attributes, failures): the stored size and, decoded, the serialised size. */
async function payloadSizes(events: unknown[]): Promise<{ stored: number; decoded: number }> {
  const found: Payload[] = [];
  const walk = (x: unknown): void => {
    if (!x || typeof x !== 'object') return;
    if (x instanceof Uint8Array) return;
    const o = x as Record<string, unknown>;
    if (o.data instanceof Uint8Array && o.metadata && typeof o.metadata === 'object') {
      found.push(o as Payload);
      return;
    }
    for (const v of Object.values(o)) walk(v);
  };
  walk(events);
  const size = (p: Payload): number =>
    (p.data?.length ?? 0) + Object.values(p.metadata ?? {}).reduce((n, m) => n + (m?.length ?? 0), 0);
  const codec = stack.client.options.loadedDataConverter.payloadCodecs[0]!;
  const decoded = await codec.decode(found);
  return { stored: Math.max(0, ...found.map(size)), decoded: Math.max(0, ...decoded.map(size)) };
}

test('a 50,000-operation plan in 200 batches over 2 targets completes with a small view, a short history and small payloads', async () => {
  const c = stack.contractId('large');
  const a = amendment(c, 1);
  const h = await stack.submit(a, {
    operations: { idp: 25_000, warehouse: 25_000 },
    batchSize: 250,
    lanes: { idp: 4, warehouse: 4 },
  });
  const v = await result(h, 90_000);

  expect(v.status).toBe('completed');
  expect(v.operationsTotal).toBe(50_000);
  expect(v.operationCounts).toEqual({ idp: { applied: 25_000 }, warehouse: { applied: 25_000 } });
  const applies = stack.stubs.applies(a.amendmentId);
  expect(applies).toHaveLength(200);
  expect(new Set(applies.map((b) => `${b.target}#${b.batch}`)).size).toBe(200);
  expect(v.operations).toHaveLength(50);
  expect(JSON.stringify(v).length).toBeLessThan(64 * 1024);

  const events = (await h.fetchHistory()).events ?? [];
  expect(events.length).toBeLessThan(10_240);
  const sizes = await payloadSizes(events);
  expect(sizes.stored).toBeLessThan(2 * 1024 * 1024);
  expect(sizes.decoded).toBeLessThan(2 * 1024 * 1024);
});

describe('a workflow worker restarted mid-approval (on the dev server)', () => {
  // The time-skipping test server never lets go of a stopped worker's sticky queue (no sticky
  // timeout, no ShutdownWorker, no ResetStickyTaskQueue), so a workflow the first worker cached
  // would never reach the second one there; this test involves no timer.
  let dev: FastStack;
  beforeAll(async () => {
    dev = await startFastStack('restart', 'dev');
  });
  afterEach(async () => {
    await dev?.cleanup();
  });
  afterAll(async () => {
    await dev?.stop();
  });

  test('a new worker (replaying from history) answers the same status, and approving afterwards completes', async () => {
    const c = dev.contractId('restart');
    const a = amendment(c, 1, { submittedBy: 'sam' });
    const h = await dev.submit(a, { approval: APPROVAL_REASON });
    const before = await dev.until(a.amendmentId, 'pending approval', (x) => x.status === 'pending_approval');

    // The first worker shut down, a new one started. maxCachedWorkflows 1 is not allowed (the SDK
    // makes it 2, with a warning): 2, the smallest cache.
    await dev.restartWorkflowWorker({ maxCachedWorkflows: 2 });
    const after = await dev.until(a.amendmentId, 'answered by the new worker', () => true);
    // approval.requestedAt aside (REPLAY_TIME below).
    const stable = (v: AmendmentView): AmendmentView => ({
      ...v,
      approval: { ...v.approval!, requestedAt: '(not compared)' },
    });
    expect(stable(after)).toEqual(stable(before));
    const r = await h.executeUpdate(approveUpdate, { args: [await proven(h, 'approve', { by: 'dana' })] });
    expect(r).toMatchObject({ amendmentId: a.amendmentId, approved: true, stillNeeded: 0 });
    const v = await result(h, undefined, dev);
    expect(v.status).toBe('completed');
    expect(v.approval!.approvals.map((x) => x.by)).toEqual(['dana']);
    expect(v.operationCounts).toEqual({ idp: { applied: 8 }, warehouse: { applied: 7 } });
    // The local activities ran once: the new worker took their results from history.
    expect(dev.stubs.calls.enqueue.filter((e) => e.amendmentId === a.amendmentId)).toHaveLength(1);
    expect(dev.stubs.calls.plan.filter((p) => p.amendmentId === a.amendmentId)).toHaveLength(1);
    expect(dev.stubs.calls.audit.filter((x) => x.view.amendmentId === a.amendmentId)).toHaveLength(1);
    await dev.untilContract(c, 'applied by the amendment', (x) => x.appliedSequence === 1 && x.holder === undefined);
  });
});
