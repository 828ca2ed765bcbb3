/**
 * A target server that goes away mid-amendment: for less than the retry budget the
 * amendment is only delayed; past it, the amendment ends rolled_back with every target as
 * before. PostgreSQL is cut off by a TCP proxy (the server keeps its state, as in a network
 * partition or a restart).
 */
import { RawScim } from '../harness/servers/scim';
import { need } from '../harness/env';
import { startTcpProxy, type TcpProxy } from '../connectors/conformance';
import { baseline, customer } from './fixtures';
import { pgSnapshot, startStack, type Stack } from './stack';
import type { AmendmentView } from '../../src/client';
import { retriesTotal } from '../../src/observability/metrics';
import { until } from '../harness/until';

let proxy: TcpProxy;
let stack: Stack;
let scim: RawScim;

beforeAll(async () => {
  proxy = await startTcpProxy({ host: '127.0.0.1', port: Number(need('AMENDCTL_TEST_PG_PORT')) });
  // Only the warehouse target goes away: amendctl's own database (the operation store, the audit log) stays reachable.
  stack = await startStack('outage', {
    env: {
      AMENDCTL_WAREHOUSE_PORT: String(proxy.port),
      AMENDCTL_AUDIT_PORT: need('AMENDCTL_TEST_PG_PORT'),
      AMENDCTL_WAREHOUSE_RATE: '2',
    },
  });
  scim = new RawScim(need('AMENDCTL_TEST_SCIM_URL'), need('AMENDCTL_TEST_SCIM_TOKEN'));
});
afterAll(async () => {
  await stack?.stop();
  await proxy?.close();
});

async function waitUntil(id: string, pred: (v: AmendmentView) => boolean, what: string): Promise<AmendmentView> {
  const deadline = Date.now() + 90_000;
  for (;;) {
    const v = await stack.client.getStatus(id);
    if (pred(v)) return v;
    if (Date.now() > deadline) throw new Error(`${id}: never ${what} (${v.status}: ${v.reason ?? ''})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The warehouse batch is under way: an operation done (its heartbeat says so) and more to go. */
const warehouseApplied = (v: AmendmentView) =>
  v.progress?.some((p) => p.target === 'warehouse' && p.done > 0 && p.done < p.total) ?? false;

/** Transient warehouse failures the worker (in this process) has retried so far. */
async function warehouseRetries(): Promise<number> {
  return (await retriesTotal.get()).values
    .filter((v) => v.labels.target === 'warehouse')
    .reduce((n, v) => n + v.value, 0);
}

async function scimUsers(domain: string): Promise<string[]> {
  return (await scim.list<{ userName: string }>('/Users'))
    .filter((u) => u.userName.endsWith(`@${domain}`))
    .map((u) => u.userName)
    .sort();
}

test('an outage shorter than the retry budget delays the amendment, which then completes', async () => {
  const c = customer('blip');
  const a = baseline(c, [
    ['ann', 'member'],
    ['ben', 'member'],
    ['cat', 'viewer'],
    ['dan', 'viewer'],
  ]);
  await stack.client.submitAmendment(a, { retryBudgetSeconds: 60 });
  await waitUntil(a.amendmentId, warehouseApplied, 'started on the warehouse');
  const retried = await warehouseRetries();
  const restore = await proxy.outage();
  // The outage meets the amendment: warehouse operations fail to connect and are retried, not failed.
  await until(
    'warehouse operations retried during the outage',
    async () => ((await warehouseRetries()) >= retried + 2 ? true : undefined),
    60_000,
    50,
  );
  const during = await stack.client.getStatus(a.amendmentId);
  expect(during.status).toBe('running');
  expect(during.operations.filter((o) => o.outcome === 'failed')).toEqual([]);
  await restore();
  const v = await stack.client.waitForResult(a.amendmentId);
  expect(v.status).toBe('completed');
  const pg = await pgSnapshot(c.domain);
  expect(Object.keys(pg)).toHaveLength(4);
  expect(pg[c.email('cat')]).toEqual({ login: true, memberOf: ['app_read'] });
  expect(await scimUsers(c.domain)).toHaveLength(4);
}, 120_000);

test('past the retry budget the amendment rolls back and every target is as before', async () => {
  const c = customer('down');
  const pgBefore = await pgSnapshot(c.domain);
  const a = baseline(c, [
    ['ann', 'member'],
    ['ben', 'member'],
    ['cat', 'viewer'],
    ['dan', 'viewer'],
  ]);
  await stack.client.submitAmendment(a, { retryBudgetSeconds: 4 });
  await waitUntil(a.amendmentId, warehouseApplied, 'started on the warehouse');
  const restore = await proxy.outage();
  // The warehouse operation gives up after its budget; compensation then needs the warehouse back.
  await waitUntil(a.amendmentId, (v) => v.operations.some((o) => o.outcome === 'failed'), 'failed an operation');
  await restore();
  const v = await stack.client.waitForResult(a.amendmentId);
  expect(v.status).toBe('rolled_back');
  // Every failure is the warehouse's (operations in flight when it went away fail together).
  const failedTargets = v.operations.filter((o) => o.outcome === 'failed').map((o) => o.target);
  expect(failedTargets.length).toBeGreaterThan(0);
  expect(new Set(failedTargets)).toEqual(new Set(['warehouse']));
  expect(await pgSnapshot(c.domain)).toEqual(pgBefore);
  expect(await scimUsers(c.domain)).toEqual([]);
}, 120_000);
