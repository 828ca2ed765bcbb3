/**
 * Operating a worker (issue 14, points 1 and 3): `amendctl worker --metrics-port` serves
 * /healthz, /readyz and /metrics. On the real dev server, PostgreSQL and scim2-server, with the
 * built CLI in its own process: after a baseline and a change, /metrics counts them (amendments
 * completed, operations applied per target, as the amendments' own views list them) beside the
 * SDK's runtime metrics; an amendment waiting for approval shows in the pending gauge; /readyz
 * is 503 naming the warehouse while it is cut off, and ready again after.
 */
import type { ChildProcess } from 'node:child_process';
import { AmendctlClient, temporalTarget, type AmendmentView } from '../../src/client';
import { startTcpProxy, type TcpProxy } from '../connectors/conformance';
import { need } from '../harness/env';
import { until } from '../harness/until';
import { sampleSum } from '../harness/prometheus';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { registry } from '../../src/observability/metrics';
import { freePort, ROOT, stopProcess } from '../harness/proc';
import { baseline, changes, customer } from './fixtures';
import { spawnWorkerProcess, uniqueQueue } from './stack';

let proxy: TcpProxy;
let worker: ChildProcess;
let client: AmendctlClient;
let ops = '';
const taskQueue = uniqueQueue('observability');

beforeAll(async () => {
  proxy = await startTcpProxy({ host: '127.0.0.1', port: Number(need('AMENDCTL_TEST_PG_PORT')) });
  const port = await freePort();
  ops = `http://127.0.0.1:${port}`;
  worker = spawnWorkerProcess(taskQueue, {
    AMENDCTL_METRICS_PORT: String(port),
    AMENDCTL_WAREHOUSE_PORT: String(proxy.port),
    AMENDCTL_AUDIT_PORT: need('AMENDCTL_TEST_PG_PORT'),
  });
  await until('worker ready', () => fetch(`${ops}/readyz`).then((r) => (r.status === 200 ? r : undefined)), 60_000);
  client = await AmendctlClient.connect(temporalTarget({ address: need('AMENDCTL_TEST_TEMPORAL_ADDRESS') }), taskQueue);
}, 90_000);
afterAll(async () => {
  await client?.close();
  if (worker) await stopProcess(worker);
  await proxy?.close();
});

const sum = sampleSum;
const scrape = () => fetch(`${ops}/metrics`).then((r) => r.text());
const applied = (views: AmendmentView[], target: string) =>
  views.flatMap((v) => v.operations).filter((o) => o.target === target && o.outcome === 'applied').length;

test('/healthz answers; /metrics counts the amendments and their operations per target, beside the SDK metrics', async () => {
  expect(await fetch(`${ops}/healthz`).then((r) => r.json())).toEqual({ status: 'ok' });
  const c = customer('metrics');
  const first = baseline(c, [
    ['ann', 'member'],
    ['ben', 'viewer'],
    ['cal', 'member'],
  ]);
  const second = changes(c, 2, [
    { op: 'add', path: 'namedUsers', value: { email: c.email('dee'), name: 'Dee', role: 'viewer' } },
  ]);
  await client.submitAmendment(first);
  await client.submitAmendment(second);
  const views = [await client.waitForResult(first.amendmentId), await client.waitForResult(second.amendmentId)];
  expect(views.map((v) => v.status)).toEqual(['completed', 'completed']);

  const text = await scrape();
  expect(sum(text, 'amendctl_amendments_total', { status: 'completed' })).toBe(2);
  expect(sum(text, 'amendctl_amendment_duration_seconds_count', { status: 'completed' })).toBe(2);
  for (const target of ['idp', 'warehouse']) {
    expect(applied(views, target)).toBeGreaterThan(0);
    expect(sum(text, 'amendctl_operations_total', { target, outcome: 'applied' })).toBe(applied(views, target));
  }
  expect(sum(text, 'amendctl_operations_total', { outcome: 'failed' })).toBe(0);
  // The SDK's own runtime metrics, from Runtime.install's Prometheus exporter, on the same endpoint.
  expect(text).toMatch(/^temporal_\w+/m);
  // Every metric the Grafana dashboard charts exists: the worker's in this scrape, the API's in its registry.
  const dashboard = JSON.parse(readFileSync(join(ROOT, 'deploy', 'grafana', 'amendctl.json'), 'utf8')) as {
    panels: Array<{ title: string; targets: Array<{ expr: string }> }>;
  };
  const charted = [
    ...new Set(
      dashboard.panels.flatMap((p) => p.targets.flatMap((t) => t.expr.match(/\b(amendctl|temporal)_\w+/g) ?? [])),
    ),
  ];
  expect(charted.length).toBeGreaterThan(8);
  const declared = (m: string) => m.replace(/_(bucket|count|sum)$/, '');
  const missing = charted.filter((m) =>
    m.startsWith('amendctl_api_')
      ? !registry.getSingleMetric(declared(m))
      : !new RegExp(`^# TYPE ${declared(m)} `, 'm').test(text),
  );
  expect(missing).toEqual([]);
}, 90_000);

test('an amendment waiting for approval shows in the pending gauge', async () => {
  const c = customer('pending');
  const a = baseline(c, [['ada', 'admin']], { submittedBy: 'sam' });
  await client.submitAmendment(a);
  await until('pending', () =>
    client.getStatus(a.amendmentId).then((v) => (v.status === 'pending_approval' ? v : undefined)),
  );
  const text = await until(
    'gauge',
    () => scrape().then((t) => (sum(t, 'amendctl_approvals_pending') >= 1 ? t : undefined)),
    30_000,
  );
  expect(sum(text, 'amendctl_approval_pending_oldest_seconds')).toBeGreaterThan(0);
  await client.reject(a.amendmentId, { by: 'dana', reason: 'test over' });
}, 60_000);

test('/readyz is 503 naming the target while the warehouse is cut off, and ready again after', async () => {
  const restore = await proxy.outage();
  try {
    const r = await until(
      'not ready',
      () => fetch(`${ops}/readyz`).then((x) => (x.status === 503 ? x.json() : undefined)),
      30_000,
    );
    expect(r).toMatchObject({ ready: false });
    expect(
      (r as { checks: Array<{ name: string; ok: boolean }> }).checks.filter((x) => !x.ok).map((x) => x.name),
    ).toEqual(['target warehouse']);
  } finally {
    await restore();
  }
  await until('ready again', () => fetch(`${ops}/readyz`).then((x) => (x.status === 200 ? x : undefined)), 30_000);
}, 90_000);
