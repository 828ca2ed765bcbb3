/**
 * Webhook deliveries as contract systems make them (issue 11), over real HTTP on the real dev
 * server, PostgreSQL and scim2-server, through the Standard Webhooks source of
 * examples/webhook/sources.yaml: redelivered and out of order, they end with exactly one
 * workflow per amendment and the targets as the contracts say (the small version of
 * `npm run bench:webhooks`); and an event acknowledged just before the server process is
 * SIGKILLed is not lost: the webhook intake (PostgreSQL) keeps it, and the next instance
 * starts it, also when Temporal was out of the first one's reach.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { newApiKey } from '../../src/api/auth';
import { Intake } from '../../src/api/intake';
import { IntakeStore } from '../../src/store/intake';
import { buildApiServer, DEFAULT_LIMITS } from '../../src/api/server';
import { loadWebhookSources } from '../../src/api/webhooks';
import { newStandardSecret, planDeliveries, seeded, signedHeaders } from '../../src/bench/webhooks/deliveries';
import { sendDeliveries, wrongAccounts } from '../../src/bench/webhooks/run';
import { startTcpProxy } from '../connectors/conformance';
import { need } from '../harness/env';
import { freePort, ROOT, stopProcess } from '../harness/proc';
import { until } from '../harness/until';
import { referenceEnv, startStack, type Stack } from '../workflows/stack';

const secret = newStandardSecret();
/** The API's environment: the webhook secret, and the amendctl database the intake keeps events in (the worker's). */
const env = {
  ...process.env,
  ...referenceEnv({ AMENDCTL_AUDIT_PORT: need('AMENDCTL_TEST_PG_PORT') }),
  AMENDCTL_CLM_WEBHOOK_SECRET: secret,
};
let sourcesFile = '';
let stack: Stack;

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'amendctl-deliveries-'));
  sourcesFile = join(dir, 'sources.yaml');
  const mapping = join(ROOT, 'examples', 'webhook', 'mapping.yaml');
  writeFileSync(
    sourcesFile,
    `sources:\n  clm:\n    scheme: standard-webhooks\n    secrets: [{ env: AMENDCTL_CLM_WEBHOOK_SECRET }]\n    events: [contract.amended, contract.created]\n    record: { at: data }\n    mapping: ${JSON.stringify(mapping)}\n`,
  );
  stack = await startStack('deliveries', {
    env: {
      AMENDCTL_AUDIT_PORT: need('AMENDCTL_TEST_PG_PORT'),
      AMENDCTL_IDP_RATE: '500',
      AMENDCTL_WAREHOUSE_RATE: '500',
    },
  });
}, 60_000);
afterAll(async () => {
  await stack?.stop();
});

/**
 * The API in this process, for the first test only: its intake sweeps the shared intake table
 * every second, and in the tests after it would start what they hold back on purpose (the
 * amendment a dead instance could not start is for the next instance, not for this one).
 */
async function inProcessApi(): Promise<{ api: FastifyInstance; base: string }> {
  const api = buildApiServer({
    client: stack.client,
    intake: Intake.fromEnv(stack.client, env),
    sources: loadWebhookSources(sourcesFile, env),
    auth: { keys: [] },
    limits: DEFAULT_LIMITS,
    logger: () => undefined,
  });
  return { api, base: await api.listen({ port: 0, host: '127.0.0.1' }) };
}

