/**
 * Fast workflow tests (issue 9, point 6): the REAL workflows (amendmentV4, contractWorkflow) on
 * a time-skipping test server of its own (or, where a test needs what that server lacks, the run's
 * Temporal dev server), with STUB activities that keep the real ones' contracts
 * (src/activities/index.ts, src/activities/provisioning.ts) but touch no PostgreSQL and no target:
 *
 * - enqueueAmendment really signal-with-starts the contract workflow (as the real one does), so
 *   queuing, gaps and supersedes are the contract workflow's own;
 * - planAmendmentV2 returns a synthetic PlannedAmendment from the amendment's Scenario (operations
 *   per target, batch size, lanes, approval, violations), its batches on this stack's per-target
 *   task queues;
 * - applyBatch / compensateBatch run on Workers of those queues and follow the Scenario: succeed,
 *   fail for good at an operation, throw a retryable error once, wait at a gate; every call is
 *   recorded;
 * - recordAudit keeps the final view in memory.
 *
 * One stack per test file: its own task queue (and so its own target queues and contract ids).
 */
import { checkHolder } from '../../src/activities/reclaim';
import { createApprovalActivities } from '../../src/activities/approvals';
import { loadTrust } from '../../src/approvals/token';
import { notifyActivities } from '../../src/activities/notify';
import { NO_NOTIFICATIONS } from '../../src/notify/config';
import { createHash, randomBytes } from 'node:crypto';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { Client, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailureCategory, type DataConverter } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker, type WorkerOptions } from '@temporalio/worker';
import { dataConverter, newKeyList } from '../../src/codec';
import type { AmendmentInput } from '../../src/domain/amendment';
import type { Contract } from '../../src/domain/contract';
import type { Action, ApprovalReason, Violation } from '../../src/domain/plan';
import type { amendmentV4 } from '../../src/workflows/amendment';
import {
  AMENDMENT_WORKFLOW_TYPE,
  amendmentWorkflowId,
  type AmendmentActivities,
  type AmendmentView,
  type AppliedStateView,
  type ApprovalPolicy,
  type BatchInput,
  type BatchResult,
  type BatchSpec,
  type CompensateBatchResult,
  contractQuery,
  type ContractView,
  contractWorkflowId,
  type ContractWorkflowState,
  DEFAULT_GAP_DEADLINE_SECONDS,
  enqueueSignal,
  type EnqueueRequest,
  type FailedOperation,
  FINAL_STATUSES,
  type OperationRecord,
  type OperationView,
  type PlannedAmendment,
  SA,
  SEARCH_ATTRIBUTES,
  SHOWN_CHANGES,
  SHOWN_OPERATIONS,
  statusQuery,
} from '../../src/workflows/definitions';
import { need, testEnv } from '../harness/env';
import { startTimeSkippingEnv } from '../harness/servers/timeskipping';

// ---- what a test scripts ----------------------------------------------------------------

/** How the stubs plan and run one amendment (keyed by amendmentId). */
export interface Scenario {
  /** Operations per target, in provisioning order (the targets in this order). Default: 15 over idp and warehouse. */
  operations?: Record<string, number>;
  /** Operations per batch (each operation its own account here). Default 250, as the real targets'. */
  batchSize?: number;
  /** Batches of one target at once. Default 1, as the real targets'. */
  lanes?: Record<string, number>;
  /** The plan asks for approval, for these reasons. */
  approval?: ApprovalReason[];
  /** The worker's approval policy the plan carries. Default: anyone but the submitter, one approval. */
  approvalPolicy?: Partial<ApprovalPolicy>;
  violations?: Violation[];
  /** The ordering policy enqueueAmendment answers. Default: the worker's default (7 days). */
  gapDeadlineSeconds?: number;
  /** Operations the target already had (outcome `unchanged`, nothing to undo). */
  unchanged?: (idx: number) => boolean;
  /** The operation that fails for good (the batch then starts nothing more). */
  failAt?: number;
  /** Batches ("target#batch") whose first attempt throws a retryable error. */
  flakyOnce?: string[];
  /** Operations whose undo fails for good (left for an operator). */
  undoFailsAt?: number[];
  /** Batches ("target#batch") whose undo activity fails as a whole. */
  undoThrows?: string[];
  /** Batches ("target#batch") whose apply waits until the gate opens. */
  gates?: Record<string, Gate>;
}

export interface Gate {
  open(): void;
  readonly opened: Promise<void>;
  /** True once an activity is waiting at it. */
  reached: boolean;
}

