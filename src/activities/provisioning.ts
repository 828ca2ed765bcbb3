/**
 * The activities of amendmentV2: the plan as a claim check, and batches of operations.
 *
 * - planAmendmentV2 (a local activity): diff and rules as before; the operations, in
 *   provisioning order (per target, per account, each account's operations in plan order),
 *   go to the operation store; the workflow gets counts, the first operations, and batches.
 * - applyBatch (on the target's task queue): a batch's accounts `concurrency` at once, each
 *   account's operations in order (an account before its memberships). Every operation is
 *   idempotent and retried on its own inside the activity, with backoff and Retry-After, until
 *   the retry budget is spent; then it has failed, and the batch starts nothing more. Outcomes,
 *   attempts, timing and the prior state go to the store as they happen, so a batch retried
 *   after a lost worker resumes where it was; heartbeats carry progress.
 * - compensateBatch: the compensation of the batch's applied operations (each one's exact inverse), each account's newest
 *   first, from the prior state the store kept.
 */
import { createHash } from 'node:crypto';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { canonicalJson } from '../domain/json';
import type { Operation } from '../domain/plan';
import { type ConnectorRegistry, type Provisioning, targetTaskQueue } from '../connectors/registry';
import {
  type Connector,
  type FailureType,
  type OperationJournal,
  PermanentTargetError,
  TransientTargetError,
} from '../connectors/types';
import type { CompensationUpdate, OperationStore, OutcomeUpdate, StoredOperation } from '../store/operations';
import type { ShareStore } from '../store/shares';
import { compensationsTotal, operationsTotal, retriesTotal } from '../observability/metrics';
import { inSpan } from '../observability/tracing';
import { changedShare, SharedConnector } from './shares';
import type { RulesProvider } from '../worker/rules';
import {
  type AmendmentActivities,
  type ApprovalPolicy,
  type BatchInput,
  type BatchProgress,
  type BatchResult,
  type BatchSpec,
  type CompensateBatchResult,
  type FailedOperation,
  type OperationRecord,
  type OperationView,
  type PlannedAmendment,
  SHOWN_CHANGES,
  SHOWN_OPERATIONS,
} from '../workflows/definitions';

export interface ProvisioningDeps {
  registry: ConnectorRegistry;
  rules: RulesProvider;
  approvalPolicy: ApprovalPolicy;
  /** The operation store, opened on first use. */
  store: () => OperationStore;
  /** Which contracts share each account (src/store/shares.ts), opened on first use. */
  shares: () => ShareStore;
  taskQueue: string;
}

type Activities = Pick<AmendmentActivities, 'planAmendmentV2' | 'applyBatch' | 'compensateBatch'>;

export function createProvisioningActivities(deps: ProvisioningDeps): Activities {
  return {
    async planAmendmentV2({ amendment, applied }): Promise<PlannedAmendment> {
      const plan = deps.rules.plan(amendment, applied);
      const unknown = plan.operations.find((op) => !deps.registry.has(op.target));
      if (unknown) {
        plan.violations.push({
          ruleId: unknown.ruleIds[0] ?? '',
          message: `the plan names target "${unknown.target}", which this worker has no configuration for (configured: ${deps.registry.names().join(', ') || 'none'})`,
        });
      }
      const operations = plan.violations.length > 0 ? [] : provisioningOrder(plan.operations);
      const planHash = createHash('sha256')
        .update(canonicalJson({ rulesetHash: plan.rulesetHash, operations }))
        .digest('hex');
      if (operations.length > 0) await deps.store().savePlan(amendment.amendmentId, planHash, operations);
      const batches = makeBatches(operations, (t) => deps.registry.provisioning(t), deps.taskQueue);
      const lanes: Record<string, number> = {};
      for (const b of batches) lanes[b.target] = deps.registry.provisioning(b.target).lanes;
      return {
        planHash,
        rulesetHash: plan.rulesetHash,
        customerId: plan.after.customer.id,
        changes: plan.changes.slice(0, SHOWN_CHANGES),
        changesTotal: plan.changes.length,
        violations: plan.violations,
        approval: plan.approval,
        operationsTotal: operations.length,
        operations: operations.slice(0, SHOWN_OPERATIONS).map(toView),
        batches,
        lanes,
        after: plan.after,
        approvalPolicy: deps.approvalPolicy,
      };
    },

    async applyBatch(input) {
      const { rows, connector, provisioning } = await open(deps, input);
      return new BatchRun(deps.store(), connector, provisioning, input, rows).apply();
    },

    async compensateBatch(input) {
      const { rows, connector, provisioning } = await open(deps, input);
      return new BatchRun(deps.store(), connector, provisioning, input, rows).compensate();
    },
  };
}

