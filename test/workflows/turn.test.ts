/**
 * No contract ever blocks (issue 10, point 1), on the real dev server, PostgreSQL and
 * scim2-server: whatever ends the amendment that holds a contract's turn (a termination in
 * the UI, a Temporal cancellation request, a workflow timeout), the contract has its turn back
 * within seconds, what the holder applied is compensated, the audit log has its record, and the
 * next amendment completes. A queued amendment names the holder and since when. Both ways a
 * holder's end is noticed are covered: its turn keeper (started once it has held the turn for
 * KEEPER_AFTER_MS) and, before that, the contract's own check (HOLDER_CHECK_MS after the turn).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { AuditStore } from '../../src/audit/store';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { AmendmentView, ContractView } from '../../src/workflows/definitions';
import {
  AMENDMENT_WORKFLOW_TYPE,
  amendmentWorkflowId,
  KEEPER_AFTER_MS,
  keeperWorkflowId,
  SA,
} from '../../src/workflows/definitions';
import { main } from '../../src/cli/main';
import { need } from '../harness/env';
import { until } from '../harness/until';
import { baseline, customer, type Customer } from './fixtures';
import { pgSnapshot, startStack, type Stack } from './stack';

const run = promisify(execFile);
let stack: Stack;
let audit: AuditStore;

beforeAll(async () => {
  // A slow warehouse (5 operations a second), so a termination can land half-way through a plan.
  stack = await startStack('turn', {
    env: { AMENDCTL_WAREHOUSE_RATE: '5', AMENDCTL_AUDIT_PORT: need('AMENDCTL_TEST_PG_PORT') },
  });
  audit = AuditStore.fromEnv(process.env);
});
afterAll(async () => {
  await audit?.close();
  await stack?.stop();
});

const status = (id: string, s: AmendmentView['status']) => () =>
  stack.client.getStatus(id).then((v) => (v.status === s ? v : undefined));
const contract = (c: Customer): Promise<ContractView> => stack.client.getContract(c.contractId).then((x) => x.view);

/** A holder pending approval (an admin needs it) and the next amendment queued behind it: another for the same sequence, which applies once the turn is free. */
async function holderAndNext(tag: string): Promise<{ c: Customer; holder: string; next: string }> {
  const c = customer(tag);
  const first = baseline(
    c,
    [
      ['ada', 'admin'],
      ['bob', 'member'],
    ],
    { submittedBy: 'sam' },
  );
  await stack.client.submitAmendment(first);
  await until('holder pending approval', status(first.amendmentId, 'pending_approval'), 30_000);
  const second = baseline(c, [['bob', 'member']], { amendmentId: `${c.id}-001b` });
  await stack.client.submitAmendment(second);
  return { c, holder: first.amendmentId, next: second.amendmentId };
}

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main([...args, '--address', need('AMENDCTL_TEST_TEMPORAL_ADDRESS')], {
    out: (s: string) => out.push(s),
    err: (s: string) => err.push(s),
  });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

test('a queued amendment names the holder and since when; so does `amendctl contract`; a running holder cannot be released', async () => {
  const { c, holder, next } = await holderAndNext('names');
  const v = await until(
    'next names the holder',
    () => stack.client.getStatus(next).then((x) => (x.queue?.holder ? x : undefined)),
    30_000,
  );
  expect(v.status).toBe('queued');
  expect(v.queue?.holder).toMatchObject({ amendmentId: holder, sequence: 1, since: expect.stringMatching(/^\d{4}-/) });
  expect(v.reason).toMatch(
    new RegExp(
      `^waiting for the turn of contract ${c.contractId} \\(at sequence 0\\): amendment ${holder} \\(sequence 1\\) holds it since \\d{4}-`,
    ),
  );

  const shown = await cli('contract', c.contractId);
  expect(shown.code).toBe(0);
  expect(shown.out).toMatch(new RegExp(`holder: +${holder} \\(sequence 1\\) since \\d{4}-`));
  expect(shown.out).toContain(`waiting:   ${next} (sequence 1)`);

  const refused = await cli('contract', 'release', c.contractId, '--by', 'olga', '--reason', 'stuck?');
  expect(refused.code).toBe(1);
  expect(refused.err).toMatch(/workflow is running \(pending_approval\): reject it/);
  expect((await contract(c)).holder).toBe(holder);
  await stack.client.reject(holder, { by: 'dana', reason: 'done with this test' });
  await until('next completes', status(next, 'completed'), 30_000);
});