export function gate(): Gate {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { open, opened, reached: false };
}

export const batchKey = (target: string, batch: number): string => `${target}#${batch}`;

export interface BatchCall {
  seq: number;
  amendmentId: string;
  target: string;
  batch: number;
  of: number;
  from: number;
  to: number;
  attempt: number;
  taskQueue: string;
  budgetSeconds: number;
}

/** Everything the stubs were asked, in order (`seq` across all kinds). */
export interface Calls {
  enqueue: Array<EnqueueRequest & { contractId: string; seq: number }>;
  plan: Array<{ amendmentId: string; applied: AppliedStateView | null; seq: number }>;
  apply: BatchCall[];
  compensate: BatchCall[];
  audit: Array<{ view: AmendmentView; seq: number }>;
}

// ---- the stub activities ----------------------------------------------------------------

export const TARGETS = ['idp', 'warehouse'] as const;

/** The operation at `idx` of a scenario's plan (every operation its own account). */
export function operationAt(amendmentId: string, target: string, idx: number): OperationView {
  const subject = `u${idx}@${amendmentId.toLowerCase()}.test`;
  const action: Action = 'ensureAccount';
  return {
    id: `${target}:${action}:${subject}`,
    target,
    action,
    subject,
    description: `${target}: ensure account ${subject}`,
    ruleIds: ['named-user-account'],
    outcome: 'pending',
  };
}

/** The targets' batches of a scenario, on `targetQueue(target)`, as makeBatches cuts them (whole accounts, in order). */
export function batchesOf(s: Scenario, targetQueue: (t: string) => string): BatchSpec[] {
  const size = s.batchSize ?? 250;
  const out: BatchSpec[] = [];
  let idx = 0;
  for (const [target, n] of Object.entries(s.operations ?? DEFAULT_OPERATIONS)) {
    const of = Math.ceil(n / size);
    for (let k = 0; k < of; k++) {
      const from = idx + k * size;
      const to = Math.min(idx + n, from + size);
      out.push({ target, taskQueue: targetQueue(target), from, to, subjects: to - from, batch: k + 1, of });
    }
    idx += n;
  }
  return out;
}

const DEFAULT_OPERATIONS: Record<string, number> = { idp: 8, warehouse: 7 };
const STUB_APPROVAL_POLICY: ApprovalPolicy = { approvers: ['*'], groups: {}, required: 1, separationOfDuties: true };

/** The retryable, once-only failure a flaky batch throws: BENIGN, so the worker logs it at debug, not as a warning. */
function quietFailure(message: string, type: string, nonRetryable: boolean): ApplicationFailure {
  return ApplicationFailure.create({ message, type, nonRetryable, category: ApplicationFailureCategory.BENIGN });
}

export class Stubs {
  readonly calls: Calls = { enqueue: [], plan: [], apply: [], compensate: [], audit: [] };
  private readonly scenarios = new Map<string, Scenario>();
  /** Per amendment: what each operation's last apply did (the operation store's outcome column). */
  private readonly outcomes = new Map<string, Map<number, 'applied' | 'unchanged' | 'failed' | 'skipped'>>();
  private seq = 0;

  constructor(
    private readonly client: () => Client,
    private readonly taskQueue: string,
    readonly targetQueue: (target: string) => string,
  ) {}

  script(amendmentId: string, s: Scenario): void {
    this.scenarios.set(amendmentId, s);
  }

  scenario(amendmentId: string): Scenario {
    const s = this.scenarios.get(amendmentId);
    if (!s) throw ApplicationFailure.nonRetryable(`no scenario scripted for ${amendmentId}`, 'NoScenario');
    return s;
  }

  /** The last view recordAudit received for an amendment. */
  audited(amendmentId: string): AmendmentView | undefined {
    return this.calls.audit.filter((a) => a.view.amendmentId === amendmentId).at(-1)?.view;
  }

  applies(amendmentId: string): BatchCall[] {
    return this.calls.apply.filter((c) => c.amendmentId === amendmentId);
  }

  compensations(amendmentId: string): BatchCall[] {
    return this.calls.compensate.filter((c) => c.amendmentId === amendmentId);
  }

