/**
 * Governance on the run's real Temporal dev server, PostgreSQL and scim2-server:
 *   - `amendctl reverse` (the built CLI) of a completed amendment: needs approval, the
 *     requester cannot approve it, and both targets end exactly as before the amendment
 *   - compensation runs every inverse even when some fail for good, and reports `failed`
 *     naming each operation left for an operator
 *   - a contract amended many times stays bounded: its entity workflow continues as new
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { contractWorkflowId, type ContractWorkflowState } from '../../src/client';
import { need } from '../harness/env';
import { ROOT } from '../harness/proc';
import { RawScim, startHttpProxy, type HttpProxy } from '../harness/servers/scim';
import { until } from '../harness/until';
import { baseline, changes, customer, type Customer } from '../workflows/fixtures';
import { pgSnapshot, reached, startStack, type Stack } from '../workflows/stack';

const run = promisify(execFile);
let stack: Stack;
let scim: RawScim;

beforeAll(async () => {
  stack = await startStack('gov');
  scim = new RawScim(need('AMENDCTL_TEST_SCIM_URL'), need('AMENDCTL_TEST_SCIM_TOKEN'));
});
afterAll(async () => {
  await stack?.stop();
});

function cli(args: string[]) {
  return run(
    process.execPath,
    [
      join(ROOT, 'bin', 'amendctl'),
      ...args,
      '--address',
      need('AMENDCTL_TEST_TEMPORAL_ADDRESS'),
      '--task-queue',
      stack.taskQueue,
    ],
    { env: process.env },
  ).then(
    (r) => ({ code: 0, ...r }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

/** Every account of the customer, read back from both targets independently of the connectors. */
async function targets(c: Customer, locals: string[]) {
  const idp: Record<string, unknown> = {};
  for (const l of locals) idp[l] = await scim.readBack(c.email(l));
  return { warehouse: await pgSnapshot(c.domain), idp };
}

test('amendctl reverse: a reversal that needs approval (not by the requester) and restores PostgreSQL and SCIM exactly', async () => {
  const c = customer('rb');
  const people = ['bob', 'carol', 'erin'];
  await stack.client.submitAmendment(
    baseline(c, [
      ['bob', 'member'],
      ['carol', 'viewer'],
      ['erin', 'member'],
    ]),
  );
  expect((await stack.client.waitForResult(`${c.id}-001`)).status).toBe('completed');
  const before = await targets(c, people);

  // A reference-like amendment: a role change, a new module, a rename, a suspension-free seat change.
  const second = changes(c, 2, [
    { op: 'set', path: 'namedUsers.role', match: { email: c.email('carol') }, value: 'member' },
    { op: 'add', path: 'modules', value: 'billing' },
    { op: 'set', path: 'namedUsers.name', match: { email: c.email('erin') }, value: 'Erin Q' },
    { op: 'set', path: 'seats', value: 12 },
  ]);
  await stack.client.submitAmendment(second);
  const applied = await stack.client.waitForResult(second.amendmentId);
  expect(applied.status).toBe('completed');
  expect(await targets(c, people)).not.toEqual(before);

  const asked = await cli(['reverse', second.amendmentId, '--by', 'olga', '--reason', 'signed in error']);
  expect(asked.stderr).toBe('');
  expect(asked.code).toBe(0);
  const rollbackId = `rollback-${second.amendmentId}`;
  expect(asked.stdout).toMatch(
    new RegExp(`^reversal requested: ${rollbackId} \\(contract ${c.contractId}, sequence 3\\)`),
  );
  const pending = await reached(stack.client, rollbackId, 'pending_approval');
  expect(pending.approval!.reasons.map((r) => r.message)).toContain(
    `operator rollback of ${second.amendmentId} requested by olga: signed in error`,
  );

  // The requester cannot approve its own reversal (Update: refused at once, exit 1).
  const own = await cli(['approve', rollbackId, '--by', 'olga']);
  expect(own.code).toBe(1);
  expect(own.stderr).toMatch(
    /not counted: olga submitted this amendment and may not approve it \(separation of duties\)/,
  );
  expect(await targets(c, people)).not.toEqual(before);

  const ok = await cli(['approve', rollbackId, '--by', 'dana', '--comment', 'confirmed with sales']);
  expect(ok.stderr).toBe('');
  expect(ok.code).toBe(0);
  const v = await stack.client.waitForResult(rollbackId);
  expect(v.status).toBe('completed');
  expect(v).toMatchObject({
    reverses: second.amendmentId,
    submittedBy: 'olga',
    rollback: { of: second.amendmentId, requestedBy: 'olga', reason: 'signed in error' },
  });
  expect(v.approval!.reasons.map((r) => r.ruleId)).toContain('operator-rollback');
  expect(v.approval!.approvals).toEqual([expect.objectContaining({ by: 'dana', comment: 'confirmed with sales' })]);
  expect(await targets(c, people)).toEqual(before);

  // The audit trail shows who asked for the reversal, why, and who approved it.
  const audit = await cli(['audit', rollbackId, '--format', 'md']);
  expect(audit.code).toBe(0);
  expect(audit.stdout).toContain('| Reversal | requested by olga: signed in error |');
  expect(audit.stdout).toMatch(
    /\| dana \(proven by service \(key test-harness\), verified [^)]+\) \| approved \| yes \| confirmed with sales \|/,
  );

  // Asking again is a no-op; reversing something that is no longer the last applied is refused.
  // `rollback`, the former name of the verb, is the same command.
  expect((await cli(['rollback', second.amendmentId, '--by', 'olga', '--reason', 'again'])).stdout).toMatch(
    /already requested/,
  );
  const stale = await cli(['reverse', `${c.id}-001`, '--by', 'olga', '--reason', 'x']);
  expect(stale.code).toBe(1);
  expect(stale.stderr).toMatch(
    new RegExp(`is not the last applied amendment of contract ${c.contractId} \\(that is ${rollbackId}, sequence 3\\)`),
  );
}, 120_000);

