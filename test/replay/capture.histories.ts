/**
 * Captures workflow histories for the replay test: real runs on the dev server, PostgreSQL
 * and scim2-server, one per path through the workflows, exported with `temporal workflow
 * show` through the codec server (so the files hold plain payloads and no key).
 *
 *   npm run capture-histories     (then commit test/replay/histories/v4/*.json)
 *
 * The runs start the current amendment type, `amendmentV4` (the client starts it), the
 * contract workflow and the turn keeper: they go to test/replay/histories/v4. histories/v3
 * holds amendmentV3's (its keeper started first), v2 and v2.1 amendmentV2's, from before and
 * after its turn-keeper patch; they are never captured again (nothing starts those types now)
 * and replay on their types (v2 through its `patched()`). test/replay/histories/v1 holds the
 * first release's histories of `amendmentWorkflow`, captured by that release; they are never
 * captured again (nothing starts that type now) and stay as long as the type is registered.
 *
 * Capture again only for a new path; after a change to workflow code, the old files must
 * still replay (that is what `patched()`, or a new workflow type, is for).
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { parse, stringify } from 'yaml';
import type { AmendmentStatus, AmendmentView } from '../../src/client';
import { HOLDER_CHECK_MS } from '../../src/workflows/definitions';
import { need } from '../harness/env';
import { runDir } from '../harness/proc';
import { baseline, changes, customer, type Customer } from '../workflows/fixtures';
import { REFERENCE_TARGETS, startStack, type Stack } from '../workflows/stack';

const run = promisify(execFile);
/** The set the current code writes: v4, amendmentV4. v3, v2 and v2.1 stay as captured. */
const OUT = join(__dirname, 'histories', 'v4');
/** The reference targets; and the same targets in batches of two operations, two batches at once. */
let stack: Stack;
let batched: Stack;

beforeAll(async () => {
  mkdirSync(OUT, { recursive: true });
  [stack, batched] = await Promise.all([
    startStack('capture'),
    startStack('capture-batches', { targetsFile: batchedTargets() }),
  ]);
});
afterAll(() => Promise.all([stack?.stop(), batched?.stop()]));

type HistoryEvent = {
  workflowExecutionStartedEventAttributes?: { workflowType?: { name?: string } };
  markerRecordedEventAttributes?: { markerName?: string };
  activityTaskScheduledEventAttributes?: { activityType?: { name?: string } };
};

/** Write the history and check it is the run meant: its workflow type. Returns its events. */
async function save(
  name: string,
  workflowId: string,
  type: 'amendmentV4' | 'contractWorkflow' | 'turnKeeper' = 'amendmentV4',
): Promise<HistoryEvent[]> {
  const { stdout } = await run(
    need('AMENDCTL_TEST_TEMPORAL_CLI'),
    [
      'workflow',
      'show',
      '--address',
      need('AMENDCTL_TEST_TEMPORAL_ADDRESS'),
      '--workflow-id',
      workflowId,
      '--output',
      'json',
      '--codec-endpoint',
      need('AMENDCTL_TEST_CODEC_URL'),
      '--codec-auth',
      `Bearer ${need('AMENDCTL_TEST_CODEC_TOKEN')}`,
    ],
    { maxBuffer: 64 << 20 },
  );
  const { events } = JSON.parse(stdout) as { events: HistoryEvent[] };
  expect(events[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name).toBe(type);
  writeFileSync(join(OUT, `${name}.json`), stdout);
  return events;
}

const countScheduled = (events: HistoryEvent[], activity: string): number =>
  events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === activity).length;

