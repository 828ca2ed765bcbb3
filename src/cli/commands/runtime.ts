/** `amendctl dev` (the embedded stack) and `amendctl worker` (a worker against any Temporal). */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Duration } from '@temporalio/common';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { temporalTarget } from '../../client/connection';
import { randomBytes } from 'node:crypto';
import { startOpsServer } from '../../observability/server';
import { DEV_API_KEY_FILE, startDevApi } from '../../api/dev';
import { ensureDevApprovalKeys } from '../../approvals/dev';
import { AmendctlClient } from '../../client';
import { DEV_KEY_FILE, ensureDevKeyFile, loadCodecKeys } from '../../codec';
import { startCodecServer } from '../../codec/server';
import { freePort, startDevServer } from '../../devserver';
import { createAmendctlWorker } from '../../worker';
import { PROJECT_ROOT, workerFiles } from '../../worker/config';
import { applyFileEnv, describeNeed, secretNames, fileEnvNeeds, unmetEnv, WORKER_ENV } from '../../worker/env';
import { connectionOptions, flags, parse, strings } from '../common';
import { type Command, UsageError } from '../io';
import { help } from './amendments';
import { checkInput } from '../../client/inputs';
import { DurationSchema } from '../../worker/config';
import { ReconcileInputSchema } from '../../workflows/reconcile-definitions';
import { upsertReconcileSchedule } from './drift';

/** The dev stack's reconciliation schedule (reconcile-all); returns what to say about it. */
async function scheduleDevReconciliation(
  target: ReturnType<typeof temporalTarget>,
  taskQueue: string,
  every: string,
  policy: string,
): Promise<string> {
  const seconds = checkInput(DurationSchema, every, 'invalid --reconcile-every');
  const input = checkInput(ReconcileInputSchema, { policy }, 'invalid --reconcile-policy');
  const client = await AmendctlClient.connect(target, taskQueue);
  try {
    await upsertReconcileSchedule(client.client, taskQueue, { policy: input.policy }, seconds);
  } finally {
    await client.close();
  }
  return `; schedule reconcile-all checks every contract for drift every ${seconds} s (policy ${input.policy})`;
}

let runtimeInstalled = false;
/** The SDK runtime, logging warnings (AMENDCTL_LOG_LEVEL); with `sdkMetrics`, its Prometheus exporter on that loopback address. */
function quietRuntime(sdkMetrics?: string): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  Runtime.install({
    logger: new DefaultLogger((process.env.AMENDCTL_LOG_LEVEL as 'WARN' | undefined) ?? 'WARN'),
    ...(sdkMetrics ? { telemetryOptions: { metrics: { prometheus: { bindAddress: sdkMetrics } } } } : {}),
  });
}

/** Resolves on the first SIGINT/SIGTERM. */
export function untilSignal(): Promise<string> {
  return new Promise((res) => {
    const on = (sig: string) => () => res(sig);
    process.once('SIGINT', on('SIGINT'));
    process.once('SIGTERM', on('SIGTERM'));
  });
}

const DEV_USAGE =
  'amendctl dev [--port 7233] [--ui-port 8233] [--codec-port 8234] [--api-port 8080] [--no-api] [--db FILE] [--headless] [--reconcile-every 1h] [--reconcile-policy report] [--no-reconcile]';
const DEV_HELP =
  "Runs the embedded stack in the foreground: the Temporal dev server (SQLite file, Web UI), the codec server the UI decodes payloads with, a worker, and the HTTP API on loopback (its key in .data/api-key; webhook source clm, secret in .data/webhook-secret). Approvals are signed: demo-approver's key is .data/demo-approver.key (amendctl approve ID --key .data/demo-approver.key), and the worker trusts .data/approval-keys.yaml. Ctrl-C stops them.";