test('compensation runs every inverse even when some fail for good, and `failed` names each one left for an operator', async () => {
  // The idp target goes through a proxy in front of the real scim2-server: it refuses (403)
  // creating erin, and from then on every change: so the idp compensations fail for good, while the
  // warehouse compensations (real PostgreSQL, untouched) must all still run.
  const proxy: HttpProxy = await startHttpProxy(new URL(need('AMENDCTL_TEST_SCIM_URL')).origin);
  const own = await startStack('govfail', { env: { AMENDCTL_IDP_URL: `${proxy.url}/v2` } });
  const c = customer('cmp');
  let refusing = false;
  const scim = new RawScim(need('AMENDCTL_TEST_SCIM_URL'), need('AMENDCTL_TEST_SCIM_TOKEN'));
  proxy.hooks.push(async (req) => {
    const body = req.body as { userName?: string } | undefined;
    if (req.method === 'POST' && req.path.endsWith('/Users') && body?.userName === c.email('erin')) {
      // Accounts are created concurrently: erin's is refused only once bob's and carol's exist, so those have something to compensate.
      const deadline = Date.now() + 20_000;
      while (
        !(await Promise.all([scim.users(c.email('bob')), scim.users(c.email('carol'))])).every((u) => u.length > 0)
      ) {
        if (Date.now() > deadline) throw new Error('bob and carol were never created');
        await new Promise((r) => setTimeout(r, 50));
      }
      refusing = true;
    }
    if (refusing && req.method !== 'GET')
      return {
        status: 403,
        body: {
          schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'],
          status: '403',
          detail: 'refused by the test proxy',
        },
      };
    return undefined;
  });
  try {
    const pgBefore = await pgSnapshot(c.domain);
    const a = baseline(
      c,
      [
        ['bob', 'member'],
        ['carol', 'viewer'],
        ['erin', 'member'],
      ],
      { modules: [] },
    );
    await own.client.submitAmendment(a, { retryBudgetSeconds: 5 });
    const v = await own.client.waitForResult(a.amendmentId);
    expect(v.status).toBe('failed');
    const idpApplied = v.operations.filter((o) => o.target === 'idp' && o.compensation);
    const pgApplied = v.operations.filter((o) => o.target === 'warehouse' && o.compensation);
    expect(idpApplied.length).toBeGreaterThan(0);
    expect(idpApplied.every((o) => o.outcome === 'compensation_failed')).toBe(true);
    // Every warehouse compensation ran (after, and despite, the failed idp ones) and PostgreSQL is as before.
    expect(pgApplied.length).toBeGreaterThan(0);
    expect(pgApplied.every((o) => o.outcome === 'compensated')).toBe(true);
    expect(await pgSnapshot(c.domain)).toEqual(pgBefore);
    expect(v.leftForOperator).toHaveLength(idpApplied.length);
    for (const o of idpApplied) expect(v.leftForOperator!.some((l) => l.startsWith(o.description))).toBe(true);
    expect(v.reason).toMatch(new RegExp(`and ${idpApplied.length} compensations? failed`));
  } finally {
    await own.stop();
    await proxy.close();
  }
}, 120_000);

test('a contract amended many times stays bounded: the entity workflow continues as new and keeps strict order', async () => {
  const c = customer('can');
  // Start the contract's entity workflow with a low threshold (an input option) before any amendment.
  const initial: ContractWorkflowState = {
    contractId: c.contractId,
    applied: null,
    waiting: [],
    holder: null,
    recent: [],
    maxHistoryEvents: 40,
  };
  await stack.client.client.workflow.start('contractWorkflow', {
    taskQueue: stack.taskQueue,
    workflowId: contractWorkflowId(c.contractId),
    args: [initial],
  });
  const n = 16;
  const docs = [
    baseline(c, [['bob', 'member']], { seats: 100 }),
    ...Array.from({ length: n - 1 }, (_, i) => changes(c, i + 2, [{ op: 'set', path: 'seats', value: 100 + i + 2 }])),
  ];
  // Submitted in reverse: every one but the baseline arrives early.
  for (const d of [...docs].reverse()) await stack.client.submitAmendment(d);
  const results = await Promise.all(docs.map((d) => stack.client.waitForResult(d.amendmentId)));
  expect(results.map((r) => r.status)).toEqual(Array(n).fill('completed'));
  // The last release reaches the contract just after the amendment's result: read its view once it has.
  const { view, applied } = await until(
    `contract at sequence ${n}`,
    () => stack.client.getContract(c.contractId).then((x) => (x.view.appliedSequence >= n ? x : undefined)),
    10_000,
    100,
  );
  expect(view.appliedSequence).toBe(n);
  expect(applied!.contract.seats).toBe(100 + n);
  expect(view.run).toBeGreaterThan(1);
  const desc = await stack.client.client.workflow.getHandle(contractWorkflowId(c.contractId)).describe();
  expect(desc.historyLength).toBeLessThan(200);
  // Strict order: each amendment finished after its predecessor.
  for (let i = 1; i < n; i++)
    expect(Date.parse(results[i]!.finishedAt!)).toBeGreaterThanOrEqual(Date.parse(results[i - 1]!.finishedAt!));
}, 180_000);
