/**
 * Captures workflow histories for the replay test: real runs on the dev server, PostgreSQL
 * and scim2-server, one per path through the workflows, exported with `temporal workflow
 * show` through the codec server (so the files hold plain payloads and no key).
 *
 *   npm run capture-histories     (then commit test/replay/histories/*.json)
 *
 * Capture again only for a new path; after a change to workflow code, the old files must
 * still replay (that is what `patched()` is for).
 */
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { need } from '../harness/env';
import { baseline, changes, customer } from '../workflows/fixtures';
import { startStack, type Stack } from '../workflows/stack';

const run = promisify(execFile);
const OUT = join(__dirname, 'histories');
let stack: Stack;

beforeAll(async () => {
  stack = await startStack('capture');
  mkdirSync(OUT, { recursive: true });
});
afterAll(() => stack?.stop());

async function save(name: string, workflowId: string): Promise<void> {
  const { stdout } = await run(
    need('AMENDCTL_TEST_TEMPORAL_CLI'),
    ['workflow', 'show', '--address', need('AMENDCTL_TEST_TEMPORAL_ADDRESS'), '--workflow-id', workflowId, '--output', 'json',
      '--codec-endpoint', need('AMENDCTL_TEST_CODEC_URL'), '--codec-auth', `Bearer ${need('AMENDCTL_TEST_CODEC_TOKEN')}`],
    { maxBuffer: 64 << 20 },
  );
  writeFileSync(join(OUT, `${name}.json`), stdout);
}

async function pendingApproval(id: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if ((await stack.client.getStatus(id)).status === 'pending_approval') return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${id} never pending approval`);
}

test('capture', async () => {
  // Completed with no approval, then queued-then-applied (sequence 3 arrives before 2).
  const c = customer('replay');
  const a1 = baseline(c, [['bob', 'member'], ['carol', 'viewer']]);
  await stack.client.submitAmendment(a1);
  await stack.client.waitForResult(a1.amendmentId);
  const a3 = changes(c, 3, [{ op: 'set', path: 'status', value: 'suspended' }]);
  await stack.client.submitAmendment(a3);
  const a2 = changes(c, 2, [{ op: 'add', path: 'modules', value: 'billing' }]);
  await stack.client.submitAmendment(a2);
  await stack.client.waitForResult(a3.amendmentId);
  await save('completed', `amendment-${a1.amendmentId}`);
  await save('queued-then-applied', `amendment-${a3.amendmentId}`);

  // Approved: an ignored self-approval by signal, a refused Update, then an approval by Update.
  const d = customer('replay-approve');
  const b1 = baseline(d, [['alice', 'admin']], { submittedBy: 'sam' });
  await stack.client.submitAmendment(b1);
  await pendingApproval(b1.amendmentId);
  await stack.client.approve(b1.amendmentId, { by: 'sam' });
  await stack.client.approveNow(b1.amendmentId, { by: 'sam' }).catch(() => undefined);
  await stack.client.approveNow(b1.amendmentId, { by: 'dana', comment: 'ok' });
  await stack.client.waitForResult(b1.amendmentId);
  await save('approved', `amendment-${b1.amendmentId}`);

  // Rolled back through amendctl's rollback (a reversal that needs approval).
  const b2 = changes(d, 2, [{ op: 'add', path: 'namedUsers', value: { email: d.email('erin'), name: 'Erin', role: 'member' } }]);
  await stack.client.submitAmendment(b2);
  await stack.client.waitForResult(b2.amendmentId);
  const rb = await stack.client.rollback(b2.amendmentId, { by: 'olga', reason: 'signed in error' });
  await pendingApproval(rb.amendmentId);
  await stack.client.approve(rb.amendmentId, { by: 'dana' });
  await stack.client.waitForResult(rb.amendmentId);
  await save('rollback', `amendment-${rb.amendmentId}`);
  await save('contract', `contract-${d.contractId}`);

  // Rejected.
  const e = customer('replay-reject');
  const r1 = baseline(e, [['alice', 'admin']]);
  await stack.client.submitAmendment(r1);
  await pendingApproval(r1.amendmentId);
  await stack.client.reject(r1.amendmentId, { by: 'dana', reason: 'not signed' });
  await stack.client.waitForResult(r1.amendmentId);
  await save('rejected', `amendment-${r1.amendmentId}`);

  // Rolled back after a permanent failure (an account the connector may not manage).
  const f = customer('replay-fail');
  const su = new Client({ host: need('AMENDCTL_TEST_PG_SUPERUSER_SOCKET'), port: Number(need('AMENDCTL_TEST_PG_PORT')), user: 'postgres', database: 'warehouse' });
  await su.connect();
  await su.query(`CREATE ROLE "${f.email('carol')}" SUPERUSER NOLOGIN`);
  await su.end();
  const f1 = baseline(f, [['bob', 'member'], ['carol', 'viewer']]);
  await stack.client.submitAmendment(f1);
  await stack.client.waitForResult(f1.amendmentId);
  await save('rolled-back', `amendment-${f1.amendmentId}`);

  // Scheduled, then applied at its effective time; and a scheduled one cancelled.
  const g = customer('replay-scheduled');
  const g1 = { ...baseline(g, [['bob', 'member']]), effectiveAt: new Date(Date.now() + 3000).toISOString() };
  await stack.client.submitAmendment(g1);
  await stack.client.waitForResult(g1.amendmentId);
  await save('scheduled', `amendment-${g1.amendmentId}`);
  const g2 = { ...changes(g, 2, [{ op: 'set', path: 'seats', value: 20 }]), effectiveAt: new Date(Date.now() + 3_600_000).toISOString() };
  await stack.client.submitAmendment(g2);
  for (let i = 0; i < 100 && (await stack.client.getStatus(g2.amendmentId)).status !== 'scheduled'; i++) await new Promise((r) => setTimeout(r, 100));
  await stack.client.cancel(g2.amendmentId, { by: 'olga', reason: 'renegotiated' });
  await stack.client.waitForResult(g2.amendmentId);
  await save('cancelled', `amendment-${g2.amendmentId}`);
}, 300_000);