  /** The main task queue's activities (local activities of amendmentV4). */
  control(): Pick<
    AmendmentActivities,
    | 'enqueueAmendment'
    | 'planAmendmentV2'
    | 'recordAudit'
    | 'orderingPolicy'
    | 'verifyApproval'
    | 'notificationEndpoints'
    | 'notifyApproval'
    | 'checkHolder'
  > {
    return {
      // The real verification, with the run's trusted keys (test/harness/approval-keys.ts); the real notifications, none configured.
      ...createApprovalActivities(loadTrust(need('AMENDCTL_APPROVAL_KEYS'))),
      ...notifyActivities(NO_NOTIFICATIONS),
      enqueueAmendment: async ({ contractId, ...request }) => {
        this.calls.enqueue.push({ contractId, ...request, seq: ++this.seq });
        const initial: ContractWorkflowState = { contractId, applied: null, waiting: [], holder: null, recent: [] };
        await this.client().workflow.signalWithStart('contractWorkflow', {
          workflowId: contractWorkflowId(contractId),
          taskQueue: this.taskQueue,
          args: [initial],
          signal: enqueueSignal,
          signalArgs: [request],
          staticSummary: `Contract ${contractId}: applies its amendments in sequence order`,
        });
        return {
          gapDeadlineSeconds:
            this.scenarios.get(request.amendmentId)?.gapDeadlineSeconds ?? DEFAULT_GAP_DEADLINE_SECONDS,
        };
      },

      orderingPolicy: async () => ({ gapDeadlineSeconds: DEFAULT_GAP_DEADLINE_SECONDS }),

      // The contract's check on a holder with a late keeper: the real one (two describes).
      checkHolder: ({ holder }) => checkHolder(this.client(), holder),

      planAmendmentV2: async ({ amendment, applied }) => {
        this.calls.plan.push({ amendmentId: amendment.amendmentId, applied, seq: ++this.seq });
        const s = this.scenario(amendment.amendmentId);
        const violations = s.violations ?? [];
        const batches = violations.length > 0 ? [] : batchesOf(s, this.targetQueue);
        const operationsTotal = batches.reduce((n, b) => n + b.to - b.from, 0);
        const operations: OperationView[] = [];
        for (const b of batches)
          for (let i = b.from; i < b.to && operations.length < SHOWN_OPERATIONS; i++)
            operations.push(operationAt(amendment.amendmentId, b.target, i));
        const lanes: Record<string, number> = {};
        for (const b of batches) lanes[b.target] = s.lanes?.[b.target] ?? 1;
        const customerId = amendment.contractId
          .toLowerCase()
          .replace(/[^a-z0-9-]/g, '-')
          .slice(0, 40);
        const before = applied?.contract.seats ?? 0;
        const after: Contract = {
          customer: { id: customerId, name: `Customer ${customerId}` },
          status: 'active',
          tier: 'professional',
          seats: before + 10,
          modules: ['analytics'],
          namedUsers: [],
          term: { start: '2026-01-01' },
          region: 'eu',
          custom: {},
        };
        return {
          planHash: createHash('sha256')
            .update(JSON.stringify({ amendmentId: amendment.amendmentId, batches }))
            .digest('hex'),
          rulesetHash: 'stub-ruleset',
          customerId,
          changes: [
            { kind: 'modified' as const, clause: 'seats' as const, path: 'seats', before, after: before + 10 },
          ].slice(0, SHOWN_CHANGES),
          changesTotal: 1,
          violations,
          approval: { required: s.approval !== undefined, reasons: s.approval ?? [] },
          operationsTotal,
          operations,
          batches,
          lanes,
          after,
          approvalPolicy: { ...STUB_APPROVAL_POLICY, ...s.approvalPolicy },
        } satisfies PlannedAmendment;
      },

      recordAudit: async (view) => {
        const seq = ++this.seq;
        this.calls.audit.push({ view, seq });
        return { seq, hash: createHash('sha256').update(JSON.stringify(view)).digest('hex'), duplicate: false };
      },
    };
  }

