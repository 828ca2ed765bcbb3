/**
 * `npm run bench:webhooks`: contract-system webhooks at volume. On the bench's own stack (the
 * Temporal dev server, PostgreSQL, scim2-server; src/bench/e2e/stack.ts), with an amendctl
 * worker in its own process and the API server in this one, N Standard Webhooks deliveries
 * (30% redelivered, 10% out of order by default) from `--senders` concurrent senders, offered
 * at `--rate` deliveries a second (open loop: each timed from when it was due), or `--rate burst`:
 * each sender sends its next as soon as the last is answered. Prints:
 * acknowledgement latency p50/p99 and event-to-workflow-start p95, each with its ratio to the
 * bare-Temporal floor measured in the same run on the same server (StartWorkflowExecution of a
 * bare workflow from as many concurrent callers); then lost, not-one-workflow and wrong accounts.
 *
 *   node lib/bench/webhooks.js [--deliveries 1000] [--contracts 20] [--senders 50] [--rate 5|burst]
 *     [--duplicates 0.3] [--out-of-order 0.1] [--seed 1] [--json FILE]
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { Intake } from '../api/intake';
import { buildApiServer, DEFAULT_LIMITS } from '../api/server';
import { loadWebhookSources } from '../api/webhooks';
import { AmendctlClient, temporalTarget } from '../client';
import { freePort } from '../devserver';
import { referenceWorkerEnv, ROOT, startStack } from './e2e/stack';
import { pool, sleep } from './e2e/measure';
import { BENCH_TARGET_RATE } from './e2e/runner';
import { newStandardSecret, planDeliveries, seeded } from './webhooks/deliveries';
import { ms, sendDeliveries, wrongAccounts } from './webhooks/run';

/**
 * Deliveries offered per second by default: a busy contract system's steady flow. The intake's
 * latency holds at 25/s here too; the worker, on the same two cores, works off the amendments
 * (about two a second) after the deliveries end.
 */
const DEFAULT_RATE = 10;

const Args = z.object({
  deliveries: z.coerce.number().int().min(10).max(100_000).default(1000),
  contracts: z.coerce.number().int().min(1).max(1000).default(20),
  senders: z.coerce.number().int().min(1).max(500).default(50),
  rate: z
    .union([z.literal('burst'), z.coerce.number().min(0.1).max(10_000)])
    .default(DEFAULT_RATE)
    .transform((r) => (r === 'burst' ? undefined : r)),
  duplicates: z.coerce.number().min(0).max(0.9).default(0.3),
  'out-of-order': z.coerce.number().min(0).max(0.5).default(0.1),
  seed: z.coerce.number().int().default(1),
  intake: z.enum(['on', 'off']).default('on'),
  json: z.string().optional(),
});

const say = (line: string) => process.stdout.write(`${line}\n`);

/**
 * The floor: how long StartWorkflowExecution of a bare workflow takes from `senders` concurrent
 * callers, on this server, now; at the deliveries' rate (each timed from when it was due) or as
 * fast as the callers go.
 */
