/**
 * The bench's context: one Temporal client (amendctl's data converter, the codec) for every
 * measurement, the workers (in this process for latency, or one process each where RSS must
 * be the worker's own), running one amendment or one floor workflow and timing it, progress,
 * the run's time limit, and cleaning up what it started.
 *
 * amendctl is driven only through its public client (AmendctlClient: submitAmendment, the
 * amendment's handle, getStatus) and Temporal's client (history, counts), so the bench
 * measures whichever workflow the client starts.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import type { PayloadCodec } from '@temporalio/common';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { AmendctlClient, FINAL_STATUSES, type AmendmentView, temporalTarget } from '../../client';
import { AesGcmCodec, dataConverter, parseKeyList } from '../../codec';
import { createAmendctlWorker, type AmendctlWorker } from '../../worker';
import type { FloorLane, FloorOpsResult } from '../floor-workflows';
import { Docs, REFERENCE_RULES, REFERENCE_TARGETS } from './docs';
import { createFloorWorker, floorBundleCode, writeFloorBundle, type FloorWorker } from './floor';
import { historyStats, pool, readRss, type Rss, sleep, TimeoutError, withTimeout } from './measure';
import type { CaseId, Figure } from './report';
import { ROOT, referenceWorkerEnv, type StackEnv } from './stack';

/**
 * The requests a second each reference target allows in the bench (its `rateLimit`), unless
 * AMENDCTL_IDP_RATE / AMENDCTL_WAREHOUSE_RATE say otherwise. The floor's no-op activities
 * have no target behind them, so the bench gives the targets room: under the reference file's
 * example limit (50 a second) a 3-user baseline's 21 SCIM requests alone cap ten at once at
 * 2.4 a second, and a 10,000-user baseline's 40,000 at 800 s.
 */
export const BENCH_TARGET_RATE = '1000';
export interface Sizes {
  /** (a), (b): timed runs at concurrency 1, per side. */
  runs: number;
  /** Untimed runs per side before timing (the first workflows load code, open connections). */
  warmup: number;
  /** (a): amendments (and floor workflows) at concurrency `concurrency`, each of its own contract. */
  many: number;
  concurrency: number;
  /** (d): named users of the big baselines. */
  users: number[];
  /** (d): no-op activities per target in the floor sample the big baselines' floor is extrapolated from. */
  floorSample: number;
  /** (e): amendments (and bare workflows) pending. */
  pending: number[];
  /** (f): amendments in a row on one contract, and the window compared (first N, last N). */
  row: number;
  rowWindow: number;
}

export const FULL: Sizes = {
  runs: 30,
  warmup: 3,
  many: 60,
  concurrency: 10,
  users: [1000, 10000],
  floorSample: 500,
  pending: [1000, 10000],
  row: 1000,
  rowWindow: 100,
};
export const SMALL: Sizes = {
  runs: 3,
  warmup: 1,
  many: 20,
  concurrency: 10,
  users: [100, 300],
  floorSample: 100,
  pending: [50],
  row: 50,
  rowWindow: 25,
};

export interface BenchOptions {
  sizes: Sizes;
  /** Epoch ms: phases stop taking new work after this and report what they have. */
  deadline: number;
  /** The servers are shared (the test harness's): terminate what the bench leaves running. */
  shared?: boolean;
  /** Progress lines; default stdout. */
  log?: (line: string) => void;
  /** A worker process above this RSS (MB) takes no more work (case e): the machine is shared. Default: half the memory, at most 8 GB. */
  rssCapMB?: number;
  /** Folder for the worker processes' logs and the floor bundle. */
  dir: string;
  namespace?: string;
}

export interface Timed<T> {
  ms: number;
  result: T;
}

export interface AmendmentRun {
  ms: number;
  amendmentId: string;
  workflowId: string;
  contractId: string;
  status: string;
  view?: AmendmentView;
  error?: string;
}

const quiet = (): void => {
  try {
    Runtime.install({ logger: new DefaultLogger('WARN') });
  } catch {
    // installed already (another bench or test in this process)
  }
};

