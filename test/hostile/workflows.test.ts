/**
 * Hostile and malformed messages to running workflows (issue 10, point 6), on the real dev
 * server, PostgreSQL and scim2-server: the rows of test/hostile/workflow-cases.ts, sent to an
 * amendment pending approval, one queued behind it, one scheduled for next month and their
 * contract. After each row the workflow answers its query (its task did not fail), its status is
 * what it was, and what it recorded says why; at the end a valid approval and a valid cancel
 * still finish them, the accounts are exactly what the contract says, and no history holds a
 * failed workflow task.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { InputError } from '../../src/domain/errors';
import {
  amendmentWorkflowId,
  contractWorkflowId,
  SA,
  type AmendmentView,
  type ContractView,
} from '../../src/workflows/definitions';
import { baseline, changes, customer, type Customer } from '../workflows/fixtures';
import { pgSnapshot, startStack, type Stack } from '../workflows/stack';
import { until } from '../harness/until';
import { excerpt, HostileTable } from './support';
import { type Ctx, type Target, WORKFLOW_CASES, type WorkflowCase } from './workflow-cases';

const table = new HostileTable('running workflows (signals, updates, queries, starts)');
let stack: Stack;
let ctx: Ctx;
let c: Customer;
const ids: Record<Target, string> = { holder: '', queued: '', scheduled: '' };
const started: string[] = [];

const view = (on: Target): Promise<AmendmentView> => stack.client.getStatus(ids[on]);
const contractView = (): Promise<ContractView> => stack.client.getContract(c.contractId).then((x) => x.view);
const STATUS: Record<Target, AmendmentView['status']> = {
  holder: 'pending_approval',
  queued: 'queued',
  scheduled: 'scheduled',
};

/** The query answers (no failed task in the way) and no workflow task is being retried. */
async function answering(h: WorkflowHandle): Promise<void> {
  const d = await h.describe();
  expect(d.status.name).toBe('RUNNING');
  const attempt = (d.raw.pendingWorkflowTask as { attempt?: number } | null | undefined)?.attempt ?? 1;
  expect(attempt).toBeLessThanOrEqual(1);
}

function recorded(v: AmendmentView, list: 'approval' | 'signals'): Array<{ by: string; why: string }> {
  return list === 'approval' ? (v.approval?.ignored ?? []) : (v.ignoredSignals ?? []);
}

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'amendctl-hostile-wf-'));
  const approvals = join(dir, 'approvals.yaml');
  // Sam may approve others' amendments; sam (the same person) submits the holder.
  writeFileSync(approvals, 'approvers: [dana, erin, Sam]\nrequired: 1\nseparationOfDuties: true\n');
  stack = await startStack('hostile', { approvalsFile: approvals });
  c = customer('hostile');
  const holder = baseline(c, [['ada', 'admin']], { submittedBy: 'sam' });
  const queued = changes(c, 2, [
    { op: 'add', path: 'namedUsers', value: { email: c.email('bob'), name: 'Bob', role: 'member' } },
  ]);
  const scheduled = {
    ...changes(c, 3, [{ op: 'set', path: 'seats', value: 12 }]),
    effectiveAt: new Date(Date.now() + 30 * 86_400_000).toISOString(),
  };
  for (const a of [holder, queued, scheduled]) await stack.client.submitAmendment(a);
  ids.holder = holder.amendmentId;
  ids.queued = queued.amendmentId;
  ids.scheduled = scheduled.amendmentId;
  await until(
    'holder pending approval',
    () => view('holder').then((v) => (v.status === 'pending_approval' ? v : undefined)),
    30_000,
  );
  await until('queued names the holder', () => view('queued').then((v) => (v.queue?.holder ? v : undefined)), 30_000);
  await until('scheduled', () => view('scheduled').then((v) => (v.status === 'scheduled' ? v : undefined)), 30_000);
  const wf = stack.client.client.workflow;
  ctx = {
    client: stack.client,
    holder: wf.getHandle(amendmentWorkflowId(ids.holder)),
    queued: wf.getHandle(amendmentWorkflowId(ids.queued)),
    scheduled: wf.getHandle(amendmentWorkflowId(ids.scheduled)),
    contract: wf.getHandle(contractWorkflowId(c.contractId)),
    holderId: ids.holder,
    ids: {},
    freshBaseline(tag) {
      const f = customer(`hostile-${tag}`);
      const a = baseline(f, [['ada', 'member']]);
      this.ids[tag] = a.amendmentId;
      return a as ReturnType<Ctx['freshBaseline']>;
    },
    async startRaw(id, input) {
      const amendmentId = id.startsWith('raw') ? `hostile-${id}-${randomBytes(3).toString('hex')}` : id;
      this.ids[id] = amendmentId;
      const handle = await wf.start('amendmentV4', {
        taskQueue: stack.taskQueue,
        workflowId: amendmentWorkflowId(amendmentId),
        args: [input],
        typedSearchAttributes: [
          { key: SA.AmendmentId, value: amendmentId },
          { key: SA.AmendmentStatus, value: 'queued' },
        ],
      });
      started.push(handle.workflowId);
      return handle;
    },
  };
});

