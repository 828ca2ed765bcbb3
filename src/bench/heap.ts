/**
 * Worker memory per cached workflow (issue 9, point 4): how much one waiting workflow costs
 * in the worker's workflow cache, what it is made of, and that a bounded cache bounds it while
 * evicted workflows still complete (replayed from history) when signalled.
 *
 *   npm run build && node --expose-gc lib/bench/heap.js [options]
 *
 * It starts its own Temporal dev server (Temporal CLI, loopback, free ports, a SQLite file in a
 * temporary directory) and, per measurement, a fresh child process with an in-process Worker
 * (real bundle, stub activities: src/bench/heap-scenarios.ts). The child warms up (a few
 * workflows start to finish), takes a baseline, starts N workflows, waits until all are parked
 * (visibility) and the worker is idle, forces GC in the main thread and in the workflow thread
 * (through the inspector), and reports RSS, both V8 heaps, and per-workflow deltas; then it
 * releases them all (e.g. approves) and checks every result. With --snapshot N it also takes
 * V8 heap snapshots of the workflow thread at 0 and N cached workflows and analyses them
 * (src/bench/heap-snapshot.ts): retained size per cached workflow by class, by bundle module
 * and as a dominator tree.
 *
 * Options (defaults in brackets):
 *   --scenarios floor,amendment   workloads (src/bench/heap-scenarios.ts): floor, floor+zod,
 *                                 floor+schemas, amendment, amendmentV2            [floor,amendment]
 *   --counts 100,1000             workflows per measurement                          [100,1000]
 *   --caches default,50           maxCachedWorkflows per measurement ("default": the SDK's) [default,50]
 *   --snapshot 200                heap snapshots at 0 and this many cached (0: none) [200]
 *   --snapshot-scenarios amendment                                                   [amendment]
 *   --no-release                  leave them waiting (no completion check)
 *   --warmup 5                    workflows run to completion before the baseline    [5]
 *   --reuse-v8-context false      the SDK's legacy one-context-per-workflow mode     [true]
 *   --bundle FILE                 the amendment scenarios' bundle                    [lib/workflow-bundle.js]
 *   --preload zod,...             instead, bundle lib/workflows (and the floors) with preloadModules:
 *                                 "zod" = src/workflows/preload-zod.ts (a bare 'zod' would be
 *                                 dropped by webpack), "raw:NAME" as given, or module paths;
 *                                 "none": lib/workflows bundled with no preloadModules
 *   --workflow-type NAME          the amendment scenarios' workflow type   [amendmentWorkflow, amendmentV2]
 *   --input-file FILE             its start input (JSON; "{i}" and "{run}" replaced in strings)
 *   --temporal HOST:PORT          use this server instead of starting a dev server
 *   --timeout-min 60              the whole run stops (and cleans up) after this     [60]
 *   --json FILE                   all results as JSON                  [/tmp/amendctl-heap-<time>.json]
 *   --keep                        keep the temporary directory (snapshots, server log)
 *   --verbose                     progress of each measurement on stderr
 *   --env NAME=VALUE              environment of the measuring processes (repeatable), e.g. MALLOC_ARENA_MAX=2
 *   --analyse BEFORE AFTER N      only analyse two saved snapshots
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, createWriteStream, existsSync } from 'node:fs';
import { Session } from 'node:inspector';
import { tmpdir } from 'node:os';
import { pipeline } from 'node:stream/promises';
import type { Worker as NodeWorkerThread } from 'node:worker_threads';
import { join, resolve } from 'node:path';
import { getHeapStatistics } from 'node:v8';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { findTemporalCli, freePort, startDevServer, type DevServer } from '../devserver';
import { compareSnapshots, type SnapshotComparison } from './heap-snapshot';
import { FLOOR_ENTRIES, makeScenario, ROOT, type ScenarioContext, type ScenarioOptions } from './heap-scenarios';

const MB = 1024 * 1024;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- measuring (child) ----

export interface Mem {
  rss: number;
  /** Anonymous resident memory (heaps, malloc): RSS without mapped files. */
  rssAnon: number;
  mainHeapUsed: number;
  mainHeapTotal: number;
  external: number;
  arrayBuffers: number;
  /** The workflow thread(s): V8 heap used and committed (inspector Runtime.getHeapUsage). */
  threadHeapUsed: number;
  threadHeapTotal: number;
  /** Resident memory by kind of mapping (/proc/self/smaps): where the RSS outside the V8 heaps is. */
  smaps: Record<string, number>;
  /** The workflow thread's own figures (v8.getHeapStatistics() and process.memoryUsage() evaluated there). */
  thread: Record<string, number>;
}

export interface RunConfig {
  label: string;
  scenario: string;
  scenarioOptions: ScenarioOptions;
  n: number;
  cache: number | 'default';
  reuseV8Context: boolean;
  address: string;
  run: string;
  warmup: number;
  release: boolean;
  snapshotDir?: string;
  /** Epoch ms: the child gives up after it. */
  deadline: number;
  verbose: boolean;
}