/** A worker in its own process (src/bench/e2e/worker-proc.ts), so its RSS is its own. */
export interface ChildWorker {
  mode: 'amendctl' | 'floor';
  taskQueue: string;
  pid: number;
  /** Floor only: how many floorPendingWorkflows are waiting (reported by the worker's sink). */
  waiting: number;
  /** The worker's own view of its memory (process.memoryUsage(), MB), reported every second: where the RSS is. */
  memory?: Record<string, number>;
  rss(): Rss | undefined;
  stop(): Promise<void>;
}

export class Bench {
  readonly docs = new Docs();
  readonly figures: Figure[] = [];
  readonly raw: Record<string, unknown> = {};
  readonly codec: PayloadCodec;
  private readonly workerEnvVars: Record<string, string>;
  private inproc?: Promise<{ amendctl: AmendctlClient; floorTq: string; stop(): Promise<void> }>;
  private readonly children = new Set<ChildWorker>();
  private readonly queues = new Set<string>();
  private floorBundleFile?: Promise<string>;
  private queueCount = 0;
  private lastProgress = 0;

  private constructor(
    readonly stack: StackEnv,
    readonly opts: BenchOptions,
    readonly client: Client,
  ) {
    this.codec = new AesGcmCodec(parseKeyList(stack.AMENDCTL_CODEC_KEYS));
    this.workerEnvVars = Bench.workerEnv(stack);
  }

  get sizes(): Sizes {
    return this.opts.sizes;
  }

  get rssCapBytes(): number {
    return (this.opts.rssCapMB ?? Math.min(8192, totalmem() / 2 / 1024 / 1024)) * 1024 * 1024;
  }

  get namespace(): string {
    return this.opts.namespace ?? 'default';
  }

  /** The worker's environment for the reference targets on the bench's servers (credentials only via env). */
  static workerEnv(s: StackEnv): Record<string, string> {
    return {
      ...referenceWorkerEnv(s),
      AMENDCTL_IDP_RATE: process.env.AMENDCTL_IDP_RATE ?? BENCH_TARGET_RATE,
      AMENDCTL_WAREHOUSE_RATE: process.env.AMENDCTL_WAREHOUSE_RATE ?? BENCH_TARGET_RATE,
    };
  }

  static async create(stack: StackEnv, opts: BenchOptions): Promise<Bench> {
    quiet();
    // Connectors and the audit store read the worker's process environment; clients read the codec keys from it.
    Object.assign(process.env, Bench.workerEnv(stack));
    const target = temporalTarget({
      address: stack.AMENDCTL_TEST_TEMPORAL_ADDRESS,
      namespace: opts.namespace ?? 'default',
    });
    const connection = await Connection.connect({ address: target.address, connectTimeout: '5s' });
    const client = new Client({
      connection,
      namespace: target.namespace,
      dataConverter: dataConverter(process.env, parseKeyList(stack.AMENDCTL_CODEC_KEYS)),
    });
    return new Bench(stack, opts, client);
  }

  // ---- time, progress ----

  timeLeft(): number {
    return this.opts.deadline - Date.now();
  }

  outOfTime(): boolean {
    return this.timeLeft() <= 0;
  }

  log(line: string): void {
    (this.opts.log ?? ((l: string) => process.stdout.write(`${l}\n`)))(line);
  }

  /** A progress line with counts: at most every 5 s (and always the last). */
  progress(phase: string, done: number, total: number, extra = ''): void {
    const now = Date.now();
    if (done < total && now - this.lastProgress < 5000) return;
    this.lastProgress = now;
    this.log(`  [${phase}] ${done}/${total}${extra ? ` ${extra}` : ''}`);
  }

  add(f: Figure): void {
    this.figures.push(f);
  }

  taskQueue(name: CaseId | string, side: 'amendctl' | 'floor'): string {
    const tq = `bench-${this.docs.tag}-${name}-${side}-${++this.queueCount}`;
    this.queues.add(tq);
    return tq;
  }

  // ---- workers ----