  /** The activities of every target's own task queue. */
  batches(): Pick<AmendmentActivities, 'applyBatch' | 'compensateBatch'> {
    return {
      applyBatch: async (input) => {
        const info = Context.current().info;
        this.calls.apply.push(this.call(input, info.attempt, info.taskQueue));
        const s = this.scenario(input.amendmentId);
        const key = batchKey(input.target, input.batch);
        const g = s.gates?.[key];
        if (g) {
          g.reached = true;
          await g.opened;
        }
        if (info.attempt === 1 && s.flakyOnce?.includes(key))
          throw quietFailure(`${input.target} is unavailable (scripted, once)`, 'TargetUnavailable', false);
        const outcomes = this.outcomesOf(input.amendmentId);
        const startedAt = new Date().toISOString();
        const operations: OperationRecord[] = [];
        let failure: FailedOperation | undefined;
        for (let idx = input.from; idx < input.to; idx++) {
          if (failure) {
            operations.push([idx, 'skipped', 0, 0, 0]);
            outcomes.set(idx, 'skipped');
          } else if (idx === s.failAt) {
            const op = operationAt(input.amendmentId, input.target, idx);
            failure = {
              idx,
              id: op.id,
              action: op.action,
              subject: op.subject,
              description: op.description,
              ruleIds: op.ruleIds,
              type: 'TargetRejected',
              message: `${input.target} refused ${op.subject} (scripted)`,
            };
            operations.push([idx, 'failed', 1, 0, 1]);
            outcomes.set(idx, 'failed');
          } else {
            const outcome = s.unchanged?.(idx) ? 'unchanged' : 'applied';
            operations.push([idx, outcome, 1, 0, 1]);
            outcomes.set(idx, outcome);
          }
        }
        const r: BatchResult = { target: input.target, from: input.from, to: input.to, startedAt, operations };
        if (failure) r.failure = failure;
        return r;
      },

      compensateBatch: async (input) => {
        const info = Context.current().info;
        this.calls.compensate.push(this.call(input, info.attempt, info.taskQueue));
        const s = this.scenario(input.amendmentId);
        if (s.undoThrows?.includes(batchKey(input.target, input.batch)))
          throw quietFailure(
            `${input.target} cannot compensate batch ${input.batch} (scripted)`,
            'TargetRejected',
            true,
          );
        const outcomes = this.outcomesOf(input.amendmentId);
        const r: CompensateBatchResult = {
          target: input.target,
          operations: [],
          at: new Date().toISOString(),
          failed: [],
        };
        // Newest first, only what was applied (as the real one: `unchanged` has nothing to undo).
        for (let idx = input.to - 1; idx >= input.from; idx--) {
          if (outcomes.get(idx) !== 'applied') continue;
          if (s.undoFailsAt?.includes(idx)) {
            r.operations.push([idx, 'failed']);
            r.failed.push({
              idx,
              description: operationAt(input.amendmentId, input.target, idx).description,
              message: 'the target refused the compensation (scripted)',
            });
          } else r.operations.push([idx, 'compensated']);
        }
        return r;
      },
    };
  }

  private call(input: BatchInput, attempt: number, taskQueue: string): BatchCall {
    return {
      seq: ++this.seq,
      amendmentId: input.amendmentId,
      target: input.target,
      batch: input.batch,
      of: input.of,
      from: input.from,
      to: input.to,
      attempt,
      taskQueue,
      budgetSeconds: input.budgetSeconds,
    };
  }

  private outcomesOf(amendmentId: string): Map<number, 'applied' | 'unchanged' | 'failed' | 'skipped'> {
    let m = this.outcomes.get(amendmentId);
    if (!m) this.outcomes.set(amendmentId, (m = new Map()));
    return m;
  }
}

// ---- the stack --------------------------------------------------------------------------

/** A variable the harness may have set (from the environment or the run's env file), or undefined. */
function optional(name: string): string | undefined {
  if (process.env[name] !== undefined) return process.env[name];
  try {
    return testEnv()[name];
  } catch {
    return undefined;
  }
}

function required(name: string): string {
  const v = optional(name);
  if (v === undefined)
    throw new Error(
      `${name} is not set: the harness did not start the server that provides it (AMENDCTL_TEST_SERVERS=timeskipping,temporal?)`,
    );
  return v;
}

/** Which of the run's servers: the time-skipping test server, or the Temporal dev server (no time skipping). */
export type FastServer = 'timeskipping' | 'dev';

/**
 * A TestWorkflowEnvironment on one of the run's servers, its client with our data converter.
 * With time skipping as test/governance/timeskipping.ts connects (the SDK's own factory with the
 * existing server's address), plus the codec.
 */
