/**
 * Reconciliation at an interval on Temporal's time-skipping test server (hours of server time in
 * seconds), with the real worker and targets (PostgreSQL, scim2-server). That server implements
 * no Schedules, so the interval is the reconciliation's loop mode (`amendctl reconcile run
 * --every`: durable timers); the Schedule itself is tested on the dev server (drift.test.ts).
 * Under report an out-of-band change stays and is reported each round; under repair the next
 * round puts it right.
 */
import type { ReconcileView } from '../../src/workflows/reconcile-definitions';
import { until } from '../harness/until';
import { startTimeStack, type TimeStack } from '../governance/timeskipping';
import { baseline, changes, customer, type Customer } from '../workflows/fixtures';
import { pgAdmin, pgSnapshot } from '../workflows/stack';

const HOUR = 3600_000;
let stack: TimeStack;
beforeAll(async () => {
  stack = await startTimeStack('drift-ts');
});
afterAll(async () => {
  await stack?.stop();
});

async function provisioned(c: Customer): Promise<void> {
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
}

async function outOfBand(c: Customer): Promise<void> {
  const pg = await pgAdmin();
  try {
    await pg.query(`ALTER ROLE "${c.email('carol')}" LOGIN`); // a re-enabled account
    await pg.query(`GRANT app_admin TO "${c.email('bob')}"`); // an extra admin membership
  } finally {
    await pg.end();
  }
}

/** The result of round `n` of a loop (its child workflow), once it has ended. */
function round(loopId: string, n: number): Promise<ReconcileView> {
  return until(
    `round ${n} of ${loopId}`,
    async () => {
      const h = stack.client.client.workflow.getHandle(`${loopId}/round-${n}`);
      const d = await h.describe();
      return d.status.name === 'COMPLETED' ? ((await h.result()) as ReconcileView) : undefined;
    },
    60_000,
    150,
  );
}

test('every 6 hours: under report the drift stays and each round reports it; under repair the next round repairs it', async () => {
  const reported = customer('dts-rep');
  const repaired = customer('dts-fix');
  await provisioned(reported);
  await provisioned(repaired);

  const start = (c: Customer, policy: string) =>
    stack.client.client.workflow.start('reconcileWorkflow', {
      workflowId: `reconcile-${c.contractId}-loop`,
      taskQueue: stack.taskQueue,
      args: [{ contractId: c.contractId, policy, everySeconds: 6 * 3600, rounds: 3 }],
    });
  const loops = [await start(reported, 'report'), await start(repaired, 'repair')];
  // Round 1 runs at once: nothing is wrong yet.
  expect((await round(loops[0]!.workflowId, 1)).status).toBe('no_drift');
  expect((await round(loops[1]!.workflowId, 1)).status).toBe('no_drift');

  await outOfBand(reported);
  await outOfBand(repaired);
  const t0 = await stack.now();
  await stack.skip(6 * HOUR + 60_000);

  const r2 = await round(loops[0]!.workflowId, 2);
  expect(r2.status).toBe('reported');
  expect(Date.parse(r2.startedAt)).toBeGreaterThanOrEqual(t0 + 5 * HOUR);
  expect(r2.found!.differences.map((d) => `${d.target} ${d.kind}`).sort()).toEqual([
    'warehouse account_active',
    'warehouse membership_extra',
  ]);
  const f2 = await round(loops[1]!.workflowId, 2);
  expect(f2.status).toBe('repaired');
  expect(f2.repair!.operations.map((o) => `${o.outcome} ${o.action}`).sort()).toEqual([
    'applied deactivateAccount',
    'applied revokeRole',
  ]);

  expect((await pgSnapshot(reported.domain))[reported.email('carol')]).toMatchObject({ login: true });
  expect((await pgSnapshot(reported.domain))[reported.email('bob')]).toMatchObject({
    memberOf: ['app_admin', 'app_write'],
  });
  expect((await pgSnapshot(repaired.domain))[repaired.email('carol')]).toMatchObject({ login: false });
  expect((await pgSnapshot(repaired.domain))[repaired.email('bob')]).toMatchObject({ memberOf: ['app_write'] });

  // Six hours on: still reported under report (nothing repaired it), nothing left under repair.
  await stack.skip(6 * HOUR + 60_000);
  expect((await round(loops[0]!.workflowId, 3)).status).toBe('reported');
  expect((await round(loops[1]!.workflowId, 3)).status).toBe('no_drift');
  expect(await loops[0]!.result()).toMatchObject({ contracts: 3, byStatus: { no_drift: 1, reported: 2 } });
});