export interface RunResult {
  label: string;
  scenario: string;
  n: number;
  cache: string;
  maxCachedWorkflows: number;
  heapSizeLimitMiB: number;
  baseline: Mem;
  loaded: Mem;
  /** Just before the forced GC of `loaded`: what a process monitor sees. */
  loadedBeforeGc: { rss: number; threadHeapUsed: number; mainHeapUsed: number };
  released?: Mem;
  cachedAtLoaded: number;
  peakCached: number;
  peakRss: number;
  /** Workflow instances the worker created (first runs and replays after eviction). */
  workflowsCreated?: number;
  startSeconds: number;
  release?: { completed: number; failed: string[]; seconds: number };
  snapshots?: { before: string; after: string };
}

/** The inspector, attached to the worker's workflow thread(s) (NodeWorker domain): GC and heap usage there. */
class ThreadInspector {
  private readonly session = new Session();
  private readonly threads = new Set<string>();
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private nextId = 1;

  async attach(timeoutMs = 10_000): Promise<void> {
    this.session.connect();
    this.session.on('NodeWorker.attachedToWorker', (m: { params: { sessionId: string } }) => {
      this.threads.add(m.params.sessionId);
    });
    this.session.on('NodeWorker.detachedFromWorker', (m: { params: { sessionId: string } }) => {
      this.threads.delete(m.params.sessionId);
    });
    this.session.on('NodeWorker.receivedMessageFromWorker', (m: { params: { message: string } }) => {
      const msg = JSON.parse(m.params.message) as { id?: number; result?: unknown; error?: { message: string } };
      if (msg.id !== undefined) {
        const p = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        if (msg.error) p?.reject(new Error(msg.error.message));
        else p?.resolve(msg.result);
      }
    });
    await new Promise<void>((res, rej) =>
      this.session.post('NodeWorker.enable', { waitForDebuggerOnStart: false }, (err) => (err ? rej(err) : res())),
    );
    const until = Date.now() + timeoutMs;
    while (this.threads.size === 0) {
      if (Date.now() > until) throw new Error('no workflow thread to attach the inspector to');
      await sleep(50);
    }
  }

  private send<T>(sessionId: string, method: string, params: Record<string, unknown> = {}): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.session.post(
        'NodeWorker.sendMessageToWorker',
        { sessionId, message: JSON.stringify({ id, method, params }) },
        (err) => {
          if (err) {
            this.pending.delete(id);
            reject(err);
          }
        },
      );
    });
  }

  async heapUsage(): Promise<{ used: number; total: number }> {
    let used = 0;
    let total = 0;
    for (const s of this.threads) {
      const r = await this.send<{ usedSize: number; totalSize: number }>(s, 'Runtime.getHeapUsage');
      used += r.usedSize;
      total += r.totalSize;
    }
    return { used, total };
  }

  /** V8 heap statistics and memoryUsage() of the (first) workflow thread, evaluated there. */
  async stats(): Promise<Record<string, number>> {
    const [s] = [...this.threads];
    if (!s) return {};
    const expression = `JSON.stringify((() => {
      const v8 = process.getBuiltinModule?.('v8');
      const h = v8 ? v8.getHeapStatistics() : {};
      const m = process.memoryUsage();
      const spaces = v8 ? Object.fromEntries(v8.getHeapSpaceStatistics().map((x) => [x.space_name + '_used', x.space_used_size])) : {};
      return { malloced: h.malloced_memory, peakMalloced: h.peak_malloced_memory, externalMemory: h.external_memory, physical: h.total_physical_size, nativeContexts: h.number_of_native_contexts, detachedContexts: h.number_of_detached_contexts, globalHandles: h.total_global_handles_size, external: m.external, arrayBuffers: m.arrayBuffers, ...spaces };
    })())`;
    try {
      const r = await this.send<{ result: { value?: string } }>(s, 'Runtime.evaluate', {
        expression,
        returnByValue: true,
      });
      return r.result.value ? (JSON.parse(r.result.value) as Record<string, number>) : {};
    } catch {
      return {};
    }
  }

  async gc(): Promise<void> {
    for (const s of this.threads) await this.send(s, 'HeapProfiler.collectGarbage');
  }

  close(): void {
    this.session.disconnect();
  }
}

/**
 * A heap snapshot of the worker's (first) workflow thread, through Node's worker.getHeapSnapshot()
 * on the SDK's thread (a protected field of the SDK Worker: a bench may look).
 */
async function snapshotWorkflowThread(worker: Worker, file: string): Promise<void> {
  const thread = (
    worker as unknown as { workflowCreator?: { workerThreadClients?: Array<{ workerThread?: NodeWorkerThread }> } }
  ).workflowCreator?.workerThreadClients?.[0]?.workerThread;
  if (!thread) throw new Error('no workflow thread to snapshot (debugMode?)');
  await withDeadline(
    thread.getHeapSnapshot().then((stream) => pipeline(stream, createWriteStream(file))),
    10 * 60_000,
    'the heap snapshot',
  );
}