/** The holder's turn keeper: running, or not started (undefined). */
async function keeperStatus(amendmentId: string): Promise<string | undefined> {
  try {
    const d = await stack.client.client.workflow
      .getHandle(keeperWorkflowId(amendmentWorkflowId(amendmentId)))
      .describe();
    return d.status.name;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return undefined;
    throw err;
  }
}

test('a holder terminated in the UI (temporal workflow terminate) after its keeper started: the turn is back within 10 s and the next amendment completes', async () => {
  const { c, holder, next } = await holderAndNext('terminated');
  await until('its keeper runs', () => keeperStatus(holder).then((s) => s === 'RUNNING' || undefined), 10_000);
  await run(need('AMENDCTL_TEST_TEMPORAL_CLI'), [
    'workflow',
    'terminate',
    '--address',
    need('AMENDCTL_TEST_TEMPORAL_ADDRESS'),
    '--namespace',
    'default',
    '--workflow-id',
    amendmentWorkflowId(holder),
    '--reason',
    'operator: wrong customer',
  ]);
  const t0 = Date.now();
  const view = await until('turn back', () => contract(c).then((v) => (v.holder !== holder ? v : undefined)), 10_000);
  const ms = Date.now() - t0;
  expect(view.reclaimed?.[0]).toMatchObject({
    amendmentId: holder,
    sequence: 1,
    ended: 'TERMINATED',
    undone: 0,
    flagged: [],
  });
  await until('next completes', status(next, 'completed'), 30_000);
  // The holder's audit record says how it ended (it never wrote one itself).
  const row = await audit.amendmentRow(holder);
  expect(row?.record).toMatchObject({
    status: 'rejected',
    reason: expect.stringContaining(
      'the workflow was terminated; the contract took its turn back: nothing had been applied',
    ),
  });
  process.stdout.write(`  terminated holder: turn back after ${ms} ms\n`);
});

test(`a holder terminated before its keeper starts (under ${KEEPER_AFTER_MS} ms into its turn): the contract's own check has the turn back within 10 s`, async () => {
  const c = customer('early');
  const first = baseline(c, [['ada', 'admin']], { submittedBy: 'sam' });
  await stack.client.submitAmendment(first);
  const handle = stack.client.client.workflow.getHandle(amendmentWorkflowId(first.amendmentId));
  // Pending approval moments after its turn: terminated at once, long before KEEPER_AFTER_MS.
  await until('holder pending approval', status(first.amendmentId, 'pending_approval'), 30_000, 25);
  await handle.terminate('operator: wrong customer, at once');
  const t0 = Date.now();
  expect(await keeperStatus(first.amendmentId)).toBeUndefined();
  const next = baseline(c, [['bob', 'member']], { amendmentId: `${c.id}-001b` });
  await stack.client.submitAmendment(next);
  const view = await until(
    'turn back',
    () => contract(c).then((v) => (v.holder !== first.amendmentId ? v : undefined)),
    10_000,
  );
  const ms = Date.now() - t0;
  expect(view.reclaimed?.[0]).toMatchObject({ amendmentId: first.amendmentId, ended: 'TERMINATED', undone: 0 });
  await until('next completes', status(next.amendmentId, 'completed'), 30_000);
  // It never had a keeper: the contract's check found it closed.
  expect(await keeperStatus(first.amendmentId)).toBeUndefined();
  process.stdout.write(`  holder terminated before its keeper: turn back after ${ms} ms\n`);
});

test('a Temporal cancellation request (temporal workflow cancel) ends a holder rejected and releases its turn', async () => {
  const { c, holder, next } = await holderAndNext('cancelled');
  await run(need('AMENDCTL_TEST_TEMPORAL_CLI'), [
    'workflow',
    'cancel',
    '--address',
    need('AMENDCTL_TEST_TEMPORAL_ADDRESS'),
    '--namespace',
    'default',
    '--workflow-id',
    amendmentWorkflowId(holder),
  ]);
  const v = await until('holder ends', status(holder, 'rejected'), 10_000);
  expect(v.cancellation).toMatchObject({ kind: 'cancelled', by: 'Temporal' });
  expect(v.reason).toMatch(/cancelled by a Temporal cancellation request .* before anything was applied/);
  await until('turn back', () => contract(c).then((x) => (x.holder !== holder ? x : undefined)), 10_000);
  await until('next completes', status(next, 'completed'), 30_000);
  expect(await pgSnapshot(c.domain)).toEqual({ [c.email('bob')]: { login: true, memberOf: ['app_write'] } });
});