async function floorStarts(client: AmendctlClient, n: number, senders: number, rate?: number): Promise<number[]> {
  const taskQueue = `bench-floor-starts-${randomBytes(3).toString('hex')}`; // nobody polls it: the start alone is measured
  const out: number[] = [];
  const ids: string[] = [];
  const t0 = Date.now();
  await pool(
    Array.from({ length: n }, (_, i) => i),
    senders,
    async (i) => {
      const workflowId = `${taskQueue}-${i}`;
      const due = rate ? t0 + (i * 1000) / rate : Date.now();
      if (due > Date.now()) await sleep(due - Date.now());
      const t = due;
      await client.client.workflow.start('floorPendingWorkflow', { taskQueue, workflowId, args: [] });
      out.push(Date.now() - t);
      ids.push(workflowId);
    },
  );
  await pool(ids, 16, (id) =>
    client.client.workflow
      .getHandle(id)
      .terminate('bench floor')
      .catch(() => undefined),
  );
  return out;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      deliveries: { type: 'string' },
      contracts: { type: 'string' },
      senders: { type: 'string' },
      rate: { type: 'string' },
      duplicates: { type: 'string' },
      'out-of-order': { type: 'string' },
      seed: { type: 'string' },
      intake: { type: 'string' },
      json: { type: 'string' },
    },
  });
  const parsed = Args.safeParse(values);
  if (!parsed.success)
    throw new Error(
      `bench:webhooks: ${parsed.error.issues.map((i) => `--${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  const a = parsed.data;
  const unique = Math.round(a.deliveries * (1 - a.duplicates));
  const amendments = Math.max(1, Math.ceil(unique / a.contracts));
  say(
    `bench:webhooks: ${a.deliveries} deliveries (${Math.round(a.duplicates * 100)}% redelivered, ${Math.round(a['out-of-order'] * 100)}% out of order) of ${a.contracts} contracts x ${amendments} amendments, ${a.senders} senders`,
  );

  say('  starting the Temporal dev server, PostgreSQL and scim2-server ...');
  const stack = await startStack();
  const secret = newStandardSecret();
  const workerEnv = {
    ...process.env,
    ...referenceWorkerEnv(stack.env),
    AMENDCTL_AUDIT_PORT: stack.env.AMENDCTL_TEST_PG_PORT,
    AMENDCTL_IDP_RATE: BENCH_TARGET_RATE,
    AMENDCTL_WAREHOUSE_RATE: BENCH_TARGET_RATE,
  };
  Object.assign(process.env, workerEnv, { AMENDCTL_CLM_WEBHOOK_SECRET: secret });
  const taskQueue = `bench-webhooks-${randomBytes(3).toString('hex')}`;
  const worker = spawn(
    process.execPath,
    [
      join(ROOT, 'bin', 'amendctl'),
      'worker',
      '--address',
      stack.env.AMENDCTL_TEST_TEMPORAL_ADDRESS,
      '--task-queue',
      taskQueue,
    ],
    { env: workerEnv, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  let client: AmendctlClient | undefined;
  try {
    client = await AmendctlClient.connect(
      temporalTarget({ address: stack.env.AMENDCTL_TEST_TEMPORAL_ADDRESS }),
      taskQueue,
    );
    const sourcesFile = join(stack.env.dir, 'sources.yaml');
    writeFileSync(
      sourcesFile,
      `sources:\n  clm:\n    scheme: standard-webhooks\n    secrets: [{ env: AMENDCTL_CLM_WEBHOOK_SECRET }]\n    events: [contract.amended, contract.created]\n    record: { at: data }\n    mapping: ${JSON.stringify(join(ROOT, 'examples', 'webhook', 'mapping.yaml'))}\n`,
    );
    const intake = a.intake === 'on' ? Intake.fromEnv(client, process.env) : undefined;
    const api = buildApiServer({
      client,
      ...(intake ? { intake } : {}),
      sources: loadWebhookSources(sourcesFile, process.env),
      auth: { keys: [] },
      limits: DEFAULT_LIMITS,
      logger: () => undefined,
    });
    const base = await api.listen({ port: await freePort(), host: '127.0.0.1' });

    const pace = a.rate ? `${a.rate}/s` : 'as fast as they go';
    say(`  floor: ${unique} bare workflow starts from ${a.senders} concurrent callers, ${pace} ...`);
    const floor = await floorStarts(client, unique, a.senders, a.rate);
    const plan = planDeliveries({
      contracts: a.contracts,
      amendments,
      duplicateRate: a.duplicates,
      outOfOrderRate: a['out-of-order'],
      random: seeded(a.seed),
    });
    say(
      `  sending ${plan.order.length} deliveries (${plan.duplicates} redeliveries, ${plan.outOfOrder} out of order), ${pace} ...`,
    );
    const r = await sendDeliveries({
      base,
      source: 'clm',
      secret,
      plan,
      senders: a.senders,
      ...(a.rate ? { rate: a.rate } : {}),
      client,
      progress: say,
    });
    say(`  reading the targets back ...`);
    const wrong = await wrongAccounts(plan, {
      pg: {
        host: stack.env.AMENDCTL_TEST_PG_HOST,
        port: Number(stack.env.AMENDCTL_TEST_PG_PORT),
        database: 'warehouse',
        user: 'amendctl',
        password: stack.env.AMENDCTL_TEST_PG_PASSWORD,
      },
      scim: { url: stack.env.AMENDCTL_TEST_SCIM_URL, token: stack.env.AMENDCTL_TEST_SCIM_TOKEN },
    });
    await api.close();

    const ratio = (x: number | null, f: number | null) =>
      x !== null && f ? `${(x / f).toFixed(2)}x the floor` : 'n/a';
    const fl = { p50: ms(floor, 0.5), p95: ms(floor, 0.95), p99: ms(floor, 0.99) };
    const ack = { p50: ms(r.ackMs, 0.5), p99: ms(r.ackMs, 0.99) };
    const start = { p95: ms(r.startMs, 0.95) };
    const yes = (ok: boolean) => (ok ? 'yes' : 'NO');
    say('');
    say(
      `  floor (bare StartWorkflowExecution, ${a.senders} callers, ${pace}): p50 ${fl.p50} ms, p95 ${fl.p95} ms, p99 ${fl.p99} ms`,
    );
    say(
      `  acknowledgement: p50 ${ack.p50} ms (${ratio(ack.p50, fl.p50)}), p99 ${ack.p99} ms (${ratio(ack.p99, fl.p99)}); target p99 < 100 ms: ${yes((ack.p99 ?? Infinity) < 100)}`,
    );
    say(
      `  event to workflow start: p95 ${start.p95} ms (${ratio(start.p95, fl.p95)}); target p95 < 250 ms: ${yes((start.p95 ?? Infinity) < 250)}`,
    );
    say(
      `  answers: ${Object.entries(r.statuses)
        .map(([s, n]) => `${s} x${n}`)
        .join(', ')}; sent in ${r.seconds.toFixed(1)} s with everything final`,
    );
    say(
      `  submitted ${r.unique} amendments in ${r.deliveries} deliveries: final ${Object.entries(r.final)
        .map(([s, n]) => `${s} ${n}`)
        .join(
          ', ',
        )}; lost ${r.lost}, not exactly one workflow ${r.notOneWorkflow}, unacknowledged ${r.unacknowledged}, wrong accounts ${wrong.length}`,
    );
    for (const w of wrong.slice(0, 10)) say(`    ${w}`);
    if (a.json)
      writeFileSync(
        a.json,
        JSON.stringify(
          { args: a, floor: fl, ack, start, result: { ...r, ackMs: undefined, startMs: undefined }, wrong },
          null,
          2,
        ),
      );
    if (r.lost + r.notOneWorkflow + r.unacknowledged + wrong.length > 0) process.exitCode = 1;
  } finally {
    await client?.close();
    worker.kill('SIGTERM');
    await new Promise((res) => worker.once('exit', res));
    await stack.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:webhooks failed: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