async function connectEnv(server: FastServer, converter: DataConverter): Promise<TestWorkflowEnvironment> {
  if (server === 'dev')
    return TestWorkflowEnvironment.createFromExistingServer({
      address: required('AMENDCTL_TEST_TEMPORAL_ADDRESS'),
      namespace: 'default',
      client: { dataConverter: converter },
    });
  // A time-skipping test server of this file's own: the run's one has a single clock for every
  // file on it, and another file's skip of days would pass these tests' deadlines unseen.
  const env = await startTimeSkippingEnv({ client: { dataConverter: converter } });
  try {
    // IndexedValueType KEYWORD = 2.
    await env.connection.operatorService.addSearchAttributes({
      namespace: 'default',
      searchAttributes: Object.fromEntries(Object.keys(SEARCH_ATTRIBUTES).map((k) => [k, 2])),
    });
  } catch (err) {
    await env.teardown();
    throw err;
  }
  if (!env.supportsTimeSkipping) throw new Error('the test environment does not skip time');
  return env;
}

export type AmendmentHandle = WorkflowHandle<typeof amendmentV4>;

export interface FastStack {
  env: TestWorkflowEnvironment;
  client: Client;
  taskQueue: string;
  stubs: Stubs;
  /** A fresh contract id for a test. */
  contractId(tag: string): string;
  /** Start amendmentV4 as the client does (same id, search attributes, memo), with its scenario. */
  submit(doc: AmendmentInput, s: Scenario): Promise<AmendmentHandle>;
  status(amendmentId: string): Promise<AmendmentView>;
  /** Poll `status` (wall time; the server clock is not skipped meanwhile) until `ok`, else fail naming `what` and the last view. */
  until(
    amendmentId: string,
    what: string,
    ok: (v: AmendmentView) => boolean,
    timeoutMs?: number,
  ): Promise<AmendmentView>;
  /** Wait for a final status without skipping time. */
  final(amendmentId: string, timeoutMs?: number): Promise<AmendmentView>;
  /** The workflow's result, once it has closed (without skipping time). */
  result(amendmentId: string, timeoutMs?: number): Promise<AmendmentView>;
  contract(contractId: string): Promise<ContractView>;
  untilContract(
    contractId: string,
    what: string,
    ok: (v: ContractView) => boolean,
    timeoutMs?: number,
  ): Promise<ContractView>;
  now(): Promise<number>;
  /** Skip server time (timers fire) in about no wall time (on the dev server: sleeps). */
  skip(ms: number): Promise<void>;
  /** Shut the workflow worker down and start a new one on the same queue (`options` for the new one). */
  restartWorkflowWorker(options?: Partial<WorkerOptions>): Promise<void>;
  /** Terminate what a test left running (amendments and contracts it started). */
  cleanup(): Promise<void>;
  stop(): Promise<void>;
}

interface Running {
  worker: Worker;
  run: Promise<void>;
}