test('a holder whose workflow timed out: the turn is back within 10 s of the timeout', async () => {
  const c = customer('timedout');
  const first = baseline(c, [['ada', 'admin']], { submittedBy: 'sam' });
  // Started as the client does, with an execution timeout (an operator's or a caller's choice).
  await stack.client.client.workflow.start(AMENDMENT_WORKFLOW_TYPE, {
    taskQueue: stack.taskQueue,
    workflowId: amendmentWorkflowId(first.amendmentId),
    args: [{ amendment: first }],
    workflowExecutionTimeout: '6s',
    typedSearchAttributes: [
      { key: SA.ContractId, value: c.contractId },
      { key: SA.AmendmentId, value: first.amendmentId },
      { key: SA.AmendmentStatus, value: 'queued' },
    ],
  });
  await until('pending', status(first.amendmentId, 'pending_approval'), 5_000);
  const next = baseline(c, [['bob', 'member']], { amendmentId: `${c.id}-001b` });
  await stack.client.submitAmendment(next);
  const d = await until(
    'timed out',
    () =>
      stack.client.client.workflow
        .getHandle(amendmentWorkflowId(first.amendmentId))
        .describe()
        .then((x) => (x.status.name === 'TIMED_OUT' ? x : undefined)),
    20_000,
  );
  const view = await until(
    'turn back',
    () => contract(c).then((x) => (x.holder !== first.amendmentId ? x : undefined)),
    10_000,
  );
  expect(view.reclaimed?.[0]).toMatchObject({ amendmentId: first.amendmentId, ended: 'TIMED_OUT' });
  expect(Date.now() - (d.closeTime?.getTime() ?? 0)).toBeLessThan(15_000);
  await until('next completes', status(next.amendmentId, 'completed'), 30_000);
});

test('a holder terminated half-way through provisioning: what it applied is compensated, and the targets agree with the contract', async () => {
  const c = customer('halfway');
  const users: Array<[string, 'member']> = Array.from({ length: 30 }, (_, i) => [
    `u${String(i).padStart(2, '0')}`,
    'member',
  ]);
  const first = baseline(c, users, { seats: 40 });
  await stack.client.submitAmendment(first);
  // Terminated once some warehouse accounts exist (5 a second: the plan takes several seconds).
  await until(
    'some applied',
    () => pgSnapshot(c.domain).then((s) => (Object.keys(s).length >= 3 ? s : undefined)),
    60_000,
  );
  await run(need('AMENDCTL_TEST_TEMPORAL_CLI'), [
    'workflow',
    'terminate',
    '--address',
    need('AMENDCTL_TEST_TEMPORAL_ADDRESS'),
    '--namespace',
    'default',
    '--workflow-id',
    amendmentWorkflowId(first.amendmentId),
    '--reason',
    'chaos',
  ]);
  const view = await until(
    'turn back',
    () => contract(c).then((x) => (x.holder === undefined && (x.reclaimed?.length ?? 0) > 0 ? x : undefined)),
    60_000,
  );
  const r = view.reclaimed![0]!;
  expect(r).toMatchObject({ amendmentId: first.amendmentId, ended: 'TERMINATED', flagged: [] });
  expect(r.undone).toBeGreaterThan(0);
  expect(view.appliedSequence).toBe(0);
  // Nothing of the never-applied baseline is left active: the warehouse logins are gone or disabled.
  const left = await pgSnapshot(c.domain);
  expect(Object.values(left).filter((role) => role.login)).toEqual([]);
  const row = await audit.amendmentRow(first.amendmentId);
  expect(row?.record).toMatchObject({
    status: 'rolled_back',
    reason: expect.stringMatching(
      /terminated; the contract took its turn back: every applied operation \(\d+\) was compensated/,
    ),
  });
  // The same baseline again (a new amendment id, sequence 1) now applies whole.
  const again = baseline(c, users, { seats: 40, amendmentId: `${c.id}-001b` });
  await stack.client.submitAmendment(again);
  expect((await stack.client.waitForResult(again.amendmentId)).status).toBe('completed');
  expect(Object.values(await pgSnapshot(c.domain)).filter((role) => role.login)).toHaveLength(30);
}, 180_000);