async function open(
  deps: ProvisioningDeps,
  input: BatchInput,
): Promise<{ rows: StoredOperation[]; connector: Connector; provisioning: Provisioning }> {
  const target = deps.registry.get(input.target);
  if (!target)
    throw ApplicationFailure.nonRetryable(
      `no target "${input.target}" is configured in this worker`,
      'TargetMisconfigured' satisfies FailureType,
    );
  const connector = sharedTarget(deps, target, input);
  const rows = await deps.store().load(input.amendmentId, input.planHash, input.from, input.to);
  if (rows.length !== input.to - input.from) {
    throw ApplicationFailure.nonRetryable(
      `operations ${input.from}-${input.to - 1} of plan ${input.planHash.slice(0, 12)} of ${input.amendmentId} are not in the operation store (found ${rows.length})`,
      'PlanMissing',
    );
  }
  return { rows, connector, provisioning: deps.registry.provisioning(input.target) };
}

/**
 * The target as the amendment's contract sees it: each operation takes or gives up the
 * contract's share of the account (src/activities/shares.ts). Batches scheduled by a run from
 * before shares (no contractId in their input) act on the target alone, as they did then.
 */
function sharedTarget(
  deps: Pick<ProvisioningDeps, 'shares'>,
  connector: Connector,
  input: Pick<BatchInput, 'contractId' | 'amendmentId'>,
): Connector {
  return input.contractId
    ? new SharedConnector(connector, deps.shares(), input.contractId, input.amendmentId)
    : connector;
}

/** An operation whose compensation has something to do: it changed the target, or only its contract's share. */
function compensable(row: StoredOperation): boolean {
  return row.outcome === 'applied' || (row.outcome === 'unchanged' && changedShare(row.result));
}

/** The activity was cancelled: its amendment asked, or its workflow is gone (a heartbeat found it closed). */
function cancelled(): boolean {
  return Context.current().cancellationSignal.aborted;
}

/** Per target (in order of first appearance), per account (in order of first appearance), each account's operations in plan order. */
export function provisioningOrder(operations: Operation[]): Operation[] {
  const targets = new Map<string, Map<string, Operation[]>>();
  for (const op of operations) {
    let subjects = targets.get(op.target);
    if (!subjects) targets.set(op.target, (subjects = new Map()));
    const list = subjects.get(op.subject) ?? [];
    list.push(op);
    subjects.set(op.subject, list);
  }
  return [...targets.values()].flatMap((subjects) => [...subjects.values()].flat());
}

/** Contiguous ranges of whole accounts, up to the target's batch size (an account with more operations is one batch). */
export function makeBatches(
  operations: Operation[],
  settings: (target: string) => Provisioning,
  taskQueue: string,
): BatchSpec[] {
  const out: BatchSpec[] = [];
  let i = 0;
  while (i < operations.length) {
    const target = operations[i]!.target;
    const { batchSize } = settings(target);
    const from = i;
    let subjects = 0;
    while (i < operations.length && operations[i]!.target === target) {
      const subject = operations[i]!.subject;
      let j = i;
      while (j < operations.length && operations[j]!.target === target && operations[j]!.subject === subject) j++;
      if (subjects > 0 && j - from > batchSize) break;
      subjects++;
      i = j;
    }
    out.push({ target, taskQueue: targetTaskQueue(taskQueue, target), from, to: i, subjects, batch: 0, of: 0 });
  }
  const perTarget = new Map<string, BatchSpec[]>();
  for (const b of out) perTarget.set(b.target, [...(perTarget.get(b.target) ?? []), b]);
  for (const list of perTarget.values()) list.forEach((b, k) => Object.assign(b, { batch: k + 1, of: list.length }));
  return out;
}