/** Poll until the amendment has `status`, or fail after the deadline. */
async function until(s: Stack, id: string, status: AmendmentStatus, timeoutMs = 60_000): Promise<AmendmentView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await s.client.getStatus(id);
    if (v.status === status) return v;
    if (Date.now() > deadline)
      throw new Error(`${id}: still ${v.status} (${v.reason ?? ''}) after ${timeoutMs} ms, expected ${status}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Until the amendment's turn keeper runs (amendmentV4 starts it KEEPER_AFTER_MS into its turn). */
async function keeperRuns(s: Stack, id: string): Promise<void> {
  const keeper = s.client.client.workflow.getHandle(`amendment-${id}.keeper`);
  const deadline = Date.now() + 30_000;
  while ((await keeper.describe().catch(() => undefined))?.status.name !== 'RUNNING') {
    if (Date.now() > deadline) throw new Error(`${id}: its turn keeper did not start`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function ends(s: Stack, id: string, status: AmendmentStatus): Promise<AmendmentView> {
  const v = await s.client.waitForResult(id);
  expect([id, v.status, v.reason]).toEqual([id, status, v.reason]);
  return v;
}

/** An account the PostgreSQL connector may not manage (a superuser role with the user's name): ALTER ROLE fails for good. */
async function forbiddenRole(c: Customer, local: string): Promise<void> {
  const su = new Client({
    host: need('AMENDCTL_TEST_PG_SUPERUSER_SOCKET'),
    port: Number(need('AMENDCTL_TEST_PG_PORT')),
    user: 'postgres',
    database: 'warehouse',
  });
  await su.connect();
  try {
    await su.query(`CREATE ROLE "${c.email(local)}" SUPERUSER NOLOGIN`);
  } finally {
    await su.end();
  }
}

function batchedTargets(): string {
  const doc = parse(readFileSync(REFERENCE_TARGETS, 'utf8')) as { targets: Record<string, Record<string, unknown>> };
  for (const t of Object.values(doc.targets)) t.provisioning = { batchSize: 2, concurrency: 1, lanes: 2 };
  const dir = runDir('capture');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'targets-batched.yaml');
  writeFileSync(file, stringify(doc));
  return file;
}

test('capture', async () => {
  // Completed with no approval, then queued-then-applied (sequence 3 arrives before 2).
  const c = customer('replay');
  const a1 = baseline(c, [
    ['bob', 'member'],
    ['carol', 'viewer'],
  ]);
  await stack.client.submitAmendment(a1);
  await ends(stack, a1.amendmentId, 'completed');
  const a3 = changes(c, 3, [{ op: 'set', path: 'status', value: 'suspended' }]);
  await stack.client.submitAmendment(a3);
  await until(stack, a3.amendmentId, 'queued');
  const a2 = changes(c, 2, [{ op: 'add', path: 'modules', value: 'billing' }]);
  await stack.client.submitAmendment(a2);
  await ends(stack, a2.amendmentId, 'completed');
  await ends(stack, a3.amendmentId, 'completed');
  await save('completed', `amendment-${a1.amendmentId}`);
  await save('queued-then-applied', `amendment-${a3.amendmentId}`);

  // Approved: an ignored self-approval by signal, a refused Update, then an approval by Update,
  // once its late keeper runs (and the contract's check on the holder has found it).
  const d = customer('replay-approve');
  const b1 = baseline(d, [['alice', 'admin']], { submittedBy: 'sam' });
  await stack.client.submitAmendment(b1);
  await until(stack, b1.amendmentId, 'pending_approval');
  await keeperRuns(stack, b1.amendmentId);
  await new Promise((r) => setTimeout(r, HOLDER_CHECK_MS + 1000));
  await stack.client.approve(b1.amendmentId, { by: 'sam' });
  await expect(stack.client.approveNow(b1.amendmentId, { by: 'sam' })).rejects.toThrow();
  await stack.client.approveNow(b1.amendmentId, { by: 'dana', comment: 'ok' });
  const approved = await ends(stack, b1.amendmentId, 'completed');
  expect(approved.approval?.ignored.length).toBeGreaterThan(0);
  await save('approved', `amendment-${b1.amendmentId}`);

  // Reversed through amendctl reverse (a reversal that needs approval).
  const b2 = changes(d, 2, [
    { op: 'add', path: 'namedUsers', value: { email: d.email('erin'), name: 'Erin', role: 'member' } },
  ]);
  await stack.client.submitAmendment(b2);
  await ends(stack, b2.amendmentId, 'completed');
  const rb = await stack.client.reverse(b2.amendmentId, { by: 'olga', reason: 'signed in error' });
  await until(stack, rb.amendmentId, 'pending_approval');
  await stack.client.approve(rb.amendmentId, { by: 'dana' });
  await ends(stack, rb.amendmentId, 'completed');
  await save('rollback', `amendment-${rb.amendmentId}`);
  await save('contract', `contract-${d.contractId}`, 'contractWorkflow');

  // Rejected.
  const e = customer('replay-reject');
  const r1 = baseline(e, [['alice', 'admin']]);
  await stack.client.submitAmendment(r1);
  await until(stack, r1.amendmentId, 'pending_approval');
  await stack.client.reject(r1.amendmentId, { by: 'dana', reason: 'not signed' });
  await ends(stack, r1.amendmentId, 'rejected');
  await save('rejected', `amendment-${r1.amendmentId}`);

  // Rolled back after a permanent failure (an account the connector may not manage).
  const f = customer('replay-fail');
  await forbiddenRole(f, 'carol');
  const f1 = baseline(f, [
    ['bob', 'member'],
    ['carol', 'viewer'],
  ]);
  await stack.client.submitAmendment(f1);
  await ends(stack, f1.amendmentId, 'rolled_back');
  await save('rolled-back', `amendment-${f1.amendmentId}`);

  // Scheduled, then applied at its effective time; and a scheduled one cancelled.
  const g = customer('replay-scheduled');
  const g1 = { ...baseline(g, [['bob', 'member']]), effectiveAt: new Date(Date.now() + 3000).toISOString() };
  await stack.client.submitAmendment(g1);
  await ends(stack, g1.amendmentId, 'completed');
  await save('scheduled', `amendment-${g1.amendmentId}`);
  const g2 = {
    ...changes(g, 2, [{ op: 'set', path: 'seats', value: 20 }]),
    effectiveAt: new Date(Date.now() + 3_600_000).toISOString(),
  };
  await stack.client.submitAmendment(g2);
  await until(stack, g2.amendmentId, 'scheduled');
  await stack.client.cancel(g2.amendmentId, { by: 'olga', reason: 'renegotiated' });
  const cancelled = await ends(stack, g2.amendmentId, 'rejected');
  expect(cancelled.cancellation?.kind).toBe('cancelled');
  await save('cancelled', `amendment-${g2.amendmentId}`);

  // The batch paths (since amendmentV2): several batches per target, two at once; and a permanent failure
  // in one batch (no further batch starts, every batch that ran is undone, newest first).
  const h = customer('replay-batches');
  const h1 = baseline(h, [
    ['amy', 'member'],
    ['bob', 'member'],
    ['carol', 'viewer'],
    ['dave', 'member'],
    ['erin', 'viewer'],
  ]);
  await batched.client.submitAmendment(h1);
  await ends(batched, h1.amendmentId, 'completed');
  expect(countScheduled(await save('batches', `amendment-${h1.amendmentId}`), 'applyBatch')).toBeGreaterThan(4);
  const k = customer('replay-batches-fail');
  await forbiddenRole(k, 'dave');
  const k1 = baseline(k, [
    ['amy', 'member'],
    ['bob', 'member'],
    ['carol', 'viewer'],
    ['dave', 'member'],
    ['erin', 'viewer'],
    ['fay', 'member'],
  ]);
  await batched.client.submitAmendment(k1);
  await ends(batched, k1.amendmentId, 'rolled_back');
  const undone = await save('batches-rolled-back', `amendment-${k1.amendmentId}`);
  expect(countScheduled(undone, 'compensateBatch')).toBeGreaterThan(1);

  // A Temporal cancellation request while pending approval: rejected, released (the keeper
  // started for the compensation). And a holder terminated at once while pending approval,
  // before its late keeper: the contract's check finds it closed, takes the turn back
  // (reclaimTurn) and the next amendment for the sequence applies.
  const m = customer('replay-tcancel');
  const m1 = baseline(m, [['alice', 'admin']]);
  await stack.client.submitAmendment(m1);
  await until(stack, m1.amendmentId, 'pending_approval');
  await stack.client.handle(m1.amendmentId).cancel();
  const tcancelled = await ends(stack, m1.amendmentId, 'rejected');
  expect(tcancelled.cancellation?.by).toBe('Temporal');
  await save('temporal-cancelled', `amendment-${m1.amendmentId}`);
  const keeper = stack.client.client.workflow.getHandle(`amendment-${m1.amendmentId}.keeper`);
  await keeper.result(); // it ends once the server has asked it to (its parent closed)
  await save('keeper', `amendment-${m1.amendmentId}.keeper`, 'turnKeeper');
  const n = customer('replay-reclaim');
  const n1 = baseline(n, [['alice', 'admin']]);
  await stack.client.submitAmendment(n1);
  await until(stack, n1.amendmentId, 'pending_approval');
  const n2 = baseline(n, [['bob', 'member']], { amendmentId: `${n.id}-001b` });
  await stack.client.submitAmendment(n2);
  await stack.client.handle(n1.amendmentId).terminate('replay capture: a holder terminated');
  await ends(stack, n2.amendmentId, 'completed');
  const reclaimed = await save('contract-reclaimed', `contract-${n.contractId}`, 'contractWorkflow');
  expect(countScheduled(reclaimed, 'reclaimTurn')).toBe(1);
  expect(reclaimed.filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_local_activity').length).toBe(1);
}, 300_000);