function rssAnon(): number {
  try {
    const m = /RssAnon:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * Resident memory by kind of mapping: `[heap]` (the main malloc arena), anonymous mappings by
 * size (V8 heap pages are 256 KB mmaps; glibc thread arenas are up to 64 MB regions), files.
 */
function smapsSummary(): Record<string, number> {
  const out: Record<string, number> = {};
  let text = '';
  try {
    text = readFileSync('/proc/self/smaps', 'utf8');
  } catch {
    return out;
  }
  let kind = '';
  for (const line of text.split('\n')) {
    const h = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (h) {
      const size = (parseInt(h[2]!, 16) - parseInt(h[1]!, 16)) / 1024;
      const name = h[3]!.trim();
      if (name === '[heap]') kind = 'malloc [heap]';
      else if (name.startsWith('[')) kind = 'other [special]';
      else if (name) kind = 'files';
      else
        kind =
          size <= 256
            ? 'anon <=256K (V8 pages)'
            : size <= 1024
              ? 'anon <=1M'
              : size <= 65536
                ? 'anon <=64M (malloc arenas, V8 large)'
                : 'anon >64M';
      continue;
    }
    const r = /^Rss:\s+(\d+) kB/.exec(line);
    if (r && kind) out[kind] = (out[kind] ?? 0) + Number(r[1]) * 1024;
  }
  return out;
}

async function settleAndMeasure(inspector: ThreadInspector): Promise<Mem> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with node --expose-gc');
  for (let i = 0; i < 3; i++) {
    gc();
    await inspector.gc();
    await sleep(200);
  }
  const m = process.memoryUsage();
  const t = await inspector.heapUsage();
  const thread = await inspector.stats();
  return {
    rss: m.rss,
    rssAnon: rssAnon(),
    mainHeapUsed: m.heapUsed,
    mainHeapTotal: m.heapTotal,
    external: m.external,
    arrayBuffers: m.arrayBuffers,
    threadHeapUsed: t.used,
    threadHeapTotal: t.total,
    smaps: smapsSummary(),
    thread,
  };
}

function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>(
      (_, rej) => (t = setTimeout(() => rej(new Error(`out of time waiting for ${what}`)), Math.max(0, ms))),
    ),
  ]).finally(() => clearTimeout(t));
}

async function inBatches(count: number, width: number, f: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, count) }, async () => {
      while (next < count) await f(next++);
    }),
  );
}