function toView(op: Operation): OperationView {
  return {
    id: op.id,
    target: op.target,
    action: op.action,
    subject: op.subject,
    description: op.description,
    ruleIds: op.ruleIds,
    outcome: 'pending',
  };
}

// ---- running a batch --------------------------------------------------------------------

type Classified =
  { kind: 'permanent'; type: string; message: string } | { kind: 'transient'; message: string; retryAfterMs?: number };

function classify(err: unknown): Classified {
  if (err instanceof PermanentTargetError) return { kind: 'permanent', type: err.type, message: err.message };
  if (err instanceof TransientTargetError)
    return {
      kind: 'transient',
      message: err.message,
      ...(err.retryAfterMs !== undefined ? { retryAfterMs: err.retryAfterMs } : {}),
    };
  if (err instanceof ApplicationFailure && err.nonRetryable)
    return { kind: 'permanent', type: err.type ?? ('TargetRejected' satisfies FailureType), message: err.message };
  return { kind: 'transient', message: (err as Error)?.message ?? String(err) };
}

/** 0: the account's own operations; 1: its memberships (independent of each other); 2: deactivation, last. */
const STEP: Record<Operation['action'], 0 | 1 | 2> = {
  ensureAccount: 0,
  reactivateAccount: 0,
  updateAttributes: 0,
  leaveGroup: 1,
  revokeRole: 1,
  joinGroup: 1,
  grantRole: 1,
  deactivateAccount: 2,
};
/** Members in one group change at most. */
const GROUP_CHANGE_MAX = 500;

function bySubject(rows: StoredOperation[]): Map<string, StoredOperation[]> {
  const m = new Map<string, StoredOperation[]>();
  for (const row of rows) m.set(row.op.subject, [...(m.get(row.op.subject) ?? []), row]);
  return m;
}

function chunks<T>(list: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}

const FLUSH_MS = 250;
const FLUSH_ROWS = 200;
/** A heartbeat at least this often (and after each operation: the SDK sends at most one a second), so progress shows and a lost worker is noticed. */
const HEARTBEAT_MS = 1000;

class BatchRun {
  private readonly startedAt = Date.now();
  private readonly pendingOutcomes: OutcomeUpdate[] = [];
  private readonly pendingCompensations: CompensationUpdate[] = [];
  private lastFlush = Date.now();
  private done = 0;
  private failed = 0;
  private stopped = false;

  constructor(
    private readonly store: OperationStore,
    private readonly connector: Connector,
    private readonly settings: Provisioning,
    private readonly input: BatchInput,
    private readonly rows: StoredOperation[],
  ) {}