export const devCommand: Command = async (argv, io) => {
  const { values } = parse(
    argv,
    {
      ...strings(
        'port',
        'ui-port',
        'codec-port',
        'api-port',
        'db',
        'task-queue',
        'reconcile-every',
        'reconcile-policy',
      ),
      ...flags('no-api', 'headless', 'no-reconcile'),
    },
    DEV_USAGE,
  );
  if (values.help) return help(io, DEV_USAGE, DEV_HELP);
  const apiPort = values['no-api'] ? undefined : portArg(values['api-port'], 8080, '--api-port');
  const port = portArg(values.port, 7233, '--port');
  const uiPort = portArg(values['ui-port'], 8233, '--ui-port');
  const codecPort = portArg(values['codec-port'], 8234, '--codec-port');
  quietRuntime();
  // Payload encryption (issue 6): with no key configured, dev makes a local key file once and reuses it.
  if (!process.env.AMENDCTL_CODEC_KEYS && !process.env.AMENDCTL_CODEC_KEY_FILE) ensureDevKeyFile();
  const codec = await startCodecServer({
    keys: loadCodecKeys(),
    token: process.env.AMENDCTL_CODEC_SERVER_TOKEN ?? randomBytes(24).toString('hex'),
    allowedOrigins: [`http://127.0.0.1:${uiPort}`, `http://localhost:${uiPort}`],
    port: codecPort,
  });
  io.err('starting the Temporal dev server ...');
  let server;
  try {
    server = await startDevServer({
      port,
      uiPort,
      dbFile: resolve(values.db ?? resolve(PROJECT_ROOT, '.data', 'temporal.sqlite')),
      headless: values.headless ?? false,
      uiCodecEndpoint: codec.endpoint,
    });
  } catch (err) {
    await codec.close();
    throw err;
  }
  const devServer = server;
  let stopping = false;
  const stopServer = async () => {
    if (!stopping) {
      stopping = true;
      await Promise.all([devServer.stop(), codec.close()]);
    }
  };
  try {
    // Approval keys (issue 12): the dev API's and demo-approver's, trusted by the dev worker.
    const approvalKeys = ensureDevApprovalKeys();
    process.env.AMENDCTL_APPROVAL_KEYS ??= approvalKeys.trust;
    const w = await createAmendctlWorker({
      temporal: temporalTarget({ address: server.address, namespace: 'default' }),
      ...(values['task-queue'] ? { files: { taskQueue: values['task-queue'] } } : {}),
    });
    const running = w.run();
    // Drift (issue 13): every contract reconciled on a Temporal Schedule (report only, unless asked otherwise).
    const reconcileText = values['no-reconcile']
      ? ''
      : await scheduleDevReconciliation(
          temporalTarget({ address: server.address, namespace: 'default' }),
          w.taskQueue,
          values['reconcile-every'] ?? '1h',
          values['reconcile-policy'] ?? 'report',
        );
    const apiClient =
      apiPort !== undefined
        ? await AmendctlClient.connect(temporalTarget({ address: server.address, namespace: 'default' }), w.taskQueue)
        : undefined;
    const api =
      apiClient && apiPort !== undefined
        ? await startDevApi(apiClient, apiPort, resolve(PROJECT_ROOT, '.data', 'api-access.log'), approvalKeys.api)
        : undefined;
    const inboxText = api?.inbox
      ? `; approvals inbox ${api.inbox.url} (user ${api.inbox.user}, password ${api.inbox.password})`
      : '';
    const apiText = api ? `; API ${api.url} (key in ${DEV_API_KEY_FILE}, webhook source clm)${inboxText}` : '';
    io.out(
      `amendctl dev: Temporal at ${server.address}${server.uiUrl ? `, Web UI ${server.uiUrl}` : ''}; codec server ${codec.url} (loopback, token in the UI's endpoint); worker on task queue "${w.taskQueue}"${apiText}${reconcileText}. Ctrl-C stops them.`,
    );
    const why = await Promise.race([
      untilSignal(),
      running.then(() => 'worker stopped'),
      once(server.process, 'exit').then(() => 'the dev server exited'),
    ]);
    io.err(`\n${why}: stopping the worker and the dev server ...`);
    await api?.app.close();
    await apiClient?.close();
    w.shutdown();
    await running;
  } finally {
    await stopServer();
  }
  io.err('stopped.');
  return 0;
};

const WORKER_USAGE =
  'amendctl worker [--address HOST:PORT] [--namespace NS] [--profile NAME] [--task-queue Q] [--metrics-port N] [--metrics-host 127.0.0.1]';
export const workerCommand: Command = async (argv, io) => {
  const { values } = parse(
    argv,
    { ...connectionOptions, 'metrics-port': { type: 'string' }, 'metrics-host': { type: 'string' } },
    WORKER_USAGE,
  );
  if (values.help) {
    return help(
      io,
      WORKER_USAGE,
      "Runs a worker against any Temporal (dev server, cluster, Temporal Cloud). Policy files: AMENDCTL_TARGETS, AMENDCTL_RULES, AMENDCTL_APPROVALS. With --metrics-port (or AMENDCTL_METRICS_PORT) it serves /healthz, /readyz and /metrics (amendctl's and the SDK's) on --metrics-host (AMENDCTL_METRICS_HOST, default 127.0.0.1; 0.0.0.0 in a container). " +
        'It refuses to start without a credential its targets file names (NAME, or NAME_FILE: a file holding it) and warns of what falls back to this machine. On SIGTERM it stops polling and gives running batches AMENDCTL_SHUTDOWN_GRACE (default 0: cancelled at once, resumed elsewhere) before cancelling them.',
    );
  }
  checkWorkerEnv(io, values);
  const metricsPortArg = values['metrics-port'] ?? process.env.AMENDCTL_METRICS_PORT;
  const metricsPort =
    metricsPortArg === undefined || metricsPortArg === '' ? undefined : portArg(metricsPortArg, 0, '--metrics-port');
  const sdkMetrics = metricsPort !== undefined ? `127.0.0.1:${await freePort()}` : undefined;
  quietRuntime(sdkMetrics);
  const target = temporalTarget({
    ...(values.address ? { address: values.address } : {}),
    ...(values.namespace ? { namespace: values.namespace } : {}),
    ...(values.profile ? { profile: values.profile } : {}),
  });
  const grace = process.env.AMENDCTL_SHUTDOWN_GRACE;
  const w = await createAmendctlWorker({
    temporal: target,
    ...(values['task-queue'] ? { files: { taskQueue: values['task-queue'] } } : {}),
    ...(grace ? { worker: { shutdownGraceTime: /^\d+$/.test(grace) ? Number(grace) : (grace as Duration) } } : {}),
  });
  const ops =
    metricsPort !== undefined
      ? await startOpsServer({
          port: metricsPort,
          host: values['metrics-host'] ?? process.env.AMENDCTL_METRICS_HOST ?? '127.0.0.1',
          ready: () => w.ready(),
          sdkMetricsUrl: `http://${sdkMetrics}/metrics`,
        })
      : undefined;
  io.out(
    `amendctl worker: ${target.address}, namespace ${target.namespace}, task queue "${w.taskQueue}"${ops ? `; health and metrics on ${ops.url}` : ''}`,
  );
  if (w.approvalKeys === 0)
    io.err(
      'amendctl worker: no approval keys (AMENDCTL_APPROVAL_KEYS): amendments that need approval cannot be approved until a worker trusts the keys that sign approvals',
    );
  const running = w.run();
  const why = await Promise.race([untilSignal(), running.then(() => 'worker stopped')]);
  io.err(`${why}: draining ...`);
  w.shutdown();
  await running;
  await ops?.close();
  return 0;
};

