/**
 * A repair that fails for good is taken back as an amendment is: the batches that ran are
 * compensated (newest first), the reconciliation ends rolled_back, and the drift is still there
 * to report. The failure: the policy (re-read by the running worker) now grants a warehouse role
 * that PostgreSQL does not have (a permanent TargetMisconfigured), while the idp repair succeeds.
 */
import { appendFileSync, copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ReconcileView } from '../../src/workflows/reconcile-definitions';
import { need } from '../harness/env';
import { RawScim } from '../harness/servers/scim';
import { baseline, changes, customer } from '../workflows/fixtures';
import { REFERENCE_RULES, startStack, type Stack } from '../workflows/stack';

const rules = join(mkdtempSync(join(tmpdir(), 'amendctl-drift-rules-')), 'rules.yaml');
copyFileSync(REFERENCE_RULES, rules);
let stack: Stack;
let scim: RawScim;
const c = customer('dcomp');

beforeAll(async () => {
  stack = await startStack('dcomp', { rulesFile: rules });
  scim = new RawScim(need('AMENDCTL_TEST_SCIM_URL'), need('AMENDCTL_TEST_SCIM_TOKEN'));
});
afterAll(async () => {
  await stack?.stop();
});

test('a repair that fails for good is compensated: rolled_back, what it changed taken back', async () => {
  await stack.client.submitAmendment(
    baseline(c, [
      ['bob', 'member'],
      ['carol', 'viewer'],
    ]),
  );
  expect((await stack.client.waitForResult(`${c.id}-001`)).status).toBe('completed');
  await stack.client.submitAmendment(
    changes(c, 2, [{ op: 'remove', path: 'namedUsers', match: { email: c.email('carol') } }]),
  );
  expect((await stack.client.waitForResult(`${c.id}-002`)).status).toBe('completed');

  // Out of band: carol re-enabled in scim2-server (the idp repair deactivates her again).
  const [carol] = await scim.users(c.email('carol'));
  const r = await scim.call('PATCH', `/Users/${carol!.id}`, {
    schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
    Operations: [{ op: 'replace', value: { active: true } }],
  });
  expect([200, 204]).toContain(r.status);
  // The policy now also grants a warehouse role that does not exist.
  appendFileSync(
    rules,
    `  - id: extra-warehouse-role\n    on: { clause: namedUsers, kind: added }\n    actions:\n      - { target: warehouse, action: grantRole, subject: "{user.email}", role: "app_missing_{customer}" }\n`,
  );

  const h = await stack.client.client.workflow.start('reconcileWorkflow', {
    workflowId: `reconcile-${c.contractId}-comp`,
    taskQueue: stack.taskQueue,
    args: [{ contractId: c.contractId, policy: 'repair' }],
  });
  const v = (await h.result()) as ReconcileView;
  expect(v.status).toBe('rolled_back');
  expect(v.repair!.failure).toMatch(
    new RegExp(`grant app_missing_${c.id} to ${c.email('bob').replace('.', '\\.')} failed: .*does not exist`),
  );
  expect(
    v.found!.differences.map((d) => `${d.target} ${d.kind} ${d.subject}${d.group ? ` ${d.group}` : ''}`).sort(),
  ).toEqual(
    [
      `idp account_active ${c.email('carol')}`,
      `warehouse membership_missing ${c.email('bob')} app_missing_${c.id}`,
    ].sort(),
  );
  expect(v.repair!.operationCounts).toEqual({ idp: { applied: 1, compensated: 1 }, warehouse: { failed: 1 } });
  expect(v.reason).toMatch(/every applied repair was compensated$/);
  // The idp repair (carol deactivated) was compensated: she is as the out-of-band change left her.
  expect((await scim.readBack(c.email('carol')))?.active).toBe(true);
});