  /**
   * In three steps over the batch's accounts: each account's own operations (ensure,
   * reactivate, update) in order; then its memberships, which depend only on the account (where
   * the connector can, the joins or leaves of one group as one change); then deactivations.
   * An account whose operation failed goes no further; after a failure nothing new starts.
   */
  async apply(): Promise<BatchResult> {
    const failures: FailedOperation[] = [];
    const blocked = new Set<string>();
    const one = async (row: StoredOperation): Promise<void> => {
      if (!(await this.applyOne(row, failures))) blocked.add(row.op.subject);
    };
    const unblocked = (rows: StoredOperation[]) => rows.filter((r) => !blocked.has(r.op.subject));
    const beat = setInterval(() => this.heartbeat(), HEARTBEAT_MS);
    this.heartbeat();
    try {
      const accounts = [...bySubject(this.rows).values()];
      const prefetch = this.prefetcher(accounts);
      await this.pool(
        accounts.map((list, i) => async () => {
          await prefetch(i);
          for (const row of list.filter((r) => STEP[r.op.action] === 0)) {
            await one(row);
            if (blocked.has(row.op.subject)) break;
          }
        }),
      );
      const memberships = unblocked(this.rows.filter((r) => STEP[r.op.action] === 1));
      await this.pool(
        this.units(memberships).map(
          (unit) => () => (unit.length === 1 ? one(unit[0]!) : this.applyGroupChange(unit, failures, blocked)),
        ),
      );
      await this.pool(unblocked(this.rows.filter((r) => STEP[r.op.action] === 2)).map((row) => () => one(row)));
    } finally {
      clearInterval(beat);
    }
    for (const row of this.rows) if (row.outcome === 'pending') this.setOutcome(row, { outcome: 'skipped' });
    await this.flush(true);
    // Cancelled (the amendment was cancelled or has ended): what was done is in the store for its compensation; nothing new started.
    if (cancelled()) await Context.current().cancelled;
    const base = this.startedAt;
    const operations: OperationRecord[] = this.rows.map((row) => {
      const start = row.startedAt ? Date.parse(row.startedAt) - base : 0;
      const ms = row.startedAt && row.finishedAt ? Date.parse(row.finishedAt) - Date.parse(row.startedAt) : 0;
      return [row.idx, row.outcome === 'pending' ? 'skipped' : row.outcome, row.attempts, start, ms];
    });
    const [first, ...more] = failures.sort((a, b) => a.idx - b.idx);
    return {
      target: this.input.target,
      from: this.input.from,
      to: this.input.to,
      startedAt: new Date(this.startedAt).toISOString(),
      operations,
      ...(first ? { failure: first } : {}),
      ...(more.length > 0 ? { alsoFailed: more.slice(0, 20) } : {}),
    };
  }

  /** One operation, retried on its own; false when it failed (or failed before, in an earlier attempt). */
  private async applyOne(row: StoredOperation, failures: FailedOperation[]): Promise<boolean> {
    if (row.outcome === 'applied' || row.outcome === 'unchanged') return true; // an earlier attempt did it
    if (row.outcome === 'failed') {
      failures.push(failedOf(row));
      return false;
    }
    if (this.stopped || cancelled()) {
      this.setOutcome(row, { outcome: 'skipped' });
      return false;
    }
    const started = new Date().toISOString();
    const journal = this.journal(row);
    const r = await this.withRetries((attempt) => {
      row.attempts = attempt;
      return inSpan(
        `${this.input.target} ${row.op.action}`,
        {
          'amendctl.target': this.input.target,
          'amendctl.action': row.op.action,
          'amendctl.operation': row.idx,
          'amendctl.attempt': attempt,
        },
        () => this.connector.apply(row.op, journal),
      );
    });
    if (r.ok) {
      this.setOutcome(row, {
        outcome: r.value.outcome,
        startedAt: started,
        finishedAt: new Date().toISOString(),
        result: { prior: r.value.prior, ...(r.value.detail ? { detail: r.value.detail } : {}) },
      });
      return true;
    }
    this.setOutcome(row, {
      outcome: 'failed',
      startedAt: started,
      finishedAt: new Date().toISOString(),
      result: { error: r.error },
    });
    failures.push(failedOf(row));
    this.stopped = true;
    return false;
  }

  /** The row's journal: notes kept in the store at once (before the write they precede), and read by the next attempt. */
  private journal(row: StoredOperation): OperationJournal {
    const { amendmentId, planHash } = this.input;
    return {
      get noted() {
        return row.journal;
      },
      note: async (value) => {
        await this.store.saveJournal(amendmentId, planHash, row.idx, value);
        row.journal = value;
      },
    };
  }

  /**
   * Where the target's `lookupBatch` asks for it and the connector can: the lookups of the
   * accounts `accounts[i]` is among, `lookupBatch` at a time, made when the first of them starts
   * (so none is stale by the time its turn comes). A failed prefetch costs nothing: each
   * operation looks up its own.
   */
  private prefetcher(accounts: StoredOperation[][]): (i: number) => Promise<void> {
    const connector = this.connector;
    const size = this.settings.lookupBatch;
    if (!connector.prefetchAccounts || size <= 1) return async () => undefined;
    const chunks = new Map<number, Promise<void>>();
    return (i) => {
      const c = Math.floor(i / size);
      let p = chunks.get(c);
      if (!p) {
        const ops = accounts
          .slice(c * size, (c + 1) * size)
          .flatMap((list) =>
            list.filter((r) => r.outcome === 'pending' && r.op.action === 'ensureAccount').map((r) => r.op),
          );
        p = ops.length > 0 ? connector.prefetchAccounts!(ops).catch(() => undefined) : Promise.resolve();
        chunks.set(c, p);
      }
      return p;
    };
  }