/**
 * The environment the worker needs (src/worker/env.ts): secrets given as NAME_FILE are read first; a
 * credential the targets file names and nothing sets stops the start (it would fail every amendment
 * that reaches its target); what falls back to this machine is a warning.
 */
function checkWorkerEnv(
  io: Parameters<Command>[1],
  flags: { address?: string | undefined; profile?: string | undefined },
): void {
  const { targetsFile } = workerFiles();
  const needs = [...WORKER_ENV, ...fileEnvNeeds(readFileSync(targetsFile, 'utf8'), targetsFile)];
  applyFileEnv(process.env, secretNames(needs));
  const given: NodeJS.ProcessEnv = { ...process.env };
  if (flags.address) given.TEMPORAL_ADDRESS = flags.address;
  if (flags.profile) given.TEMPORAL_PROFILE = flags.profile;
  if (existsSync(DEV_KEY_FILE)) given.AMENDCTL_CODEC_KEY_FILE ||= DEV_KEY_FILE;
  const unmet = unmetEnv(needs, given);
  const missing = unmet.filter((n) => n.required);
  if (missing.length > 0)
    throw new UsageError(`the environment lacks what this worker needs:\n  ${missing.map(describeNeed).join('\n  ')}`);
  for (const n of unmet) io.err(`amendctl worker: not set, using the default: ${describeNeed(n)}`);
}

const CODEC_USAGE = 'amendctl codec-server [--port 8234] [--host 127.0.0.1] [--ui-origin URL]...';
const CODEC_HELP =
  'Runs the payload codec server alone (POST /decode, /encode) for a Temporal Web UI or `temporal --codec-endpoint`. Keys: AMENDCTL_CODEC_KEYS or AMENDCTL_CODEC_KEY_FILE (else the dev key file). Token: AMENDCTL_CODEC_SERVER_TOKEN (else a random one, printed once). CORS: --ui-origin (default http://127.0.0.1:8233 and http://localhost:8233).';
export const codecServerCommand: Command = async (argv, io) => {
  const { values } = parse(
    argv,
    { port: { type: 'string' }, host: { type: 'string' }, 'ui-origin': { type: 'string', multiple: true } },
    CODEC_USAGE,
  );
  if (values.help) return help(io, CODEC_USAGE, CODEC_HELP);
  const fixedToken = process.env.AMENDCTL_CODEC_SERVER_TOKEN;
  const codec = await startCodecServer({
    keys: loadCodecKeys(),
    token: fixedToken ?? randomBytes(24).toString('hex'),
    allowedOrigins: values['ui-origin'] ?? ['http://127.0.0.1:8233', 'http://localhost:8233'],
    port: portArg(values.port, 8234, '--port'),
    ...(values.host ? { host: values.host } : {}),
  });
  io.out(`amendctl codec-server: ${codec.url} (POST /decode, /encode; Authorization: Bearer TOKEN)`);
  // A generated token is shown once, as the endpoint a UI needs; a token from the environment is never printed.
  io.out(
    fixedToken
      ? 'UI codec endpoint: the URL above followed by /$AMENDCTL_CODEC_SERVER_TOKEN'
      : `UI codec endpoint: ${codec.endpoint}`,
  );
  const why = await untilSignal();
  io.err(`${why}: stopping the codec server`);
  await codec.close();
  return 0;
};

export function portArg(v: string | undefined, def: number, flag: string): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535)
    throw new UsageError(`${flag} takes a port number (1-65535), got "${v}"`);
  return n;
}

function once(emitter: NodeJS.EventEmitter, event: string): Promise<void> {
  return new Promise((res) => emitter.once(event, () => res()));
}