afterAll(async () => {
  table.print();
  await stack?.stop();
});

async function runCase(k: WorkflowCase): Promise<void> {
  const e = k.expect;
  const on: Target = 'on' in e && e.on !== 'contract' ? e.on : 'holder';
  const before = await view(on);
  const contractBefore = await contractView();
  const row = (outcome: string, message: string): void =>
    table.add({ id: k.id, boundary: k.boundary, input: k.input, outcome, message });
  let thrown: unknown;
  try {
    await k.send(ctx);
  } catch (err) {
    thrown = err;
  }

  switch (e.kind) {
    case 'ignored': {
      if (thrown) throw thrown;
      const n = recorded(before, e.list).length;
      const after = await until(
        `${k.id} recorded`,
        () => view(on).then((v) => (recorded(v, e.list).length > n ? v : undefined)),
        15_000,
        100,
      );
      const entry = recorded(after, e.list)[n]!;
      expect(entry.why).toMatch(e.why);
      if (e.by) expect(entry.by).toMatch(e.by);
      expect(after.status).toBe(STATUS[on]);
      expect(after.approval?.approvals ?? []).toEqual(before.approval?.approvals ?? []);
      expect(after.approval?.rejection).toEqual(before.approval?.rejection);
      // Bounded: what a signal brought in does not grow the status without bound.
      expect(JSON.stringify(after).length).toBeLessThan(JSON.stringify(before).length + 2_000);
      row('ignored, recorded', `${entry.by}: ${entry.why}`);
      break;
    }
    case 'update-refused': {
      expect(thrown).toBeInstanceOf(WorkflowUpdateFailedError);
      const cause = (thrown as WorkflowUpdateFailedError).cause as { message?: string; type?: string };
      expect(cause.type).toBe(e.type);
      expect(cause.message).toMatch(e.why);
      expect(cause.message!.length).toBeLessThan(400);
      const after = await view(on);
      expect(after.status).toBe(STATUS[on]);
      expect(after.approval?.approvals ?? []).toEqual([]);
      expect(recorded(after, 'approval')).toEqual(recorded(before, 'approval')); // nothing written for a refused Update
      row(`refused by the validator (${e.type})`, cause.message!);
      break;
    }
    case 'server-refused': {
      expect(thrown).toBeDefined();
      const msg =
        `${(thrown as Error).name}: ${(thrown as Error).message} ${String(((thrown as Error).cause as Error | undefined)?.message ?? '')}`.trim();
      expect(msg).toMatch(e.why);
      if (e.noWorkflow)
        await expect(
          ctx.client.client.workflow.getHandle(amendmentWorkflowId(ctx.ids[e.noWorkflow]!)).describe(),
        ).rejects.toBeInstanceOf(WorkflowNotFoundError);
      const after = await view(on);
      expect(after.status).toBe(STATUS[on]);
      expect(recorded(after, 'approval')).toEqual(recorded(before, 'approval'));
      row(`refused by Temporal (${(thrown as Error).name})`, msg);
      break;
    }
    case 'dropped': {
      if (thrown) throw thrown;
      await answering(ctx[on]);
      const after = await view(on);
      expect({ ...after, reason: undefined }).toEqual({ ...before, reason: undefined });
      row(
        'no handler: nothing changes',
        `status ${after.status}; ${recorded(after, 'approval').length} ignored decisions as before`,
      );
      break;
    }
    case 'contract-ignored': {
      if (thrown) throw thrown;
      await answering(ctx.contract);
      const after = await contractView();
      expect(after.holder).toBe(ids.holder);
      expect(after.holding?.reclaiming).toBeUndefined();
      expect(after.waiting).toEqual(contractBefore.waiting);
      expect(after.scheduled).toEqual(contractBefore.scheduled);
      expect(after.appliedSequence).toBe(contractBefore.appliedSequence);
      expect((await stack.client.getContract(c.contractId)).applied).toBeNull();
      row(
        'ignored by the contract',
        `holder ${after.holder}, waiting ${after.waiting.map((w) => w.amendmentId).join(', ')}, applied sequence ${after.appliedSequence}: as before`,
      );
      break;
    }
    case 'client-refused': {
      expect(thrown).toBeInstanceOf(InputError);
      const issue = (thrown as InputError).issues.find((i) => i.path === e.path && e.why.test(i.message));
      if (!issue) throw new Error(`${k.id}: no issue at "${e.path}" matching ${e.why}: ${(thrown as Error).message}`);
      if (e.noWorkflow)
        await expect(
          ctx.client.client.workflow.getHandle(amendmentWorkflowId(ctx.ids[e.noWorkflow]!)).describe(),
        ).rejects.toBeInstanceOf(WorkflowNotFoundError);
      const after = await view(on);
      expect(recorded(after, 'approval')).toEqual(recorded(before, 'approval'));
      expect(after.status).toBe(STATUS[on]);
      row('refused by the client, nothing sent', `${issue.path || '(root)'}: ${issue.message}`);
      break;
    }
    case 'ended-invalid': {
      if (thrown) throw thrown;
      const result = (await ctx.client.client.workflow
        .getHandle(started[started.length - 1]!)
        .result()) as AmendmentView;
      expect(result.status).toBe('invalid');
      expect(result.reason).toMatch(e.why);
      expect(result.operations).toEqual([]); // nothing half-applied: no operation ever ran
      row('ended invalid, nothing applied', result.reason ?? '');
      break;
    }
  }
  // Whatever the case, the amendments and the contract still answer, and are where they were.
  for (const t of ['holder', 'queued', 'scheduled'] as const) await answering(ctx[t]);
  await answering(ctx.contract);
}

