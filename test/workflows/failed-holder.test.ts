/**
 * No contract ever blocks (issue 10, point 1): a holder that fails at the Temporal level (its
 * workflow run ends FAILED, as a bug in workflow code would make it) gives its contract's turn
 * back within 10 s, and the next amendment completes. The failure is injected by a workflow
 * interceptor (test/workflows/inject-failure.ts) on a worker that bundles the workflows from
 * their sources with it; everything else is the product on the real dev server and targets.
 */
import type { ContractView } from '../../src/workflows/definitions';
import { amendmentWorkflowId } from '../../src/workflows/definitions';
import { need } from '../harness/env';
import { until } from '../harness/until';
import { baseline, customer } from './fixtures';
import { injectFailureSignal } from './inject-failure';
import { pgSnapshot, startStack, type Stack } from './stack';

let stack: Stack;

beforeAll(async () => {
  stack = await startStack('failed-holder', {
    env: { AMENDCTL_WORKFLOW_SOURCES: '1', AMENDCTL_AUDIT_PORT: need('AMENDCTL_TEST_PG_PORT') },
    worker: { interceptors: { workflowModules: [require.resolve('./inject-failure')] } },
  });
}, 120_000);
afterAll(async () => {
  await stack?.stop();
});

test('a holder whose workflow failed: the turn is back within 10 s and the next amendment completes', async () => {
  const c = customer('failed');
  const first = baseline(
    c,
    [
      ['ada', 'admin'],
      ['bob', 'member'],
    ],
    { submittedBy: 'sam' },
  );
  await stack.client.submitAmendment(first);
  await until(
    'pending approval',
    () => stack.client.getStatus(first.amendmentId).then((v) => (v.status === 'pending_approval' ? v : undefined)),
    30_000,
  );
  const next = baseline(c, [['bob', 'member']], { amendmentId: `${c.id}-001b` });
  await stack.client.submitAmendment(next);

  const handle = stack.client.client.workflow.getHandle(amendmentWorkflowId(first.amendmentId));
  await handle.signal(injectFailureSignal, 'injected: a bug in workflow code');
  const closed = await until(
    'failed',
    () => handle.describe().then((d) => (d.status.name === 'FAILED' ? d : undefined)),
    10_000,
  );
  const view: ContractView = await until(
    'turn back',
    () =>
      stack.client.getContract(c.contractId).then((x) => (x.view.holder !== first.amendmentId ? x.view : undefined)),
    10_000,
  );
  expect(Date.now() - (closed.closeTime?.getTime() ?? 0)).toBeLessThan(10_000);
  expect(view.reclaimed?.[0]).toMatchObject({
    amendmentId: first.amendmentId,
    ended: 'FAILED',
    undone: 0,
    flagged: [],
  });
  expect((await stack.client.waitForResult(next.amendmentId)).status).toBe('completed');
  expect(await pgSnapshot(c.domain)).toEqual({ [c.email('bob')]: { login: true, memberOf: ['app_write'] } });
}, 120_000);