async function measureRun(cfg: RunConfig): Promise<RunResult> {
  // Quiet: the contract workflow logs a warning for every release it did not grant.
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const scenario = makeScenario(cfg.scenario, cfg.scenarioOptions);
  const taskQueue = `heap-${cfg.run}`;
  const connection = await NativeConnection.connect({ address: cfg.address });
  const clientConnection = await Connection.connect({ address: cfg.address });
  const client = new Client({ connection: clientConnection });
  const ctx: ScenarioContext = { client, taskQueue, run: cfg.run };
  const worker = await Worker.create({
    connection,
    taskQueue,
    workflowBundle: { codePath: scenario.bundlePath },
    activities: scenario.activities?.(ctx) ?? {},
    maxConcurrentActivityTaskExecutions: 20,
    reuseV8Context: cfg.reuseV8Context,
    shutdownGraceTime: '1s',
    ...(cfg.cache === 'default' ? {} : { maxCachedWorkflows: cfg.cache }),
  });
  // Creations and evictions: a protected counter of the SDK Worker (a bench may look).
  let created = 0;
  const subject = (
    worker as unknown as { numCachedWorkflowsSubject?: { value: number; subscribe(f: (v: number) => void): unknown } }
  ).numCachedWorkflowsSubject;
  let last = subject?.value ?? 0;
  subject?.subscribe((v) => {
    if (v > last) created += v - last;
    last = v;
  });
  const inspector = new ThreadInspector();
  const remaining = (): number => cfg.deadline - Date.now();
  const check = (what: string): void => {
    if (remaining() < 0) throw new Error(`${cfg.label}: out of time while ${what}`);
  };
  const query = (extra: string): string =>
    `TaskQueue = "${taskQueue}" AND WorkflowType = "${scenario.workflowType}" AND ${extra}`;
  const countOf = async (q: string): Promise<number> => (await client.workflow.count(q)).count;
  const waitIdle = async (): Promise<void> => {
    let quiet = 0;
    while (quiet < 4) {
      check('waiting for the worker to go idle');
      const s = worker.getStatus();
      quiet = s.numInFlightWorkflowActivations === 0 && s.numInFlightActivities === 0 ? quiet + 1 : 0;
      await sleep(250);
    }
  };
  let peakRss = 0;
  let peakCached = 0;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
    peakCached = Math.max(peakCached, worker.getStatus().numCachedWorkflows);
  }, 250);

  const t00 = Date.now();
  const progress = (what: string): void => {
    if (cfg.verbose)
      process.stderr.write(
        `  [${cfg.label} N=${cfg.n} cache=${cfg.cache} +${((Date.now() - t00) / 1000).toFixed(1)}s] ${what}\n`,
      );
  };
  const body = async (): Promise<RunResult> => {
    await inspector.attach();
    progress('worker running, inspector attached to the workflow thread');
    await scenario.setup?.(ctx);
    // Warm-up: a few workflows start to finish (compiles the bundle's functions, fills code caches).
    const warm: Array<{ i: number; id: string }> = [];
    for (let w = 0; w < cfg.warmup; w++) {
      const spec = scenario.start(1_000_000 + w, ctx);
      await client.workflow.start(scenario.workflowType, {
        taskQueue,
        workflowId: spec.workflowId,
        args: spec.args,
        ...(spec.typedSearchAttributes ? { typedSearchAttributes: spec.typedSearchAttributes } : {}),
        ...(spec.memo ? { memo: spec.memo } : {}),
      });
      warm.push({ i: 1_000_000 + w, id: spec.workflowId });
    }
    while ((await countOf(query(`ExecutionStatus = "Running" AND ${scenario.waitingQuery}`))) < cfg.warmup) {
      check('warming up');
      await sleep(300);
    }
    progress(`${cfg.warmup} warm-up workflows parked`);
    for (const w of warm) {
      const h = client.workflow.getHandle(w.id);
      await scenario.release(h, w.i, ctx);
      const problem = scenario.checkResult(
        await withDeadline(h.result(), remaining(), `the warm-up workflow ${w.id}`),
        w.i,
      );
      if (problem) throw new Error(`${cfg.label}: warm-up workflow ${w.id} did not end as expected: ${problem}`);
    }
    await waitIdle();
    progress('warmed up');
    const baseline = await settleAndMeasure(inspector);
    progress(
      `baseline: RSS ${(baseline.rss / MB).toFixed(0)} MB, workflow heap ${(baseline.threadHeapUsed / MB).toFixed(0)} MB`,
    );
    let snapshots: RunResult['snapshots'];
    if (cfg.snapshotDir) {
      snapshots = {
        before: join(cfg.snapshotDir, `${cfg.run}-0.heapsnapshot`),
        after: join(cfg.snapshotDir, `${cfg.run}-${cfg.n}.heapsnapshot`),
      };
      await snapshotWorkflowThread(worker, snapshots.before);
      progress(`snapshot ${snapshots.before}`);
    }

    const t0 = Date.now();
    const handles: string[] = [];
    await inBatches(cfg.n, 20, async (i) => {
      const spec = scenario.start(i, ctx);
      await client.workflow.start(scenario.workflowType, {
        taskQueue,
        workflowId: spec.workflowId,
        args: spec.args,
        ...(spec.typedSearchAttributes ? { typedSearchAttributes: spec.typedSearchAttributes } : {}),
        ...(spec.memo ? { memo: spec.memo } : {}),
      });
      handles[i] = spec.workflowId;
    });
    progress(`${cfg.n} started`);
    for (let polls = 0; ; polls++) {
      check(`waiting for ${cfg.n} workflows to park`);
      const c = await countOf(query(`ExecutionStatus = "Running" AND ${scenario.waitingQuery}`));
      if (c >= cfg.n) break;
      if (polls % 20 === 0) progress(`${c} of ${cfg.n} parked, ${worker.getStatus().numCachedWorkflows} cached`);
      await sleep(500);
    }
    await waitIdle();
    const startSeconds = (Date.now() - t0) / 1000;
    const cachedAtLoaded = worker.getStatus().numCachedWorkflows;
    const loadedBeforeGc = {
      rss: process.memoryUsage.rss(),
      threadHeapUsed: (await inspector.heapUsage()).used,
      mainHeapUsed: process.memoryUsage().heapUsed,
    };
    const loaded = await settleAndMeasure(inspector);
    progress(
      `loaded: RSS ${(loaded.rss / MB).toFixed(0)} MB, workflow heap ${(loaded.threadHeapUsed / MB).toFixed(0)} MB, ${cachedAtLoaded} cached`,
    );
    if (snapshots) {
      await snapshotWorkflowThread(worker, snapshots.after);
      progress(`snapshot ${snapshots.after}`);
    }

    let release: RunResult['release'];
    let released: Mem | undefined;
    if (cfg.release) {
      const t1 = Date.now();
      const closedBefore = await countOf(query('ExecutionStatus != "Running"'));
      await inBatches(cfg.n, 20, (i) => scenario.release(client.workflow.getHandle(handles[i]!), i, ctx));
      progress(`${cfg.n} released`);
      while ((await countOf(query('ExecutionStatus != "Running"'))) < closedBefore + cfg.n) {
        check(`waiting for ${cfg.n} workflows to finish`);
        await sleep(500);
      }
      const failed: string[] = [];
      let completed = 0;
      await inBatches(cfg.n, 20, async (i) => {
        try {
          const problem = scenario.checkResult(
            await withDeadline(client.workflow.getHandle(handles[i]!).result(), remaining(), handles[i]!),
            i,
          );
          if (problem) failed.push(`${handles[i]}: ${problem}`);
          else completed++;
        } catch (err) {
          failed.push(`${handles[i]}: ${(err as Error).message}`);
        }
      });
      release = { completed, failed: failed.slice(0, 20), seconds: (Date.now() - t1) / 1000 };
      await waitIdle();
      released = await settleAndMeasure(inspector);
    }
    return {
      label: cfg.label,
      scenario: cfg.scenario,
      n: cfg.n,
      cache: String(cfg.cache),
      maxCachedWorkflows: worker.options.maxCachedWorkflows,
      heapSizeLimitMiB: getHeapStatistics().heap_size_limit / MB,
      baseline,
      loaded,
      loadedBeforeGc,
      ...(released ? { released } : {}),
      cachedAtLoaded,
      peakCached,
      peakRss,
      ...(subject ? { workflowsCreated: created } : {}),
      startSeconds,
      ...(release ? { release } : {}),
      ...(snapshots ? { snapshots } : {}),
    };
  };
  try {
    return await worker.runUntil(body());
  } finally {
    clearInterval(sampler);
    inspector.close();
    await Promise.allSettled([connection.close(), clientConnection.close()]);
  }
}

