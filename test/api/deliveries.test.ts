/**
 * Webhook deliveries as contract systems make them (issue 11), over real HTTP on the real dev
 * server, PostgreSQL and scim2-server, through the Standard Webhooks source of
 * examples/webhook/sources.yaml: redelivered and out of order, they end with exactly one
 * workflow per amendment and the targets as the contracts say (the small version of
 * `npm run bench:webhooks`); and an event acknowledged just before the server process is
 * SIGKILLed is not lost.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApiServer, DEFAULT_LIMITS } from '../../src/api/server';
import { loadWebhookSources } from '../../src/api/webhooks';
import { newStandardSecret, planDeliveries, seeded, signedHeaders } from '../../src/bench/webhooks/deliveries';
import { sendDeliveries, wrongAccounts } from '../../src/bench/webhooks/run';
import { need } from '../harness/env';
import { freePort, ROOT, stopProcess } from '../harness/proc';
import { until } from '../harness/until';
import { startStack, type Stack } from '../workflows/stack';

const secret = newStandardSecret();
const env = { ...process.env, AMENDCTL_CLM_WEBHOOK_SECRET: secret };
let sourcesFile = '';
let stack: Stack;
let api: FastifyInstance;
let base = '';

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'amendctl-deliveries-'));
  sourcesFile = join(dir, 'sources.yaml');
  const mapping = join(ROOT, 'examples', 'webhook', 'mapping.yaml');
  writeFileSync(sourcesFile, `sources:\n  clm:\n    scheme: standard-webhooks\n    secrets: [{ env: AMENDCTL_CLM_WEBHOOK_SECRET }]\n    events: [contract.amended, contract.created]\n    record: { at: data }\n    mapping: ${JSON.stringify(mapping)}\n`);
  stack = await startStack('deliveries', { env: { AMENDCTL_AUDIT_PORT: need('AMENDCTL_TEST_PG_PORT'), AMENDCTL_IDP_RATE: '500', AMENDCTL_WAREHOUSE_RATE: '500' } });
  api = buildApiServer({ client: stack.client, sources: loadWebhookSources(sourcesFile, env), auth: { keys: [] }, limits: DEFAULT_LIMITS, logger: () => undefined });
  base = await api.listen({ port: 0, host: '127.0.0.1' });
}, 60_000);
afterAll(async () => {
  await api?.close();
  await stack?.stop();
});

test('redelivered (30%) and out-of-order (10%) deliveries: exactly one workflow per amendment, every one completed, the targets as the contracts say', async () => {
  const plan = planDeliveries({ contracts: 4, amendments: 10, duplicateRate: 0.3, outOfOrderRate: 0.1, random: seeded(7) });
  expect(plan.order.length).toBe(57);
  expect(plan.outOfOrder).toBe(4);
  const r = await sendDeliveries({ base, source: 'clm', secret, plan, senders: 8, client: stack.client });
  expect({ unacknowledged: r.unacknowledged, lost: r.lost, notOneWorkflow: r.notOneWorkflow, final: r.final }).toEqual({ unacknowledged: 0, lost: 0, notOneWorkflow: 0, final: { completed: 40 } });
  // One 202 per event (its workflow started), a 200 for each redelivery (nothing started).
  expect(r.statuses).toEqual({ '202': 40, '200': 17 });
  expect(r.startMs).toHaveLength(40);
  const wrong = await wrongAccounts(plan, {
    pg: { host: need('AMENDCTL_TEST_PG_HOST'), port: Number(need('AMENDCTL_TEST_PG_PORT')), database: 'warehouse', user: 'amendctl', password: need('AMENDCTL_TEST_PG_PASSWORD') },
    scim: { url: need('AMENDCTL_TEST_SCIM_URL'), token: need('AMENDCTL_TEST_SCIM_TOKEN') },
  });
  expect(wrong).toEqual([]);
}, 240_000);

test('an event acknowledged just before the server process is SIGKILLed is not lost', async () => {
  const port = await freePort();
  const server = spawn(process.execPath, [join(ROOT, 'bin', 'amendctl'), 'serve', '--port', String(port), '--sources', sourcesFile, '--address', need('AMENDCTL_TEST_TEMPORAL_ADDRESS'), '--task-queue', stack.taskQueue], {
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  try {
    const url = `http://127.0.0.1:${port}`;
    await until('serve up', () => fetch(`${url}/healthz`).then((x) => (x.ok ? x : undefined)), 30_000);
    const plan = planDeliveries({ contracts: 1, amendments: 1, duplicateRate: 0, outOfOrderRate: 0, random: seeded(1) });
    const e = plan.events[0]!;
    const res = await fetch(`${url}/v1/webhooks/clm`, { method: 'POST', headers: signedHeaders(secret, e), body: e.body });
    server.kill('SIGKILL'); // the moment the acknowledgement arrived
    expect(res.status).toBe(202);
    expect((await stack.client.waitForResult(e.amendmentId)).status).toBe('completed');
  } finally {
    await stopProcess(server);
  }
}, 120_000);