test('redelivered (30%) and out-of-order (10%) deliveries: exactly one workflow per amendment, every one completed, the targets as the contracts say', async () => {
  const plan = planDeliveries({
    contracts: 4,
    amendments: 10,
    duplicateRate: 0.3,
    outOfOrderRate: 0.1,
    random: seeded(7),
  });
  expect(plan.order.length).toBe(57);
  expect(plan.outOfOrder).toBe(4);
  const { api, base } = await inProcessApi();
  const r = await sendDeliveries({ base, source: 'clm', secret, plan, senders: 8, client: stack.client }).finally(() =>
    api.close(),
  );
  expect({ unacknowledged: r.unacknowledged, lost: r.lost, notOneWorkflow: r.notOneWorkflow, final: r.final }).toEqual({
    unacknowledged: 0,
    lost: 0,
    notOneWorkflow: 0,
    final: { completed: 40 },
  });
  // One 202 per event (its workflow started), a 200 for each redelivery (nothing started).
  expect(r.statuses).toEqual({ '202': 40, '200': 17 });
  expect(r.startMs).toHaveLength(40);
  const wrong = await wrongAccounts(plan, {
    pg: {
      host: need('AMENDCTL_TEST_PG_HOST'),
      port: Number(need('AMENDCTL_TEST_PG_PORT')),
      database: 'warehouse',
      user: 'amendctl',
      password: need('AMENDCTL_TEST_PG_PASSWORD'),
    },
    scim: { url: need('AMENDCTL_TEST_SCIM_URL'), token: need('AMENDCTL_TEST_SCIM_TOKEN') },
  });
  expect(wrong).toEqual([]);
}, 240_000);

/** `amendctl serve` in a process of its own, on `address` for Temporal; resolves once it answers. */
async function serve(address: string): Promise<{ url: string; process: ReturnType<typeof spawn> }> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [
      join(ROOT, 'bin', 'amendctl'),
      'serve',
      '--port',
      String(port),
      '--sources',
      sourcesFile,
      '--address',
      address,
      '--task-queue',
      stack.taskQueue,
    ],
    { env, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const url = `http://127.0.0.1:${port}`;
  await until(
    'serve up',
    () =>
      fetch(`${url}/healthz`)
        .then((x) => (x.ok ? x : undefined))
        .catch(() => undefined),
    30_000,
  );
  return { url, process: child };
}

function oneEvent(seed: number) {
  const plan = planDeliveries({
    contracts: 1,
    amendments: 1,
    duplicateRate: 0,
    outOfOrderRate: 0,
    random: seeded(seed),
  });
  return plan.events[0]!;
}

test('an event acknowledged just before the server process is SIGKILLed is not lost', async () => {
  const a = await serve(need('AMENDCTL_TEST_TEMPORAL_ADDRESS'));
  let b: Awaited<ReturnType<typeof serve>> | undefined;
  try {
    const e = oneEvent(1);
    const res = await fetch(`${a.url}/v1/webhooks/clm`, {
      method: 'POST',
      headers: signedHeaders(secret, e),
      body: e.body,
    });
    a.process.kill('SIGKILL'); // the moment the acknowledgement arrived
    expect(res.status).toBe(202);
    // Started by the first instance before it died, or by the next one from the intake once the first one's lease ends.
    b = await serve(need('AMENDCTL_TEST_TEMPORAL_ADDRESS'));
    await until('its workflow started', () => stack.client.getStatus(e.amendmentId).catch(() => undefined), 30_000);
    expect((await stack.client.waitForResult(e.amendmentId)).status).toBe('completed');
  } finally {
    await stopProcess(a.process);
    if (b) await stopProcess(b.process);
  }
}, 120_000);