function childMain(): void {
  const giveUp = setTimeout(() => process.exit(3), 30 * 60_000);
  giveUp.unref();
  process.once('message', (cfg: RunConfig) => {
    const stop = setTimeout(() => process.exit(3), Math.max(1000, cfg.deadline - Date.now() + 30_000));
    stop.unref();
    measureRun(cfg).then(
      (result) => process.send!({ ok: true, result }, () => process.exit(0)),
      (err: unknown) => process.send!({ ok: false, error: (err as Error).stack ?? String(err) }, () => process.exit(1)),
    );
  });
}

// ---------------------------------------------------------------- orchestration (parent) ----

interface Args {
  scenarios: string[];
  counts: number[];
  caches: Array<number | 'default'>;
  snapshot: number;
  snapshotScenarios: string[];
  release: boolean;
  warmup: number;
  reuseV8Context: boolean;
  bundle?: string;
  preload?: string[];
  workflowType?: string;
  inputFile?: string;
  temporal?: string;
  timeoutMin: number;
  json?: string;
  keep: boolean;
  verbose: boolean;
  /** Extra environment of the measuring processes (e.g. MALLOC_ARENA_MAX=2). */
  env: Record<string, string>;
  analyse?: [string, string, number];
}

type KeysOf<T, V> = { [K in keyof T]-?: T[K] extends V ? K : never }[keyof T];

/** The options that take one value and store it as it is, as a number, as an absolute path or as a comma-separated list. */
type ValueOption =
  | { kind: 'number'; key: KeysOf<Args, number> }
  | { kind: 'numbers'; key: KeysOf<Args, number[]> }
  | { kind: 'list'; key: KeysOf<Args, string[]> }
  | { kind: 'string' | 'path'; key: KeysOf<Required<Args>, string> };

const VALUE_OPTIONS: ReadonlyMap<string, ValueOption> = new Map<string, ValueOption>([
  ['--scenarios', { kind: 'list', key: 'scenarios' }],
  ['--counts', { kind: 'numbers', key: 'counts' }],
  ['--snapshot', { kind: 'number', key: 'snapshot' }],
  ['--snapshot-scenarios', { kind: 'list', key: 'snapshotScenarios' }],
  ['--warmup', { kind: 'number', key: 'warmup' }],
  ['--bundle', { kind: 'path', key: 'bundle' }],
  ['--workflow-type', { kind: 'string', key: 'workflowType' }],
  ['--input-file', { kind: 'path', key: 'inputFile' }],
  ['--temporal', { kind: 'string', key: 'temporal' }],
  ['--timeout-min', { kind: 'number', key: 'timeoutMin' }],
  ['--json', { kind: 'path', key: 'json' }],
]);

