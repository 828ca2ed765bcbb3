/**
 * The amendctl worker: registers the workflows and activities on a task queue. Any number
 * of workers may run against one Temporal cluster; nothing here assumes a single worker.
 */
import { existsSync } from 'node:fs';
import { totalmem } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { resolve } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities } from '../activities';
import { loadTrust } from '../approvals/token';
import { loadNotifications } from '../notify/config';
import { dataConverter, loadCodecKeys } from '../codec';
import { useSharedRateLimits } from '../connectors/rate-limit';
import { ConnectorRegistry, parseTargets, targetTaskQueue } from '../connectors/registry';
import { OperationStore } from '../store/operations';
import { ShareStore } from '../store/shares';
import { SharedRateBuckets } from '../store/rate';
import { temporalTarget, type TemporalTarget } from '../client/connection';
import { loadGovernancePolicy, PROJECT_ROOT, readDocumentFile, workerFiles, type WorkerFiles } from './config';
import { FileRulesProvider } from './rules';
import {
  makeWorkflowExporter,
  OpenTelemetryActivityInboundInterceptor,
} from '@temporalio/interceptors-opentelemetry/lib/worker';
import { type Tracing, tracingFromEnv } from '../observability/tracing';
import { TRACING_WORKFLOW_MODULE, tracedBundlePath } from './bundle';
import { watchPendingApprovals } from '../observability/metrics';
import type { Readiness, ReadyCheck } from '../observability/server';
import { SA } from '../workflows/definitions';

export interface AmendctlWorkerOptions {
  temporal?: TemporalTarget;
  files?: Partial<WorkerFiles>;
  env?: NodeJS.ProcessEnv;
  /** Extra Worker options (tests shorten shutdown grace, for example). */
  worker?: Partial<WorkerOptions>;
  /** OpenTelemetry tracing (src/observability/tracing.ts); default: as the OTEL_* environment asks. */
  tracing?: Tracing;
}

export interface AmendctlWorker {
  /** The workflow worker (the main task queue). */
  worker: Worker;
  /** One activity worker per target, on the target's own task queue (its batches). */
  targetWorkers: Worker[];
  taskQueue: string;
  registry: ConnectorRegistry;
  /** How many approval keys this worker trusts (0: no approval can count). */
  approvalKeys: number;
  /** Run until shutdown; resolves when the worker has stopped and connections are closed. */
  run(): Promise<void>;
  shutdown(): void;
  /** Ready when every worker polls and every target answers (a lookup of an account no one has), checked at most every 5 s. */
  ready(): Promise<Readiness>;
}

/** The subject readiness looks up in each target: a reserved name no account has. */
export const READINESS_PROBE_SUBJECT = 'amendctl-readiness-probe@invalid';
const READY_CACHE_MS = 5_000;
const PROBE_TIMEOUT_MS = 3_000;

async function probe(name: string, fn: () => Promise<unknown>): Promise<ReadyCheck> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      fn(),
      new Promise(
        (_, reject) =>
          (timer = setTimeout(() => reject(new Error(`no answer within ${PROBE_TIMEOUT_MS} ms`)), PROBE_TIMEOUT_MS)),
      ),
    ]);
    return { name, ok: true };
  } catch (err) {
    return { name, ok: false, detail: (err as Error)?.message ?? String(err) };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A prebuilt workflow bundle (npm run build makes lib/workflow-bundle.js, and its traced twin
 * with the OpenTelemetry workflow interceptors), else the sources.
 */
export function workflowSource(
  env: NodeJS.ProcessEnv = process.env,
  traced = false,
): Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath' | 'bundlerOptions' | 'interceptors'> {
  const plain = env.AMENDCTL_WORKFLOW_BUNDLE ?? resolve(PROJECT_ROOT, 'lib', 'workflow-bundle.js');
  const bundle = traced ? tracedBundlePath(plain) : plain;
  if (existsSync(bundle) && !env.AMENDCTL_WORKFLOW_SOURCES) return { workflowBundle: { codePath: bundle } };
  // The same preload as the prebuilt bundle (src/worker/bundle.ts): zod once per workflow thread.
  return {
    workflowsPath: require.resolve('../workflows'),
    bundlerOptions: { preloadModules: [require.resolve('../workflows/preload-zod')] },
    ...(traced ? { interceptors: { workflowModules: [TRACING_WORKFLOW_MODULE] } } : {}),
  };
}

/** The activity side of tracing: each activity a span, continuing the workflow's trace. */
function activityTracing(tracing: Tracing | undefined): Pick<WorkerOptions, 'interceptors'> {
  return tracing
    ? { interceptors: { activity: [(ctx) => ({ inbound: new OpenTelemetryActivityInboundInterceptor(ctx) })] } }
    : {};
}