describe('hostile messages to running workflows', () => {
  test.each(WORKFLOW_CASES.map((k) => [k.id, k] as const))('%s', async (_id, k) => runCase(k));
});

describe('nothing stuck: valid messages still finish every workflow', () => {
  test('a valid approval completes the holder, the queued amendment follows, a valid cancel ends the scheduled one', async () => {
    const r = await stack.client.approveNow(ids.holder, { by: 'dana', comment: 'after the hostile ones' });
    expect(r.approved).toBe(true);
    const holder = await stack.client.waitForResult(ids.holder, { pollMs: 200 });
    expect(holder.status).toBe('completed');
    expect(holder.approval?.approvals.map((a) => a.by)).toEqual(['dana']);
    const queued = await stack.client.waitForResult(ids.queued, { pollMs: 200 });
    expect(queued.status).toBe('completed');
    await stack.client.cancel(ids.scheduled, { by: 'olga', reason: 'end of the hostile test' });
    const scheduled = await stack.client.waitForResult(ids.scheduled, { pollMs: 200 });
    expect(scheduled).toMatchObject({ status: 'rejected', cancellation: { kind: 'cancelled', by: 'olga' } });
    // Exactly what the contract says: ada (admin, from the baseline) and bob (member, from sequence 2).
    expect(await pgSnapshot(c.domain)).toEqual({
      [c.email('ada')]: { login: true, memberOf: ['app_admin'] },
      [c.email('bob')]: { login: true, memberOf: ['app_write'] },
    });
    const line = await contractView();
    expect(line).toMatchObject({ appliedSequence: 2, waiting: [], scheduled: [] });
    expect(line.holder).toBeUndefined();
    // Amendments started by hand applied nothing.
    for (const tag of ['raw2', 'raw3', 'raw4'])
      expect(await pgSnapshot(`${ctx.ids[tag]!.replace(/-001$/, '')}.test`)).toEqual({});
  });

  test('no history holds a failed workflow task, and the table has every row', async () => {
    const wf = stack.client.client.workflow;
    for (const id of [
      amendmentWorkflowId(ids.holder),
      amendmentWorkflowId(ids.queued),
      amendmentWorkflowId(ids.scheduled),
      contractWorkflowId(c.contractId),
      ...started,
    ]) {
      const history = await wf.getHandle(id).fetchHistory();
      const failed = (history.events ?? []).filter((ev) => ev.workflowTaskFailedEventAttributes);
      expect({ id, failedTasks: failed.length }).toEqual({ id, failedTasks: 0 });
    }
    expect(table.rows.length).toBe(WORKFLOW_CASES.length);
    expect(table.rows.length).toBeGreaterThanOrEqual(50);
    for (const r of table.rows) expect(excerpt(r.message)).not.toBe('');
  });
});