  /** Memberships as units: the joins (or leaves, grants, revokes) of one group or role together where the connector takes them so, else one each. */
  private units(rows: StoredOperation[]): StoredOperation[][] {
    if (!this.connector.applyGroupChange) return rows.map((r) => [r]);
    const actions: readonly string[] = this.connector.groupChangeActions ?? ['joinGroup', 'leaveGroup'];
    const groups = new Map<string, StoredOperation[]>();
    const singles: StoredOperation[][] = [];
    for (const r of rows) {
      const group = r.op.params['group'] ?? r.op.params['role'];
      if (actions.includes(r.op.action) && typeof group === 'string') {
        const key = `${r.op.action}\u0000${group}`;
        groups.set(key, [...(groups.get(key) ?? []), r]);
      } else singles.push([r]);
    }
    return [...[...groups.values()].flatMap((list) => chunks(list, GROUP_CHANGE_MAX)), ...singles];
  }

  /** A group change: every operation's own result; if the change as a whole fails, each is applied alone (so the failing one is named). */
  private async applyGroupChange(
    unit: StoredOperation[],
    failures: FailedOperation[],
    blocked: Set<string>,
  ): Promise<void> {
    const todo = unit.filter((r) => r.outcome === 'pending');
    for (const r of unit.filter((x) => x.outcome === 'failed')) {
      failures.push(failedOf(r));
      blocked.add(r.op.subject);
    }
    if (todo.length === 0 || this.stopped || cancelled()) {
      for (const r of todo) if (!(await this.applyOne(r, failures))) blocked.add(r.op.subject);
      return;
    }
    const started = new Date().toISOString();
    let attempts = 0;
    const r = await this.withRetries((attempt) => {
      attempts = attempt;
      return inSpan(
        `${this.input.target} ${todo[0]!.op.action} (${todo.length})`,
        {
          'amendctl.target': this.input.target,
          'amendctl.action': todo[0]!.op.action,
          'amendctl.operations': todo.length,
          'amendctl.attempt': attempt,
        },
        () => this.connector.applyGroupChange!(todo.map((x) => x.op)),
      );
    });
    if (r.ok && r.value.length === todo.length) {
      const finished = new Date().toISOString();
      todo.forEach((row, i) => {
        const res = r.value[i]!;
        row.attempts = attempts;
        this.setOutcome(row, {
          outcome: res.outcome,
          startedAt: started,
          finishedAt: finished,
          result: { prior: res.prior, ...(res.detail ? { detail: res.detail } : {}) },
        });
      });
      return;
    }
    for (const row of todo) if (!(await this.applyOne(row, failures))) blocked.add(row.op.subject);
  }