  /** amendctl's worker and the floor's worker in this process (latency cases), created once. */
  inProcess(): Promise<{ amendctl: AmendctlClient; floorTq: string; stop(): Promise<void> }> {
    this.inproc ??= (async () => {
      const amendctlTq = this.taskQueue('inproc', 'amendctl');
      const floorTq = this.taskQueue('inproc', 'floor');
      const aw: AmendctlWorker = await createAmendctlWorker({
        temporal: temporalTarget({ address: this.stack.AMENDCTL_TEST_TEMPORAL_ADDRESS, namespace: this.namespace }),
        env: { ...process.env, ...this.workerEnvVars },
        files: {
          taskQueue: amendctlTq,
          targetsFile: REFERENCE_TARGETS,
          rulesFile: REFERENCE_RULES,
          approvalsFile: undefined,
        },
        worker: { shutdownGraceTime: '2s' },
      });
      let fw: FloorWorker;
      try {
        fw = await createFloorWorker({
          address: this.stack.AMENDCTL_TEST_TEMPORAL_ADDRESS,
          namespace: this.namespace,
          taskQueue: floorTq,
          dataConverter: dataConverter(process.env, parseKeyList(this.stack.AMENDCTL_CODEC_KEYS)),
          bundle: { code: await floorBundleCode() },
        });
      } catch (err) {
        aw.shutdown();
        throw err;
      }
      const running = Promise.allSettled([aw.run(), fw.run()]);
      return {
        amendctl: new AmendctlClient(this.client, amendctlTq),
        floorTq,
        async stop() {
          aw.shutdown();
          fw.shutdown();
          await withTimeout(running, 30_000, 'in-process workers did not stop').catch(() => undefined);
        },
      };
    })();
    return this.inproc;
  }

  async stopInProcess(): Promise<void> {
    const p = this.inproc;
    this.inproc = undefined;
    if (p) await (await p.catch(() => undefined))?.stop();
  }