export async function createAmendctlWorker(opts: AmendctlWorkerOptions = {}): Promise<AmendctlWorker> {
  const env = opts.env ?? process.env;
  const files = { ...workerFiles(env), ...opts.files };
  const tracing = opts.tracing ?? tracingFromEnv('amendctl-worker', env);
  const temporal = opts.temporal ?? temporalTarget();
  const registry = new ConnectorRegistry(
    parseTargets(readDocumentFile(files.targetsFile, 'targets file', 'AMENDCTL_TARGETS'), files.targetsFile, env),
  );
  const governance = loadGovernancePolicy(files.approvalsFile);
  const rules = new FileRulesProvider(files.rulesFile, governance.guard);
  const trust = files.approvalKeysFile ? loadTrust(files.approvalKeysFile) : undefined;
  const notifications = loadNotifications(env);

  // Payload encryption (src/codec): keys from this worker's environment; the worker and its client share them.
  const codecKeys = loadCodecKeys(env);

  // The operation store (plans, outcomes) and the shared rate buckets live in the amendctl database.
  let store: OperationStore | undefined;
  const operations = (): OperationStore => (store ??= OperationStore.fromEnv(env));
  let shareStore: ShareStore | undefined;
  const shares = (): ShareStore => (shareStore ??= ShareStore.fromEnv(env));
  const buckets = new SharedRateBuckets(operations().pool);
  useSharedRateLimits((target, bucket) => {
    const key = targetTaskQueue(files.taskQueue, target);
    return { take: (n) => buckets.take(key, bucket, n), pause: (ms) => buckets.pause(key, bucket, ms) };
  });

  const connection = await connectPatiently(temporal, env);
  const clientConnection = await Connection.connect(
    temporal.connectionOptions as Parameters<typeof Connection.connect>[0],
  );
  const client = new Client({
    connection: clientConnection,
    namespace: temporal.namespace,
    dataConverter: dataConverter(env, codecKeys),
  });
  const activities = createActivities({
    registry,
    rules,
    approvalPolicy: governance.approval,
    orderingPolicy: governance.ordering,
    client,
    taskQueue: files.taskQueue,
    store: operations,
    shares,
    notifications,
    ...(trust ? { trust } : {}),
  });
  const closeAll = () =>
    Promise.allSettled([
      registry.close(),
      clientConnection.close(),
      connection.close(),
      store?.close(),
      shareStore?.close(),
    ]);
  const workers: Worker[] = [];
  try {
    const { applyBatch, compensateBatch } = activities;
    for (const target of registry.names()) {
      workers.push(
        await Worker.create({
          connection,
          namespace: temporal.namespace,
          taskQueue: targetTaskQueue(files.taskQueue, target),
          dataConverter: dataConverter(env, codecKeys),
          activities: { applyBatch, compensateBatch },
          ...activityTracing(tracing),
          maxConcurrentActivityTaskExecutions: positiveInt(env, 'AMENDCTL_BATCHES_PER_WORKER', 4),
          maxHeartbeatThrottleInterval: '1s',
          ...pick(opts.worker, 'shutdownGraceTime', 'identity'),
        }),
      );
    }
    const source = workflowSource(env, tracing !== undefined);
    const maxCachedWorkflows = positiveInt(env, 'AMENDCTL_MAX_CACHED_WORKFLOWS', defaultCachedWorkflows());
    boundWorkflowHeap(env, maxCachedWorkflows);
    workers.unshift(
      await Worker.create({
        connection,
        namespace: temporal.namespace,
        taskQueue: files.taskQueue,
        ...source,
        dataConverter: dataConverter(env, codecKeys),
        activities,
        ...(tracing
          ? {
              interceptors: { ...source.interceptors, ...activityTracing(tracing).interceptors },
              sinks: { exporter: makeWorkflowExporter(tracing.processor, tracing.resource) },
            }
          : {}),
        maxCachedWorkflows,
        maxConcurrentActivityTaskExecutions: 20,
        ...opts.worker,
      }),
    );
  } catch (err) {
    await closeAll();
    throw err;
  }
  const [worker, ...targetWorkers] = workers as [Worker, ...Worker[]];
  watchPendingApprovals(() => pendingApprovals(client));
  let readiness: { at: number; value: Promise<Readiness> } | undefined;
  const check = async (): Promise<Readiness> => {
    const checks: ReadyCheck[] = workers.map((w) => ({
      name: `worker ${w.options.taskQueue}`,
      ok: w.getState() === 'RUNNING',
      ...(w.getState() === 'RUNNING' ? {} : { detail: w.getState() }),
    }));
    checks.push(
      ...(await Promise.all(
        registry.names().map((t) => probe(`target ${t}`, () => registry.get(t)!.readAccount(READINESS_PROBE_SUBJECT))),
      )),
    );
    return { ready: checks.every((c) => c.ok), checks };
  };
  return {
    worker,
    targetWorkers,
    taskQueue: files.taskQueue,
    registry,
    approvalKeys: trust?.size ?? 0,
    async run() {
      try {
        await Promise.all(workers.map((w) => w.run()));
      } finally {
        await closeAll();
      }
    },
    shutdown() {
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
    },
    ready() {
      if (!readiness || Date.now() - readiness.at > READY_CACHE_MS) readiness = { at: Date.now(), value: check() };
      return readiness.value;
    },
  };
}