test('an event acknowledged while Temporal is out of reach, its server then SIGKILLed, is started by the next instance', async () => {
  const [host, port] = need('AMENDCTL_TEST_TEMPORAL_ADDRESS').split(':');
  const proxy = await startTcpProxy({ host: host!, port: Number(port) });
  const a = await serve(`${proxy.host}:${proxy.port}`);
  const store = IntakeStore.fromEnv(env);
  let b: Awaited<ReturnType<typeof serve>> | undefined;
  try {
    await proxy.outage(); // the first instance can no longer reach Temporal
    const e = oneEvent(2);
    const res = await fetch(`${a.url}/v1/webhooks/clm`, {
      method: 'POST',
      headers: signedHeaders(secret, e),
      body: e.body,
    });
    expect(res.status).toBe(202); // kept by the intake: durable without Temporal
    const ack = (await res.json()) as { amendments: Array<{ amendmentId: string; duplicate: boolean }> };
    expect(ack.amendments).toEqual([expect.objectContaining({ amendmentId: e.amendmentId, duplicate: false })]);
    // The first instance tried to start it and could not: kept, not started, to be tried again.
    const held = await until(
      'the failed start recorded',
      async () => {
        const st = await store.status(e.amendmentId);
        return st && st.attempts >= 1 && st.lastError ? st : undefined;
      },
      30_000,
    );
    expect(held.startedAt).toBeUndefined();
    a.process.kill('SIGKILL');
    await expect(stack.client.getStatus(e.amendmentId)).rejects.toThrow(/no amendment/);
    b = await serve(need('AMENDCTL_TEST_TEMPORAL_ADDRESS'));
    await until('its workflow started', () => stack.client.getStatus(e.amendmentId).catch(() => undefined), 30_000);
    expect((await stack.client.waitForResult(e.amendmentId)).status).toBe('completed');
    expect((await store.status(e.amendmentId))?.startedAt).toEqual(expect.any(String));
    // A redelivery to the new instance: nothing kept, nothing started again.
    const again = await fetch(`${b.url}/v1/webhooks/clm`, {
      method: 'POST',
      headers: signedHeaders(secret, e),
      body: e.body,
    });
    expect(again.status).toBe(200);
  } finally {
    await stopProcess(a.process);
    if (b) await stopProcess(b.process);
    await store.close();
    await proxy.close();
  }
}, 120_000);

test('GET /v1/amendments/{id} of an amendment the intake holds but has not started: 202 received, with Retry-After', async () => {
  const reader = newApiKey({ id: 'reader', scopes: ['read'] });
  // An instance that starts nothing itself within the test (no sweep): what a reader sees between acknowledgement and start.
  const store = IntakeStore.fromEnv(env);
  const quiet = buildApiServer({
    client: stack.client,
    intake: new Intake(store, stack.client, { sweepMs: 3_600_000 }),
    sources: new Map(),
    auth: { keys: [reader.entry] },
    limits: DEFAULT_LIMITS,
    logger: () => undefined,
  });
  const url = await quiet.listen({ port: 0, host: '127.0.0.1' });
  try {
    const e = oneEvent(3);
    // A one-user baseline of a customer of its own (it starts once its lease ends and another instance's sweep takes it).
    const slug = `held${e.id
      .replace(/[^a-z0-9]/gi, '')
      .slice(-8)
      .toLowerCase()}`;
    const submission = await stack.client.prepareSubmission({
      amendmentId: `${slug}-msa-001`,
      contractId: `${slug}-msa`,
      sequence: 1,
      submittedBy: 'clm',
      contract: {
        customer: { id: slug, name: 'Held Corp' },
        status: 'active',
        tier: 'professional',
        seats: 1,
        modules: [],
        namedUsers: [{ email: `ann@${slug}.test`, name: 'Ann', role: 'member' }],
        term: { start: '2026-01-01' },
        region: 'eu',
      },
    });
    const [receipt] = await store.receive([{ source: 'clm', eventId: e.id, submission }]);
    expect(receipt).toEqual(
      expect.objectContaining({ amendmentId: submission.input.amendment.amendmentId, received: true }),
    );
    const res = await fetch(`${url}/v1/amendments/${receipt!.amendmentId}`, {
      headers: { authorization: `Bearer ${reader.key}` },
    });
    expect(res.status).toBe(202);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(await res.json()).toEqual(
      expect.objectContaining({
        amendmentId: receipt!.amendmentId,
        status: 'received',
        source: 'clm',
        eventId: e.id,
        attempts: 0,
      }),
    );
    const none = await fetch(`${url}/v1/amendments/no-such-amendment-${e.id}`, {
      headers: { authorization: `Bearer ${reader.key}` },
    });
    expect(none.status).toBe(404);
  } finally {
    await quiet.close();
  }
}, 60_000);