function parseArgs(argv: string[]): Args {
  const a: Args = {
    scenarios: ['floor', 'amendment'],
    counts: [100, 1000],
    caches: ['default', 50],
    snapshot: 200,
    snapshotScenarios: ['amendment'],
    release: true,
    warmup: 5,
    reuseV8Context: true,
    timeoutMin: 60,
    keep: false,
    verbose: false,
    env: {},
  };
  const list = (v: string | undefined): string[] =>
    (v ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const v = (): string => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${k} needs a value`);
      return x;
    };
    switch (k) {
      case '--caches':
        a.caches = list(v()).map((c) => (c === 'default' ? 'default' : Number(c)));
        break;
      case '--no-release':
        a.release = false;
        break;
      case '--reuse-v8-context':
        a.reuseV8Context = v() !== 'false';
        break;
      case '--preload':
        // "zod" preloads src/workflows/preload-zod.ts (a bare 'zod' is dropped by webpack: sideEffects false);
        // "raw:NAME" passes NAME as it is; a path is made absolute.
        // "none": bundle lib/workflows with no preloadModules at all (e.g. to compare with a bundle built with them).
        a.preload = list(v())
          .filter((m) => m !== 'none')
          .map((m) =>
            m === 'zod'
              ? require.resolve('../workflows/preload-zod')
              : m.startsWith('raw:')
                ? m.slice(4)
                : m.startsWith('.') || m.includes('/')
                  ? resolve(m)
                  : m,
          );
        break;
      case '--keep':
        a.keep = true;
        break;
      case '--verbose':
        a.verbose = true;
        break;
      case '--env': {
        const [name, ...rest] = v().split('=');
        a.env[name!] = rest.join('=');
        break;
      }
      case '--analyse':
        a.analyse = [resolve(v()), resolve(v()), Number(v())];
        break;
      case '--help':
      case '-h':
        process.stdout.write(
          `${
            readFileSync(__filename, 'utf8')
              .match(/\/\*\*([\s\S]*?)\*\//)?.[1]
              ?.replace(/^ \* ?/gm, '') ?? ''
          }\n`,
        );
        process.exit(0);
        break;
      default: {
        const option = VALUE_OPTIONS.get(k);
        if (!option) throw new Error(`unknown option ${k} (see --help)`);
        const x = v();
        if (option.kind === 'number') a[option.key] = Number(x);
        else if (option.kind === 'numbers') a[option.key] = list(x).map(Number);
        else if (option.kind === 'list') a[option.key] = list(x);
        else a[option.key] = option.kind === 'path' ? resolve(x) : x;
      }
    }
  }
  for (const n of a.counts) if (!Number.isInteger(n) || n < 1) throw new Error(`bad count ${n}`);
  for (const c of a.caches)
    if (c !== 'default' && (!Number.isInteger(c) || c < 2)) throw new Error(`bad cache size ${c}`);
  return a;
}

const quietLogger = { trace() {}, debug() {}, info() {}, warn: console.warn, error: console.error, log() {} };

let currentChild: ChildProcess | undefined;

function runChild(cfg: RunConfig, env: Record<string, string>): Promise<RunResult> {
  return new Promise((res, rej) => {
    const child = fork(__filename, ['--child'], {
      execArgv: ['--expose-gc'],
      env: { ...process.env, ...env },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    currentChild = child;
    let answer: { ok: boolean; result?: RunResult; error?: string } | undefined;
    const kill = setTimeout(() => child.kill('SIGKILL'), Math.max(1000, cfg.deadline - Date.now() + 60_000));
    child.on('message', (m: typeof answer) => {
      answer = m;
    });
    child.on('exit', (code, signal) => {
      clearTimeout(kill);
      currentChild = undefined;
      if (answer?.ok && answer.result) res(answer.result);
      else rej(new Error(`${cfg.label}: ${answer?.error ?? `the measuring process exited (${signal ?? code})`}`));
    });
    child.send(cfg);
  });
}

const mb = (b: number): string => `${(b / MB).toFixed(0)}`;
const perWf = (b: number): string => (Math.abs(b) >= MB ? `${(b / MB).toFixed(2)} MB` : `${(b / 1024).toFixed(0)} KB`);

function row(r: RunResult): string {
  const d = (k: Exclude<keyof Mem, 'smaps' | 'thread'>): number => (r.loaded[k] - r.baseline[k]) / r.n;
  const native = d('rss') - d('threadHeapTotal') - d('mainHeapTotal');
  const rel = r.release
    ? `${r.release.completed}/${r.n} completed in ${r.release.seconds.toFixed(0)} s${r.release.failed.length ? ` (FAILED: ${r.release.failed[0]})` : ''}`
    : '-';
  return [
    r.label.padEnd(22),
    `${r.cache === 'default' ? `default=${r.maxCachedWorkflows}` : r.cache}`.padEnd(13),
    String(r.n).padStart(5),
    `${mb(r.baseline.rss)} -> ${mb(r.loaded.rss)}`.padStart(13),
    perWf(d('rss')).padStart(9),
    perWf((r.loadedBeforeGc.rss - r.baseline.rss) / r.n).padStart(9),
    perWf(d('threadHeapUsed')).padStart(9),
    perWf(d('mainHeapUsed')).padStart(9),
    perWf(native).padStart(9),
    `${r.cachedAtLoaded}/${r.peakCached}`.padStart(9),
    mb(r.peakRss).padStart(6),
    r.released ? `${mb(r.released.rss)}/${mb(r.released.threadHeapUsed)}`.padStart(10) : '-'.padStart(10),
    `${r.startSeconds.toFixed(0)}`.padStart(5),
    ` ${rel}${r.workflowsCreated !== undefined ? `; ${r.workflowsCreated} instances created` : ''}`,
  ].join(' ');
}

/** The RSS growth per workflow by kind of mapping (see smapsSummary). */
function smapsLine(r: RunResult): string {
  const kinds = new Set([...Object.keys(r.baseline.smaps), ...Object.keys(r.loaded.smaps)]);
  const parts = [...kinds]
    .map((k) => ({ k, d: ((r.loaded.smaps[k] ?? 0) - (r.baseline.smaps[k] ?? 0)) / r.n }))
    .filter((x) => Math.abs(x.d) >= 1024)
    .sort((a, b) => b.d - a.d)
    .map((x) => `${x.k} ${x.d >= 0 ? '+' : ''}${perWf(x.d)}`);
  const tk = new Set([...Object.keys(r.baseline.thread ?? {}), ...Object.keys(r.loaded.thread ?? {})]);
  const threadParts = [...tk]
    .map((k) => ({ k, d: ((r.loaded.thread?.[k] ?? 0) - (r.baseline.thread?.[k] ?? 0)) / r.n }))
    .filter((x) => Math.abs(x.d) >= 1024 || x.k === 'nativeContexts')
    .map(
      (x) =>
        `${x.k} ${x.k === 'nativeContexts' ? `${r.baseline.thread?.[x.k] ?? '?'} -> ${r.loaded.thread?.[x.k] ?? '?'}` : `${x.d >= 0 ? '+' : ''}${perWf(x.d)}`}`,
    );
  return `${''.padEnd(22)} RSS growth per workflow by mapping: ${parts.join(', ') || '-'}\n${''.padEnd(22)} workflow thread, per workflow: ${threadParts.join(', ') || '-'}`;
}

const HEADER = [
  'run'.padEnd(22),
  'cache'.padEnd(13),
  'N'.padStart(5),
  'RSS MB'.padStart(13),
  'RSS/wf'.padStart(9),
  'noGC/wf'.padStart(9),
  'wfheap/wf'.padStart(9),
  'main/wf'.padStart(9),
  'native/wf'.padStart(9),
  'cached'.padStart(9),
  'peakMB'.padStart(6),
  'after MB'.padStart(10),
  'start'.padStart(5),
  ' release (signal all, check results)',
].join(' ');

function printComparison(c: SnapshotComparison, label: string): void {
  const kb = (b: number): string => `${(b / 1024).toFixed(1)} KB`;
  const out: string[] = [];
  out.push(`\n== heap snapshot of the workflow thread: ${label}, 0 vs ${c.per} cached workflows`);
  out.push(
    `   nodes ${c.before.nodes} -> ${c.after.nodes}; self sizes ${mb(c.before.totalSelf)} -> ${mb(c.after.totalSelf)} MB: ${kb((c.after.totalSelf - c.before.totalSelf) / c.per)} per workflow`,
  );
  out.push('   difference per workflow, by class (self size, count):');
  for (const x of c.diff.slice(0, 25))
    out.push(`     ${kb(x.selfPer).padStart(10)}  ${x.countPer.toFixed(0).padStart(6)}  ${x.name}`);
  out.push('   closures per workflow, by function name:');
  for (const x of c.closuresDiff.slice(0, 12))
    out.push(`     ${kb(x.selfPer).padStart(10)}  ${x.countPer.toFixed(0).padStart(6)}  ${x.name}`);
  const b = c.breakdown;
  if (b) {
    out.push(
      `   retained per cached workflow (${b.workflows} ${b.rootClass} objects): median ${kb(b.retainedMedian)}, avg ${kb(b.retainedAvg)} (min ${kb(b.retainedMin)}: the one the shared context points at, max ${kb(b.retainedMax)})`,
    );
    out.push(
      `   per workflow by bundle module (re-evaluated for every workflow; each module claims the objects it reaches first, leaves first; ${b.moduleSample} workflows near the median):`,
    );
    for (const p of b.packages.slice(0, 12))
      out.push(`     ${kb(p.retainedPer).padStart(10)}  ${String(p.modules).padStart(4)} modules  ${p.name}`);
    out.push('   largest modules (claimed per workflow):');
    for (const m of b.modules.slice(0, 15)) out.push(`     ${kb(m.retainedPer).padStart(10)}  ${m.id}`);
    out.push('   what the workflows dominate, per workflow, by class (self size, count):');
    for (const x of b.byClass.slice(0, 25))
      out.push(`     ${kb(x.selfPer).padStart(10)}  ${x.countPer.toFixed(0).padStart(6)}  ${x.name}`);
    out.push('   closures the workflows dominate, per workflow:');
    for (const x of b.closures.slice(0, 12))
      out.push(`     ${kb(x.selfPer).padStart(10)}  ${x.countPer.toFixed(0).padStart(6)}  ${x.name}`);
    out.push('   dominator tree of the median workflow (retained / self):');
    for (const t of b.tree)
      out.push(`     ${kb(t.retained).padStart(10)} ${kb(t.self).padStart(9)}  ${'  '.repeat(t.depth)}${t.label}`);
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

async function parentMain(args: Args): Promise<void> {
  if (args.analyse) {
    printComparison(compareSnapshots(args.analyse[0], args.analyse[1], args.analyse[2]), 'saved snapshots');
    return;
  }
  const tmp = mkdtempSync(join(tmpdir(), 'amendctl-heap-'));
  const deadline = Date.now() + args.timeoutMin * 60_000;
  let server: DevServer | undefined;
  const cleanup = async (): Promise<void> => {
    if (currentChild?.pid) currentChild.kill('SIGKILL');
    await server?.stop();
    if (!args.keep) rmSync(tmp, { recursive: true, force: true });
  };
  const onSignal = (): void => {
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const overall = setTimeout(
    () => {
      process.stderr.write(`heap bench: out of time (${args.timeoutMin} min); stopping\n`);
      void cleanup().finally(() => process.exit(2));
    },
    args.timeoutMin * 60_000 + 90_000,
  );
  overall.unref();

  const results: RunResult[] = [];
  const comparisons: Array<{ label: string; comparison: SnapshotComparison }> = [];
  try {
    const scenarioOptions: ScenarioOptions = {
      ...(args.bundle ? { bundle: args.bundle } : {}),
      ...(args.workflowType ? { workflowType: args.workflowType } : {}),
      ...(args.inputFile ? { inputFile: args.inputFile } : {}),
    };
    const names = new Set([...args.scenarios, ...(args.snapshot > 0 ? args.snapshotScenarios : [])]);
    scenarioOptions.floorBundles = {};
    for (const [name, entry] of Object.entries(FLOOR_ENTRIES)) {
      if (!names.has(name)) continue;
      const file = join(tmp, `${name.replace(/\W/g, '-')}-bundle.js`);
      writeFileSync(
        file,
        (
          await bundleWorkflowCode({
            workflowsPath: require.resolve(entry.module),
            logger: quietLogger,
            ...(args.preload ? { preloadModules: args.preload } : {}),
          })
        ).code,
      );
      scenarioOptions.floorBundles[name] = file;
    }
    if (args.preload) {
      const bundle = join(tmp, 'preload-bundle.js');
      writeFileSync(
        bundle,
        (
          await bundleWorkflowCode({
            workflowsPath: require.resolve('../workflows'),
            preloadModules: args.preload,
            logger: quietLogger,
          })
        ).code,
      );
      scenarioOptions.bundle = bundle;
    }
    const amendmentBundle = scenarioOptions.bundle ?? resolve(ROOT, 'lib', 'workflow-bundle.js');
    if (names.has('amendment') && !existsSync(amendmentBundle))
      throw new Error(`no workflow bundle at ${amendmentBundle}: run npm run build`);
    let address = args.temporal;
    if (!address) {
      server = await startDevServer({
        cli: await findTemporalCli(),
        port: await freePort(),
        headless: true,
        dbFile: join(tmp, 't.db'),
        logFile: join(tmp, 'temporal.log'),
      });
      address = server.address;
    }
    const variant = `${args.preload?.length === 0 ? ' no preload' : ''}${args.preload?.length ? ` +preload(${args.preload.map((m) => m.replace(/^.*\/(preload-)?/, '').replace(/\.js$/, '')).join(',')})` : ''}${args.reuseV8Context ? '' : ' noReuseV8'}${Object.entries(
      args.env,
    )
      .map(([k, v]) => ` ${k}=${v}`)
      .join('')}`;
    process.stdout.write(
      `amendctl worker memory per cached workflow (node ${process.version}, Temporal ${address}, ${args.reuseV8Context ? 'reuseV8Context' : 'one V8 context per workflow'}; per-workflow figures: (loaded - baseline) / N after GC)\n` +
        `   noGC: RSS growth before the forced GC (what a process monitor sees); wfheap: V8 heap used of the workflow thread; main: of the main thread;\n` +
        `   native: RSS - both V8 heaps committed (Rust core, malloc, code); a snapshot run's RSS includes the snapshots' own buffers\n` +
        `   cached: cached workflows when measured / peak; after MB: RSS / workflow-thread heap once all were released and finished\n${HEADER}\n`,
    );
    let k = 0;
    const cfgFor = (scenario: string, n: number, cache: number | 'default', snapshotDir?: string): RunConfig => ({
      label: `${scenario}${variant}`,
      scenario,
      scenarioOptions,
      n,
      cache,
      reuseV8Context: args.reuseV8Context,
      address: address!,
      run: `r${Date.now().toString(36)}${k++}`,
      warmup: args.warmup,
      release: args.release,
      deadline,
      verbose: args.verbose,
      ...(snapshotDir ? { snapshotDir } : {}),
    });
    for (const scenario of args.scenarios) {
      for (const cache of args.caches) {
        for (const n of args.counts) {
          try {
            const r = await runChild(cfgFor(scenario, n, cache), args.env);
            results.push(r);
            process.stdout.write(`${row(r)}\n${smapsLine(r)}\n`);
          } catch (err) {
            process.stdout.write(
              `${`${scenario}${variant}`.padEnd(22)} ${String(cache).padEnd(13)} ${String(n).padStart(5)}  FAILED: ${(err as Error).message.split('\n').slice(0, 3).join(' | ')}\n`,
            );
          }
        }
      }
    }
    if (args.snapshot > 0) {
      for (const scenario of args.snapshotScenarios) {
        const r = await runChild(cfgFor(scenario, args.snapshot, 'default', tmp), args.env);
        results.push(r);
        process.stdout.write(`${row(r)}  [snapshot run]\n${smapsLine(r)}\n`);
        const comparison = compareSnapshots(r.snapshots!.before, r.snapshots!.after, r.n);
        comparisons.push({ label: r.label, comparison });
        printComparison(comparison, r.label);
      }
    }
  } finally {
    const json = args.json ?? join(tmpdir(), `amendctl-heap-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(json, JSON.stringify({ results, comparisons }, null, 2));
    process.stdout.write(`\nresults: ${json}${args.keep ? `; snapshots and the server log: ${tmp}` : ''}\n`);
    clearTimeout(overall);
    await cleanup();
  }
}

if (require.main === module) {
  if (process.argv[2] === '--child') childMain();
  else {
    let args: Args;
    try {
      args = parseArgs(process.argv.slice(2));
    } catch (err) {
      process.stderr.write(`${(err as Error).message}\n`);
      process.exit(64);
    }
    parentMain(args).then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`heap bench failed: ${(err as Error).stack ?? String(err)}\n`);
        process.exit(1);
      },
    );
  }
}