/**
 * The worker's connection, retried with backoff while Temporal does not answer (a server
 * restarting, a worker started before its cluster), up to AMENDCTL_CONNECT_TIMEOUT seconds
 * (default 60); then a plain error naming the address. A supervisor need not catch the race.
 */
async function connectPatiently(temporal: TemporalTarget, env: NodeJS.ProcessEnv): Promise<NativeConnection> {
  const deadline = Date.now() + positiveInt(env, 'AMENDCTL_CONNECT_TIMEOUT', 60) * 1000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await NativeConnection.connect(temporal.connectionOptions);
    } catch (err) {
      const wait = Math.min(5_000, 250 * 2 ** (attempt - 1));
      if (Date.now() + wait > deadline)
        throw new Error(
          `Temporal at ${temporal.address} does not answer (${(err as Error)?.message ?? String(err)}); gave up after ${attempt} attempts`,
        );
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}

/** How many amendments wait for approval, and the oldest's start (visibility: at most 10,000 read for the age). */
async function pendingApprovals(client: Client): Promise<{ count: number; oldest: Date | null }> {
  const query = `${SA.AmendmentStatus.name} = "pending_approval" AND ExecutionStatus = "Running"`;
  const { count } = await client.workflow.count(query);
  let oldest: Date | null = null;
  let seen = 0;
  for await (const w of client.workflow.list({ query, pageSize: 1000 })) {
    if (!oldest || w.startTime < oldest) oldest = w.startTime;
    if (++seen >= 10_000) break;
  }
  return { count, oldest };
}

/**
 * Workflows kept in this worker's cache. The cache is for workflows that are working (planning,
 * provisioning, handing out turns): an evicted one is replayed from its short history on its next
 * task, so one that waits hours for a person gains nothing from staying cached, and the cache
 * bounds memory, not what can wait. A cached amendment is about 0.3 MB (src/bench/heap.ts), its contract workflow more
 * of worker memory (npm run bench:e2e, case e); sized to the memory the process may use (a
 * container's limit, else the machine's): one per 512 MiB, from 20 to 200 (47 on a 24 GiB
 * machine; with the heap bound below, 1,000 pending approvals take 338 MB). AMENDCTL_MAX_CACHED_WORKFLOWS overrides.
 */
export function defaultCachedWorkflows(memoryBytes: number = usableMemory()): number {
  return Math.min(200, Math.max(20, Math.floor(memoryBytes / (512 * 1024 * 1024))));
}

/**
 * The V8 heap of the workflow threads, in MiB: 256, and 4 per cached workflow above 64
 * (AMENDCTL_WORKFLOW_HEAP_MB overrides). The SDK starts its workflow threads with V8's default,
 * sized to the machine (4 GiB here), and V8 collects garbage late under so high a limit: the
 * churn of a thousand amendments passing through a cache of 47 left 200 MB of garbage in that
 * heap (npm run bench:e2e, case e: 418 MB of worker RSS; 332 MB with a bound).
 */
export function workflowHeapMb(maxCachedWorkflows: number): number {
  return 256 + 4 * Math.max(0, maxCachedWorkflows - 64);
}

/**
 * Bounds the heap of the isolates created from now on in this process (the SDK's workflow
 * threads: it takes no resource limits for them), not the main thread's, which exists already.
 * A --max-old-space-size given to node (argv or NODE_OPTIONS) applies to every isolate and is
 * left alone. Returns the bound set, in MiB.
 */
export function boundWorkflowHeap(
  env: NodeJS.ProcessEnv,
  maxCachedWorkflows: number,
  nodeFlags: string[] = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)],
): number | undefined {
  if (nodeFlags.some((a) => /^--max[-_]old[-_]space[-_]size\b/.test(a))) return undefined;
  const mb = positiveInt(env, 'AMENDCTL_WORKFLOW_HEAP_MB', workflowHeapMb(maxCachedWorkflows));
  setFlagsFromString(`--max-old-space-size=${mb}`);
  return mb;
}

/** A cgroup limit (process.constrainedMemory(): 0 or absurdly large when there is none), else the machine's memory. */
export function usableMemory(): number {
  const total = totalmem();
  const limit = typeof process.constrainedMemory === 'function' ? process.constrainedMemory() : undefined;
  return limit && limit > 0 && limit < total ? limit : total;
}

function positiveInt(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a whole number of at least 1, got "${raw}"`);
  return n;
}

function pick<T extends object, K extends keyof T>(o: T | undefined, ...keys: K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const k of keys) if (o && o[k] !== undefined) out[k] = o[k];
  return out;
}