export async function startFastStack(name: string, server: FastServer = 'timeskipping'): Promise<FastStack> {
  // As production: the codec with the run's key (set by the temporal harness server), else a key of our own.
  const converter = dataConverter({ AMENDCTL_CODEC_KEYS: optional('AMENDCTL_CODEC_KEYS') ?? newKeyList('fast') });
  const env = await connectEnv(server, converter);
  const taskQueue = `fast-${name}-${randomBytes(3).toString('hex')}`;
  const targetQueue = (target: string): string => `${taskQueue}.target.${target}`;
  // Not env.client: its result() unlocks time skipping while it waits, and the test server then
  // jumps to the next timer it knows of the moment it is idle (a workflow's 10-year run timeout,
  // another test's deadline). Time moves here only through skip().
  const client = new Client({ connection: env.connection, namespace: 'default', dataConverter: converter });
  const stubs = new Stubs(() => client, taskQueue, targetQueue);
  const bundle = optional('AMENDCTL_WORKFLOW_BUNDLE');
  const workflowSource: Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath'> = bundle
    ? { workflowBundle: { codePath: bundle } }
    : { workflowsPath: require.resolve('../../src/workflows') };
  const started = new Set<string>();

  const launch = async (options: WorkerOptions): Promise<Running> => {
    const worker = await Worker.create(options);
    return { worker, run: worker.run() };
  };
  const workflowWorker = (extra: Partial<WorkerOptions> = {}): Promise<Running> =>
    launch({
      connection: env.nativeConnection,
      namespace: 'default',
      taskQueue,
      ...workflowSource,
      dataConverter: converter,
      activities: stubs.control(),
      shutdownGraceTime: '1s',
      // A stopped worker's sticky queue is given up on quickly (the restart test).
      stickyQueueScheduleToStartTimeout: '1s',
      ...extra,
    });
  const targetWorkers = await Promise.all(
    TARGETS.map((t) =>
      launch({
        connection: env.nativeConnection,
        namespace: 'default',
        taskQueue: targetQueue(t),
        dataConverter: converter,
        activities: stubs.batches(),
        shutdownGraceTime: '1s',
      }),
    ),
  );
  let main = await workflowWorker();

  const stopWorker = async (r: Running): Promise<void> => {
    if (r.worker.getState() === 'RUNNING') r.worker.shutdown();
    await r.run;
  };
  const status = (amendmentId: string): Promise<AmendmentView> =>
    client.workflow.getHandle(amendmentWorkflowId(amendmentId)).query(statusQuery);
  const contract = (contractId: string): Promise<ContractView> =>
    client.workflow.getHandle(contractWorkflowId(contractId)).query(contractQuery);

  /** Reads until `ok`, each read bounded by what is left of the deadline (a query can wait on a worker). */
  async function poll<T>(
    read: () => Promise<T>,
    what: string,
    ok: (v: T) => boolean,
    timeoutMs: number,
    show: (v: T | undefined, err: unknown) => string,
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last: T | undefined;
    let error: unknown;
    for (;;) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('no answer in time')), Math.max(1, deadline - Date.now()));
      });
      try {
        last = await Promise.race([read(), late]);
        error = undefined;
        if (ok(last)) return last;
      } catch (err) {
        error = err;
      } finally {
        clearTimeout(timer);
      }
      if (Date.now() >= deadline)
        throw new Error(`${what}: not so after ${timeoutMs} ms; last seen: ${show(last, error)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const showView = (v: AmendmentView | undefined, err: unknown): string =>
    v ? `${v.status} (${v.reason ?? ''})` : `no view (${String(err)})`;

  return {
    env,
    client,
    taskQueue,
    stubs,
    contractId: (tag) => `${name}-${tag}-${randomBytes(3).toString('hex')}`,
    async submit(doc, s) {
      stubs.script(doc.amendmentId, s);
      const workflowId = amendmentWorkflowId(doc.amendmentId);
      started.add(workflowId);
      started.add(contractWorkflowId(doc.contractId));
      return client.workflow.start<typeof amendmentV4>(AMENDMENT_WORKFLOW_TYPE, {
        taskQueue,
        workflowId,
        args: [{ amendment: doc }],
        workflowIdConflictPolicy: 'FAIL',
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
        typedSearchAttributes: [
          { key: SA.ContractId, value: doc.contractId },
          { key: SA.AmendmentId, value: doc.amendmentId },
          { key: SA.AmendmentStatus, value: 'queued' },
        ],
        memo: { sequence: doc.sequence },
        staticSummary: `Amendment ${doc.amendmentId} of contract ${doc.contractId}, sequence ${doc.sequence}`,
      });
    },
    status,
    until: (amendmentId, what, ok, timeoutMs = 20_000) =>
      poll(() => status(amendmentId), `${amendmentId}: ${what}`, ok, timeoutMs, showView),
    final: (amendmentId, timeoutMs = 20_000) =>
      poll(
        () => status(amendmentId),
        `${amendmentId}: a final status`,
        (v) => FINAL_STATUSES.has(v.status),
        timeoutMs,
        showView,
      ),
    async result(amendmentId, timeoutMs = 30_000) {
      const h = client.workflow.getHandle<typeof amendmentV4>(amendmentWorkflowId(amendmentId));
      await poll(
        () => h.describe(),
        `${amendmentId}: closed`,
        (d) => d.status.name !== 'RUNNING',
        timeoutMs,
        (d, err) => (d ? d.status.name : String(err)),
      );
      return h.result();
    },
    contract,
    untilContract: (contractId, what, ok, timeoutMs = 20_000) =>
      poll(
        () => contract(contractId),
        `contract ${contractId}: ${what}`,
        ok,
        timeoutMs,
        (v, err) => (v ? JSON.stringify(v) : String(err)),
      ),
    now: () => env.currentTimeMs(),
    skip: (ms) => env.sleep(ms),
    async restartWorkflowWorker(options = {}) {
      await stopWorker(main);
      main = await workflowWorker(options);
    },
    async cleanup() {
      const ids = [...started];
      started.clear();
      await Promise.all(
        ids.map(async (id) => {
          const h = client.workflow.getHandle(id);
          const d = await h.describe().catch(() => undefined);
          if (d?.status.name === 'RUNNING') await h.terminate('fast test cleanup').catch(() => undefined);
        }),
      );
    },
    async stop() {
      await Promise.allSettled([main, ...targetWorkers].map(stopWorker));
      await env.teardown();
    },
  };
}