  /** Tasks, `concurrency` at once. */
  private async pool(tasks: Array<() => Promise<void>>): Promise<void> {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < tasks.length) await tasks[next++]!();
    };
    await Promise.all(Array.from({ length: Math.min(this.settings.concurrency, tasks.length) }, worker));
  }

  /** Each account's applied operations compensated newest first, accounts `concurrency` at once; every compensation runs even if one fails. */
  async compensate(): Promise<CompensateBatchResult> {
    const failed: CompensateBatchResult['failed'] = [];
    const outcomes: CompensateBatchResult['operations'] = [];
    const compensateOne = async (row: StoredOperation): Promise<void> => {
      if (!compensable(row)) return;
      if (!row.compensation) {
        const outcome = row.outcome === 'applied' ? 'applied' : 'unchanged';
        const r = await this.withRetries(() =>
          inSpan(
            `${this.input.target} compensate ${row.op.action}`,
            { 'amendctl.target': this.input.target, 'amendctl.action': row.op.action, 'amendctl.operation': row.idx },
            () =>
              this.connector.compensate(row.op, {
                outcome,
                prior: row.result?.prior ?? null,
                ...(row.result?.detail ? { detail: row.result.detail } : {}),
              }),
          ),
        );
        const at = new Date().toISOString();
        row.compensation = r.ok
          ? { outcome: r.value.outcome, at, ...(r.value.detail ? { detail: r.value.detail } : {}) }
          : { outcome: 'failed', at, detail: r.error.message };
        this.pendingCompensations.push({
          idx: row.idx,
          outcome: row.compensation.outcome,
          at,
          detail: row.compensation.detail,
        });
        compensationsTotal.inc({ target: this.input.target, outcome: row.compensation.outcome });
        this.done++;
        this.heartbeat();
        void this.flush(false);
      }
      outcomes.push([row.idx, row.compensation.outcome]);
      if (row.compensation.outcome === 'failed')
        failed.push({
          idx: row.idx,
          description: row.op.description,
          message: row.compensation.detail ?? 'compensation failed',
        });
    };
    const beat = setInterval(() => this.heartbeat(), HEARTBEAT_MS);
    this.heartbeat();
    try {
      // The apply steps in reverse: deactivations, then memberships (one group's newest first, so
      // the join that created a group is compensated after every other join of it), then the accounts.
      const newestFirst = [...this.rows].reverse();
      await this.pool(newestFirst.filter((r) => STEP[r.op.action] === 2).map((row) => () => compensateOne(row)));
      const byGroup = new Map<string, StoredOperation[]>();
      for (const row of newestFirst.filter((r) => STEP[r.op.action] === 1)) {
        const key =
          typeof row.op.params['group'] === 'string' ? `group\u0000${row.op.params['group']}` : `one\u0000${row.idx}`;
        byGroup.set(key, [...(byGroup.get(key) ?? []), row]);
      }
      await this.pool(
        [...byGroup.values()].map((list) => async () => {
          for (const row of list) await compensateOne(row);
        }),
      );
      const accounts = [...bySubject(newestFirst.filter((r) => STEP[r.op.action] === 0)).values()];
      await this.pool(
        accounts.map((list) => async () => {
          for (const row of list) await compensateOne(row);
        }),
      );
    } finally {
      clearInterval(beat);
    }
    await this.flush(true);
    outcomes.sort((x, y) => y[0] - x[0]);
    return { target: this.input.target, operations: outcomes, at: new Date().toISOString(), failed };
  }

  /** One operation, retried on its own: transient failures with backoff (Retry-After honoured) until the budget is spent. */
  private async withRetries<T>(
    fn: (attempt: number) => Promise<T>,
  ): Promise<{ ok: true; value: T } | { ok: false; error: { type: string; message: string } }> {
    const ctx = Context.current();
    const began = Date.now();
    const budgetMs = this.input.budgetSeconds * 1000;
    for (let attempt = 1; ; attempt++) {
      try {
        return { ok: true, value: await fn(attempt) };
      } catch (err) {
        const c = classify(err);
        if (c.kind === 'permanent') return { ok: false, error: { type: c.type, message: c.message } };
        const delay =
          c.retryAfterMs !== undefined ? Math.max(1, c.retryAfterMs) : Math.min(30_000, 1000 * 2 ** (attempt - 1));
        const spent = Date.now() - began;
        if (spent + delay > budgetMs) {
          return {
            ok: false,
            error: {
              type: 'TargetUnavailable',
              message: `${c.message} (gave up after ${attempt} attempt${attempt === 1 ? '' : 's'} in ${Math.round(spent / 1000)} s, the retry budget being ${this.input.budgetSeconds} s)`,
            },
          };
        }
        retriesTotal.inc({ target: this.input.target });
        await ctx.sleep(delay); // throws when the activity is cancelled
      }
    }
  }

  private setOutcome(row: StoredOperation, u: Omit<OutcomeUpdate, 'idx' | 'attempts'>): void {
    row.outcome = u.outcome;
    if (u.startedAt) row.startedAt = u.startedAt;
    if (u.finishedAt) row.finishedAt = u.finishedAt;
    if (u.result) row.result = u.result;
    this.done++;
    if (u.outcome === 'failed') this.failed++;
    operationsTotal.inc({ target: this.input.target, action: row.op.action, outcome: u.outcome });
    this.heartbeat();
    this.pendingOutcomes.push({ idx: row.idx, attempts: row.attempts, ...u });
    void this.flush(false);
  }

  private flushing: Promise<void> = Promise.resolve();

  /** Outcomes to the store: every FLUSH_MS or FLUSH_ROWS, and at the end (`all`), in order. */
  private flush(all: boolean): Promise<void> {
    const due =
      all ||
      this.pendingOutcomes.length + this.pendingCompensations.length >= FLUSH_ROWS ||
      Date.now() - this.lastFlush >= FLUSH_MS;
    if (!due) return this.flushing;
    this.lastFlush = Date.now();
    const outcomes = this.pendingOutcomes.splice(0);
    const compensations = this.pendingCompensations.splice(0);
    const { amendmentId, planHash } = this.input;
    this.flushing = this.flushing.then(async () => {
      await this.store.saveOutcomes(amendmentId, planHash, outcomes);
      await this.store.saveCompensations(amendmentId, planHash, compensations);
    });
    // A failed write fails the final flush (and so the attempt, which then resumes from the store); not an unhandled rejection meanwhile.
    this.flushing.catch(() => undefined);
    return this.flushing;
  }

  private heartbeat(): void {
    const progress: BatchProgress = {
      target: this.input.target,
      batch: this.input.batch,
      of: this.input.of,
      done: this.done,
      total: this.rows.length,
      failed: this.failed,
    };
    Context.current().heartbeat(progress);
  }
}