  /** A worker in its own process; resolves once it polls. */
  async spawnWorker(mode: 'amendctl' | 'floor', taskQueue: string): Promise<ChildWorker> {
    const script = [join(__dirname, 'worker-proc.js'), resolve(ROOT, 'lib', 'bench', 'e2e', 'worker-proc.js')].find(
      (f) => existsSync(f),
    );
    if (!script) throw new Error('lib/bench/e2e/worker-proc.js is missing: run npm run build');
    this.floorBundleFile ??= writeFloorBundle(join(this.opts.dir, 'floor-workflow-bundle.js'));
    const floorBundle = await this.floorBundleFile;
    const fd = openSync(join(this.opts.dir, 'bench-workers.log'), 'a');
    let child: ChildProcess;
    try {
      child = fork(script, [], {
        env: {
          ...process.env,
          ...this.workerEnvVars,
          BENCH_WORKER_MODE: mode,
          BENCH_TASK_QUEUE: taskQueue,
          BENCH_TEMPORAL_ADDRESS: this.stack.AMENDCTL_TEST_TEMPORAL_ADDRESS,
          BENCH_NAMESPACE: this.namespace,
          BENCH_FLOOR_BUNDLE: floorBundle,
          BENCH_TARGETS: REFERENCE_TARGETS,
          BENCH_RULES: REFERENCE_RULES,
        },
        execArgv: [],
        stdio: ['ignore', fd, fd, 'ipc'],
      });
    } finally {
      closeSync(fd);
    }
    const exited = new Promise<void>((res) => child.once('exit', () => res()));
    const w: ChildWorker = {
      mode,
      taskQueue,
      pid: child.pid ?? -1,
      waiting: 0,
      rss: () => (child.pid ? readRss(child.pid) : undefined),
      stop: async () => {
        this.children.delete(w);
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
          await exited;
          clearTimeout(t);
        }
      },
    };
    this.children.add(w);
    const ready = new Promise<void>((res, rej) => {
      child.on('message', (m: { type: string; count?: number; message?: string; memory?: Record<string, number> }) => {
        if (m.type === 'ready') res();
        else if (m.type === 'memory') w.memory = m.memory;
        else if (m.type === 'waiting') w.waiting = m.count ?? w.waiting;
        else if (m.type === 'error') rej(new Error(`${mode} worker: ${m.message ?? 'failed'}`));
      });
      child.once('exit', (code) =>
        rej(
          new Error(
            `${mode} worker exited with code ${code} before it was ready (see ${join(this.opts.dir, 'bench-workers.log')})`,
          ),
        ),
      );
    });
    try {
      await withTimeout(ready, 120_000, `${mode} worker not ready after 120 s`);
    } catch (err) {
      await w.stop();
      throw err;
    }
    return w;
  }

  // ---- one run ----

  /** Start a floor workflow and wait for its result. */
  async floor(
    taskQueue: string,
    workflowType: 'floorOpsWorkflow' | 'floorRowWorkflow',
    workflowId: string,
    input: { lanes: FloorLane[]; contractId?: string; sequence?: number },
    timeoutMs = 120_000,
  ): Promise<Timed<FloorOpsResult>> {
    const t0 = performance.now();
    const handle = await this.client.workflow.start(workflowType, {
      taskQueue,
      workflowId,
      args: [input],
      workflowExecutionTimeout: `${Math.ceil(timeoutMs / 1000) + 60}s`,
    });
    const result = (await withTimeout(
      handle.result(),
      timeoutMs,
      `floor workflow ${workflowId} not done after ${timeoutMs} ms`,
    )) as FloorOpsResult;
    return { ms: performance.now() - t0, result };
  }

  /**
   * Submit an amendment and wait for its final view: start to result. The wait is the
   * amendment workflow's result (a long poll on the client's handle, no polling delay); if
   * that view is not final, the client's own waitForResult takes over.
   */
  async amendment(
    amendctl: AmendctlClient,
    doc: { amendmentId: string; contractId: string },
    timeoutMs = 120_000,
    watch = false,
  ): Promise<AmendmentRun> {
    const t0 = performance.now();
    const base = { amendmentId: doc.amendmentId, contractId: doc.contractId, workflowId: '' };
    try {
      const sub = await amendctl.submitAmendment(doc);
      base.workflowId = sub.workflowId;
      if (sub.duplicate) throw new Error(`${doc.amendmentId} was submitted before`);
      const wait = (async (): Promise<AmendmentView> => {
        const v = (await amendctl.handle(doc.amendmentId).result()) as AmendmentView | undefined;
        if (v && typeof v === 'object' && FINAL_STATUSES.has(v.status)) return v;
        return amendctl.waitForResult(doc.amendmentId, { pollMs: 50 });
      })();
      const watching = { done: false };
      const view = await withTimeout(
        watch ? Promise.race([wait, this.watchForFailure(sub.workflowId, watching)]) : wait,
        timeoutMs,
        `no result after ${Math.round(timeoutMs / 1000)} s`,
      ).finally(() => {
        watching.done = true;
      });
      const ms = performance.now() - t0;
      return {
        ...base,
        ms,
        status: view.status,
        view,
        ...(view.status === 'completed' ? {} : { error: `${view.status}: ${view.reason ?? ''}` }),
      };
    } catch (err) {
      const ms = performance.now() - t0;
      let error = (err as Error).message ?? String(err);
      const cause = (err as { cause?: { message?: string; cause?: { message?: string } } }).cause;
      if (cause?.message) error = `${error}: ${cause.message}${cause.cause?.message ? `: ${cause.cause.message}` : ''}`;
      if (base.workflowId && !(err instanceof TimeoutError)) {
        const h = await historyStats(this.client, base.workflowId, this.codec).catch(() => undefined);
        if (h?.failures[0]) error = `${error} (history: ${h.failures[0]})`;
      }
      return { ...base, ms, status: err instanceof TimeoutError ? 'timeout' : 'error', error };
    }
  }

  /**
   * Rejects as soon as the workflow is stuck on a failure that will not go away by itself:
   * a workflow task failing again and again, or an activity retrying on a size/limit error.
   */
  private async watchForFailure(workflowId: string, state: { done: boolean }): Promise<never> {
    const handle = this.client.workflow.getHandle(workflowId);
    while (!state.done) {
      await sleep(3000);
      if (state.done) break;
      const d = await handle.describe().catch((err: unknown) => {
        if (err instanceof WorkflowNotFoundError) throw err;
        return undefined;
      });
      if (!d || d.status.name !== 'RUNNING') continue; // closed: the result says how
      const wft = d.raw.pendingWorkflowTask;
      if (wft && (wft.attempt ?? 0) >= 3) {
        const h = await historyStats(this.client, workflowId, this.codec).catch(() => undefined);
        throw new Error(`workflow task failing (attempt ${wft.attempt}): ${h?.failures[0] ?? 'see the history'}`);
      }
      for (const a of d.raw.pendingActivities ?? []) {
        const msg = a.lastFailure?.message ?? '';
        if ((a.attempt ?? 0) >= 3 && /size|limit|exceed|too large|larger than/i.test(msg))
          throw new Error(`activity ${a.activityType?.name ?? ''} retrying (attempt ${a.attempt}): ${msg}`);
      }
    }
    return new Promise<never>(() => undefined); // the race is over: never settles
  }

  /** Run `n` items through `work` at `concurrency`, stopping at the deadline; wall time and per-item results. */
  async many<R>(
    n: number,
    concurrency: number,
    work: (i: number) => Promise<R>,
    phase: string,
    stop: () => boolean = () => false,
  ): Promise<{ wallMs: number; results: R[] }> {
    let done = 0;
    const t0 = performance.now();
    const out = await pool(
      Array.from({ length: n }, (_, i) => i),
      concurrency,
      async (i) => {
        const r = await work(i);
        this.progress(phase, ++done, n);
        return r;
      },
      () => this.outOfTime() || stop(),
    );
    return { wallMs: performance.now() - t0, results: out.filter((r) => r !== undefined) as R[] };
  }

  // ---- cleanup ----

  /**
   * What still runs on this run's task queues: every queue the bench named starts with
   * `bench-<tag>-`, which also covers queues amendctl derives from them (per target, say).
   * Falls back to one query per queue where STARTS_WITH is not supported.
   */
  private runningQueries(): string[] {
    return [`TaskQueue STARTS_WITH "bench-${this.docs.tag}-" AND ExecutionStatus = "Running"`];
  }

  private async withQueries<T>(f: (query: string) => Promise<T>): Promise<T[]> {
    try {
      return await Promise.all(this.runningQueries().map(f));
    } catch {
      return Promise.all([...this.queues].map((tq) => f(`TaskQueue = "${tq}" AND ExecutionStatus = "Running"`)));
    }
  }

  /** Terminate what is still running on the bench's task queues (shared servers only: the bench's own are just stopped). */
  async terminateRunning(timeoutMs = 120_000): Promise<number> {
    let n = 0;
    const deadline = Date.now() + timeoutMs;
    const lists = await this.withQueries(async (query) => {
      const ids: string[] = [];
      for await (const wf of this.client.workflow.list({ query })) {
        ids.push(wf.workflowId);
        if (Date.now() > deadline) break;
      }
      return ids;
    });
    await pool(
      [...new Set(lists.flat())],
      8,
      async (id) => {
        await this.client.workflow
          .getHandle(id)
          .terminate('amendctl bench: cleanup')
          .then(() => n++)
          .catch(() => undefined);
      },
      () => Date.now() > deadline,
    );
    return n;
  }

  /** How many workflows still run on the bench's task queues (visibility: may lag a moment). */
  async leftRunning(): Promise<number> {
    return (await this.withQueries(async (query) => (await this.client.workflow.count(query)).count)).reduce(
      (a, b) => a + b,
      0,
    );
  }

  /** Stop workers and worker processes; on shared servers also terminate what is left. Safe to call twice. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.children].map((c) => c.stop()));
    await this.stopInProcess().catch(() => undefined);
    if (this.opts.shared) await this.terminateRunning().catch(() => undefined);
    await this.client.connection.close().catch(() => undefined);
  }

  /** Kill worker processes at once (a second Ctrl-C, an exit): no waiting. */
  killChildrenNow(): void {
    for (const c of this.children) {
      try {
        process.kill(c.pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
  }
}
