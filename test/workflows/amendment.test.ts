/**
 * The amendment workflow end to end on real servers: the Temporal dev server, PostgreSQL
 * and scim2-server (issue 2's acceptance points).
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from '../harness/proc';
import { promisify } from 'node:util';
import { RawScim } from '../harness/servers/scim';
import { need } from '../harness/env';
import { until } from '../harness/until';
import { baseline, changes, customer } from './fixtures';
import { pgSnapshot, reached, spawnWorkerProcess, startStack, type Stack } from './stack';

const run = promisify(execFile);
let stack: Stack;
let scim: RawScim;

beforeAll(async () => {
  stack = await startStack('amendment');
  scim = new RawScim(need('AMENDCTL_TEST_SCIM_URL'), need('AMENDCTL_TEST_SCIM_TOKEN'));
});
afterAll(async () => {
  await stack?.stop();
});

async function scimState(domain: string) {
  const users = (await scim.list<{ userName: string; active: boolean }>('/Users')).filter((u) =>
    u.userName.endsWith(`@${domain}`),
  );
  const groups = (await scim.list<{ displayName: string; members?: Array<{ value: string }> }>('/Groups')).filter((g) =>
    g.displayName.startsWith(domain.split('.')[0]!),
  );
  return {
    users: users.map((u) => [u.userName, u.active]).sort(),
    groups: groups.map((g) => [g.displayName, (g.members ?? []).length]).sort(),
  };
}

test('happy path: a baseline with no admin applies without approval and creates the accounts', async () => {
  const c = customer('happy');
  const a = baseline(c, [
    ['bob', 'member'],
    ['carol', 'viewer'],
  ]);
  await stack.client.submitAmendment(a);
  const v = await stack.client.waitForResult(a.amendmentId);
  expect(v.status).toBe('completed');
  expect(v.approval?.required).toBe(false);
  expect(v.operations.length).toBeGreaterThan(0);
  expect(v.operations.every((o) => o.outcome === 'applied' || o.outcome === 'unchanged')).toBe(true);
  expect(await pgSnapshot(c.domain)).toEqual({
    [c.email('bob')]: { login: true, memberOf: ['app_write'] },
    [c.email('carol')]: { login: true, memberOf: ['app_read'] },
  });
  const bob = await scim.readBack(c.email('bob'));
  expect(bob).toMatchObject({ active: true, groups: [`${c.id}-members`, `${c.id}-mod-analytics`] });
});

test('approval: pending until `temporal workflow signal` approves; the submitter cannot approve its own amendment', async () => {
  const c = customer('approve');
  const a = baseline(c, [['alice', 'admin']], { submittedBy: 'sam' });
  await stack.client.submitAmendment(a);
  let v = await reached(stack.client, a.amendmentId, 'pending_approval');
  expect(v.approval?.reasons.length).toBeGreaterThan(0);
  expect(await pgSnapshot(c.domain)).toEqual({});

  await stack.client.approve(a.amendmentId, { by: 'sam' });
  // Recorded as ignored (the workflow has handled the signal), and still pending.
  v = await until('the ignored approval', () =>
    stack.client.getStatus(a.amendmentId).then((x) => ((x.approval?.ignored.length ?? 0) > 0 ? x : undefined)),
  );
  expect(v.status).toBe('pending_approval');
  expect(v.approval?.ignored.map((i) => i.why).join()).toMatch(/separation of duties/);

  // What `amendctl approve --print-signal` prints, run as printed by the Temporal CLI itself (not our code).
  const printed = await run(process.execPath, [
    join(ROOT, 'bin', 'amendctl'),
    'approve',
    a.amendmentId,
    '--key',
    need('AMENDCTL_APPROVER_KEY'),
    '--by',
    'dana',
    '--comment',
    'ok',
    '--print-signal',
    '--address',
    need('AMENDCTL_TEST_TEMPORAL_ADDRESS'),
  ]);
  const command = printed.stdout.trim();
  expect(command).toMatch(
    new RegExp(
      `^temporal workflow signal --workflow-id amendment-${a.amendmentId} --name approve --input '\\{"by":"dana","comment":"ok","proof":"amap1\\.[^']+"\\}'$`,
    ),
  );
  await run('bash', [
    '-c',
    `${command.replace(/^temporal /, `${JSON.stringify(need('AMENDCTL_TEST_TEMPORAL_CLI'))} `)} --address ${need('AMENDCTL_TEST_TEMPORAL_ADDRESS')} --namespace default`,
  ]);
  v = await stack.client.waitForResult(a.amendmentId);
  expect(v.status).toBe('completed');
  expect(v.approval?.approvals).toEqual([expect.objectContaining({ by: 'dana', comment: 'ok' })]);
  expect(await pgSnapshot(c.domain)).toEqual({ [c.email('alice')]: { login: true, memberOf: ['app_admin'] } });
});

test('rejection changes nothing', async () => {
  const c = customer('reject');
  const a = baseline(c, [
    ['alice', 'admin'],
    ['bob', 'member'],
  ]);
  await stack.client.submitAmendment(a);
  await reached(stack.client, a.amendmentId, 'pending_approval');
  await stack.client.reject(a.amendmentId, { by: 'dana', reason: 'not in the signed contract' });
  const v = await stack.client.waitForResult(a.amendmentId);
  expect(v.status).toBe('rejected');
  expect(v.reason).toMatch(/dana.*not in the signed contract/);
  expect(v.operations.length).toBeGreaterThan(0); // a plan was made, and none of it ran
  expect(v.operations.every((o) => o.outcome === 'pending')).toBe(true);
  expect(await pgSnapshot(c.domain)).toEqual({});
  expect((await scimState(c.domain)).users).toEqual([]);
});

test('the same amendment submitted twice gives one workflow and one set of effects', async () => {
  const c = customer('dup');
  const a = baseline(c, [['bob', 'member']]);
  const [first, second] = await Promise.all([stack.client.submitAmendment(a), stack.client.submitAmendment(a)]);
  expect(first.runId).toBe(second.runId);
  expect([first.duplicate, second.duplicate].filter(Boolean)).toHaveLength(1);
  await stack.client.waitForResult(a.amendmentId);
  const third = await stack.client.submitAmendment(a);
  expect(third).toMatchObject({ duplicate: true, differs: false, runId: first.runId });
  const changed = await stack.client.submitAmendment({ ...a, submittedBy: 'someone-else' });
  expect(changed).toMatchObject({ duplicate: true, differs: true });
  const wf = await stack.client.client.workflow.count(`AmendmentId = '${a.amendmentId}'`);
  expect(wf.count).toBe(1);
  expect((await scimState(c.domain)).users).toEqual([[c.email('bob'), true]]);
});

test('out-of-order sequence: amendment 2 waits, queued, until 1 is applied', async () => {
  const c = customer('order');
  const second = changes(c, 2, [
    { op: 'add', path: 'namedUsers', value: { email: c.email('dave'), name: 'Dave', role: 'member' } },
  ]);
  await stack.client.submitAmendment(second);
  const queued = await reached(stack.client, second.amendmentId, 'queued');
  expect(queued.reason).toMatch(/sequence 2/);
  // The contract has it in line, waiting for sequence 1: it stays queued until that is applied.
  const line = await until('in the contract line', () =>
    stack.client
      .getContract(c.contractId)
      .then((x) => (x.view.waiting.some((w) => w.amendmentId === second.amendmentId) ? x.view : undefined)),
  );
  expect({ applied: line.appliedSequence, holder: line.holder }).toEqual({ applied: 0, holder: undefined });
  expect((await stack.client.getStatus(second.amendmentId)).status).toBe('queued');

  const first = baseline(c, [['bob', 'member']]);
  await stack.client.submitAmendment(first);
  expect((await stack.client.waitForResult(first.amendmentId)).status).toBe('completed');
  expect((await stack.client.waitForResult(second.amendmentId)).status).toBe('completed');
  expect(Object.keys(await pgSnapshot(c.domain)).sort()).toEqual([c.email('bob'), c.email('dave')]);

  // A stale sequence is refused, and says why.
  const stale = changes(c, 2, [{ op: 'set', path: 'seats', value: 20 }], { amendmentId: `${c.id}-stale` });
  await stack.client.submitAmendment(stale);
  const v = await stack.client.waitForResult(stale.amendmentId);
  expect(v.status).toBe('invalid');
  expect(v.reason).toMatch(/sequence 2 .* already applied/);
});

test('a permanent failure mid-plan rolls back: PostgreSQL and SCIM end exactly as before', async () => {
  const c = customer('fail');
  // An account the connector may not manage: a superuser role with carol's name. ALTER ROLE fails for good (42501).
  const su = await superuser();
  await su.query(`CREATE ROLE "${c.email('carol')}" SUPERUSER NOLOGIN`);
  await su.end();
  const pgBefore = await pgSnapshot(c.domain);
  const scimBefore = await scimState(c.domain);

  const a = baseline(c, [
    ['bob', 'member'],
    ['carol', 'viewer'],
    ['erin', 'member'],
  ]);
  await stack.client.submitAmendment(a);
  const v = await stack.client.waitForResult(a.amendmentId);
  expect(v.status).toBe('rolled_back');
  expect(v.reason).toMatch(/carol/);
  const failed = v.operations.filter((o) => o.outcome === 'failed');
  expect(failed).toHaveLength(1);
  expect(failed[0]!.error?.type).toBe('TargetForbidden');
  expect(v.operations.some((o) => o.outcome === 'compensated')).toBe(true);
  expect(await pgSnapshot(c.domain)).toEqual(pgBefore);
  expect(await scimState(c.domain)).toEqual(scimBefore);
});

test('a worker killed mid-plan and restarted finishes with no duplicate effects', async () => {
  const c = customer('kill');
  const users: Array<[string, 'member']> = Array.from({ length: 8 }, (_, i) => [`user${i}`, 'member']);
  const a = baseline(c, users, { modules: ['analytics', 'billing'] });
  // The in-process worker must not take this task queue: a dedicated one, served by a child process.
  const queue = `${stack.taskQueue}-kill`;
  const slow = { AMENDCTL_WAREHOUSE_RATE: '3', AMENDCTL_IDP_RATE: '3' };
  let worker = spawnWorkerProcess(queue, slow);
  const { AmendctlClient, temporalTarget } = await import('../../src/client');
  const client = await AmendctlClient.connect(
    temporalTarget({ address: need('AMENDCTL_TEST_TEMPORAL_ADDRESS') }),
    queue,
  );
  try {
    await client.submitAmendment(a);
    await until(
      '4 operations applied before the kill',
      async () => {
        const v = await client.getStatus(a.amendmentId);
        const applied = v.operations.filter((o) => o.outcome === 'applied').length;
        if (applied < 4) throw new Error(`${applied} applied: ${v.status} ${v.reason ?? ''}`);
        return v;
      },
      60_000,
      100,
    );
    worker.kill('SIGKILL');
    await new Promise((r) => worker.once('exit', r));
    const mid = await client.getStatus(a.amendmentId);
    expect(mid.status).toBe('running');
    worker = spawnWorkerProcess(queue);
    const v = await client.waitForResult(a.amendmentId);
    expect(v.status).toBe('completed');
    const snap = await pgSnapshot(c.domain);
    expect(Object.keys(snap)).toHaveLength(8);
    expect(Object.values(snap).every((r) => r.login && r.memberOf.join() === 'app_write')).toBe(true);
    const all = (await scim.list<{ userName: string }>('/Users')).filter((u) => u.userName.endsWith(`@${c.domain}`));
    expect(all).toHaveLength(8); // one account each: no duplicates after the retry
    for (const [local] of users)
      expect((await scim.readBack(c.email(local)))?.groups).toEqual([
        `${c.id}-members`,
        `${c.id}-mod-analytics`,
        `${c.id}-mod-billing`,
      ]);
  } finally {
    worker.kill('SIGTERM');
    await client.close();
  }
}, 180_000);

async function superuser() {
  const { Client } = await import('pg');
  const c = new Client({
    host: need('AMENDCTL_TEST_PG_SUPERUSER_SOCKET'),
    port: Number(need('AMENDCTL_TEST_PG_PORT')),
    user: 'postgres',
    database: 'warehouse',
  });
  await c.connect();
  return c;
}