function failedOf(row: StoredOperation): FailedOperation {
  const e = row.result?.error ?? { type: 'TargetRejected', message: 'failed' };
  return {
    idx: row.idx,
    id: row.op.id,
    action: row.op.action,
    subject: row.op.subject,
    description: row.op.description,
    ruleIds: row.op.ruleIds,
    type: e.type,
    message: e.message,
  };
}

/**
 * Compensate what an amendment applied and never compensated, target by target, as a batch's
 * compensation does (src/activities/reclaim.ts: a holder that ended without releasing its turn).
 * Returns how many operations were compensated and the compensations that failed.
 */
export async function compensateApplied(
  deps: Pick<ProvisioningDeps, 'registry' | 'store' | 'shares'>,
  contractId: string,
  amendmentId: string,
  planHash: string,
  rows: StoredOperation[],
  budgetSeconds: number,
): Promise<{ compensated: number; failed: string[] }> {
  const open = rows.filter(
    (r) => compensable(r) && r.compensation?.outcome !== 'compensated' && r.compensation?.outcome !== 'unchanged',
  );
  const byTarget = new Map<string, StoredOperation[]>();
  for (const r of open)
    byTarget.set(r.op.target, [...(byTarget.get(r.op.target) ?? []), { ...r, compensation: undefined }]);
  let compensated = 0;
  const failed: string[] = [];
  for (const [target, list] of byTarget) {
    const configured = deps.registry.get(target);
    if (!configured) {
      failed.push(...list.map((r) => `${r.op.description} (no target "${target}" is configured in this worker)`));
      continue;
    }
    const connector = sharedTarget(deps, configured, { contractId, amendmentId });
    const input: BatchInput = {
      amendmentId,
      contractId,
      planHash,
      target,
      from: list[0]!.idx,
      to: list[list.length - 1]!.idx + 1,
      batch: 1,
      of: 1,
      budgetSeconds,
    };
    const r = await new BatchRun(deps.store(), connector, deps.registry.provisioning(target), input, list).compensate();
    compensated += r.operations.filter(([, o]) => o !== 'failed').length;
    failed.push(...r.failed.map((f) => `${f.description} (${f.message})`));
  }
  return { compensated, failed };
}
