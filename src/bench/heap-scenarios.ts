/**
 * Workloads for src/bench/heap.ts: a workflow type, how to start workflow i, the activities
 * it needs (stubs: no targets, no PostgreSQL), where it is "parked" (a visibility query), how
 * to let it finish and what its result must be.
 *
 *  - `floor`: src/bench/floor-workflow.ts, waits for one signal (the SDK's own cost);
 *  - `floor+zod`, `floor+schemas`: the same workflow, its bundle also evaluating zod, or the
 *    amendment workflow's schema modules (src/bench/heap-floor-*.ts): the cost of each layer;
 *  - `amendment`: the real amendment workflow from the real bundle, pending approval of a
 *    3-user baseline planned by the real planner with the reference rules (it grants admin,
 *    so it needs one approval). The contract's sequencing is stubbed: enqueueAmendment
 *    signals the turn straight back, one real contract workflow per run takes the releases.
 *
 *  - `amendmentV2`: the same for the workflow type amendmentV2 (the plan as a claim check, batches
 *    per target), its activities stubbed likewise (amendmentV2StubActivities).
 *
 * To measure another workflow (e.g. the amendment workflow's successor), build a scenario
 * with amendmentScenario({ workflowType, input, activities, ... }) or write a HeapScenario,
 * and add it to `scenarioFactories`; on the command line `--workflow-type` and
 * `--input-file` override the amendment scenario's type and start input.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { SearchAttributePair } from '@temporalio/common';
import type { AmendmentInput } from '../domain/amendment';
import { planAmendment } from '../domain/planner';
import { loadRuleset, type Ruleset } from '../domain/rules';
import {
  type AmendmentActivities,
  type AmendmentView,
  type ApprovalPolicy,
  type ContractWorkflowState,
  contractWorkflowId,
  DEFAULT_GAP_DEADLINE_SECONDS,
  type PlanResult,
  SA,
  turnSignal,
} from '../workflows/definitions';

export const ROOT = resolve(__dirname, '..', '..');

export interface ScenarioContext {
  client: Client;
  taskQueue: string;
  /** Unique per run: workflow ids and the contract id carry it. */
  run: string;
}

export interface StartSpec {
  workflowId: string;
  args: unknown[];
  typedSearchAttributes?: SearchAttributePair[];
  memo?: Record<string, unknown>;
}

export interface HeapScenario {
  name: string;
  description: string;
  /** A prebuilt workflow bundle (bundleWorkflowCode output). */
  bundlePath: string;
  workflowType: string;
  start(i: number, ctx: ScenarioContext): StartSpec;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- activity implementations of any shape
  activities?(ctx: ScenarioContext): Record<string, (...args: any[]) => Promise<unknown>>;
  /** Once per run, before the baseline (e.g. a workflow the scenario's workflows signal). */
  setup?(ctx: ScenarioContext): Promise<void>;
  /** Visibility query (ANDed with the task queue and ExecutionStatus = "Running") for a workflow parked where it is measured. */
  waitingQuery: string;
  /** Let workflow i finish (e.g. the approve signal). */
  release(handle: WorkflowHandle, i: number, ctx: ScenarioContext): Promise<void>;
  /** Undefined when workflow i's result is as expected, else what is wrong. */
  checkResult(result: unknown, i: number): string | undefined;
}

export interface ScenarioOptions {
  /** Prebuilt bundle for the amendment scenario (default lib/workflow-bundle.js). */
  bundle?: string;
  /** The floor bundles (built by heap.ts at run time), by scenario name: floor, floor+zod, floor+schemas. */
  floorBundles?: Record<string, string>;
  workflowType?: string;
  /** A JSON file with the start input of workflow i: strings "{i}" and "{run}" are replaced. */
  inputFile?: string;
}

/** The floor workflows' entry modules (bundled by heap.ts), by scenario name. */
export const FLOOR_ENTRIES: Record<string, { module: string; description: string }> = {
  floor: {
    module: './floor-workflow',
    description: 'a workflow that waits for one signal (bundle: the workflow SDK only)',
  },
  'floor+zod': { module: './heap-floor-zod', description: 'the floor, its bundle also evaluating the zod library' },
  'floor+schemas': {
    module: './heap-floor-schemas',
    description: "the floor, its bundle also evaluating the amendment workflow's schema modules",
  },
};

export function floorScenario(name: string, opts: ScenarioOptions): HeapScenario {
  const bundlePath = opts.floorBundles?.[name];
  if (!bundlePath) throw new Error(`the ${name} scenario needs its bundle (heap.ts builds it)`);
  return {
    name,
    description: FLOOR_ENTRIES[name]?.description ?? name,
    bundlePath,
    workflowType: 'floorWorkflow',
    start: (i, ctx) => ({ workflowId: `floor-${ctx.run}-${i}`, args: [] }),
    waitingQuery: 'AmendmentStatus = "waiting"',
    release: (h) => h.signal('release'),
    checkResult: (r) => (r === 'released' ? undefined : `result ${JSON.stringify(r)}`),
  };
}

/** The 3-user baseline of examples/reference (alice is admin: the plan needs one approval). */
export function baselineAmendment(i: number, run: string): AmendmentInput {
  return {
    amendmentId: `bench-${run}-${i}`,
    contractId: `bench-${run}`,
    sequence: 1,
    submittedBy: 'contracts@acme.com',
    contract: {
      customer: { id: 'acme', name: 'Acme Corp' },
      status: 'active',
      tier: 'professional',
      seats: 5,
      modules: ['analytics'],
      namedUsers: [
        { email: 'alice@acme.com', name: 'Alice Adams', role: 'admin' },
        { email: 'bob@acme.com', name: 'Bob Brown', role: 'member' },
        { email: 'carol@acme.com', name: 'Carol Clark', role: 'viewer' },
      ],
      term: { start: '2025-01-01', end: '2026-12-31' },
      region: 'eu',
    },
  };
}

function substitute(v: unknown, i: number, run: string): unknown {
  if (typeof v === 'string') return v.replaceAll('{i}', String(i)).replaceAll('{run}', run);
  if (Array.isArray(v)) return v.map((x) => substitute(x, i, run));
  if (v && typeof v === 'object')
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, substitute(x, i, run)]));
  return v;
}

export const BENCH_APPROVAL_POLICY: ApprovalPolicy = {
  approvers: ['*'],
  groups: {},
  required: 1,
  separationOfDuties: true,
};

export interface AmendmentScenarioOptions {
  name?: string;
  bundlePath?: string;
  workflowType?: string;
  /** The start arguments of workflow i (default: [{ amendment: baselineAmendment(i, run) }]). */
  args?: (i: number, run: string) => unknown[];
  /** Extra or replacement activities (merged over the stubs). */
  activities?: (ctx: ScenarioContext) => Record<string, (...args: never[]) => Promise<unknown>>;
  approvalPolicy?: ApprovalPolicy;
  /** Default: the approve signal by bench-approver. */
  release?: HeapScenario['release'];
}

/** The stub activities of the amendment workflow: no targets, no audit store; the plan is real. */
export type V1Activities = Pick<
  AmendmentActivities,
  'orderingPolicy' | 'enqueueAmendment' | 'planAmendment' | 'applyOperation' | 'compensateOperation' | 'recordAudit'
>;

export function amendmentStubActivities(
  ctx: ScenarioContext,
  rules: Ruleset,
  approvalPolicy: ApprovalPolicy,
): V1Activities {
  return {
    async orderingPolicy() {
      return { gapDeadlineSeconds: DEFAULT_GAP_DEADLINE_SECONDS };
    },
    async enqueueAmendment(req) {
      // The contract's sequencing, short-circuited: the turn at once, with no applied state.
      if (req.effectiveAt) return;
      await ctx.client.workflow.getHandle(req.workflowId).signal(turnSignal, { kind: 'turn', applied: null });
    },
    async planAmendment({ amendment, applied }): Promise<PlanResult> {
      return { plan: planAmendment(amendment, applied, rules), approvalPolicy };
    },
    async applyOperation() {
      return { outcome: 'applied', prior: null, detail: 'bench stub', attempt: 1 };
    },
    async compensateOperation() {
      return { outcome: 'compensated', detail: 'bench stub' };
    },
    async recordAudit() {
      return { seq: 0, hash: '0'.repeat(64), duplicate: false };
    },
  };
}

export function amendmentScenario(o: AmendmentScenarioOptions = {}): HeapScenario {
  const rules = loadRuleset(
    readFileSync(resolve(ROOT, 'examples', 'reference', 'rules.yaml'), 'utf8'),
    'examples/reference/rules.yaml',
  );
  const args = o.args ?? ((i: number, run: string) => [{ amendment: baselineAmendment(i, run) }]);
  return {
    name: o.name ?? 'amendment',
    description: `${o.workflowType ?? 'amendmentWorkflow'} pending approval of a 3-user baseline (real planner, stub activities)`,
    bundlePath: o.bundlePath ?? resolve(ROOT, 'lib', 'workflow-bundle.js'),
    workflowType: o.workflowType ?? 'amendmentWorkflow',
    start: (i, ctx) => ({
      workflowId: `amendment-bench-${ctx.run}-${i}`,
      args: args(i, ctx.run),
      typedSearchAttributes: [
        { key: SA.ContractId, value: `bench-${ctx.run}` },
        { key: SA.AmendmentId, value: `bench-${ctx.run}-${i}` },
        { key: SA.AmendmentStatus, value: 'queued' },
      ],
      memo: { sequence: 1 },
    }),
    activities: (ctx) => ({
      ...amendmentStubActivities(ctx, rules, o.approvalPolicy ?? BENCH_APPROVAL_POLICY),
      ...(o.activities?.(ctx) ?? {}),
    }),
    async setup(ctx) {
      // The contract entity the amendments release their turn to (it logs and ignores releases it did not grant).
      const initial: ContractWorkflowState = {
        contractId: `bench-${ctx.run}`,
        applied: null,
        waiting: [],
        holder: null,
        recent: [],
      };
      await ctx.client.workflow.start('contractWorkflow', {
        taskQueue: ctx.taskQueue,
        workflowId: contractWorkflowId(`bench-${ctx.run}`),
        args: [initial],
      });
    },
    waitingQuery: 'AmendmentStatus = "pending_approval"',
    release: o.release ?? ((h) => h.signal('approve', { by: 'bench-approver', comment: 'approved by the heap bench' })),
    checkResult: (r) => {
      const v = r as AmendmentView | undefined;
      return v?.status === 'completed'
        ? undefined
        : `status ${v?.status ?? '?'}: ${v?.reason ?? JSON.stringify(r).slice(0, 200)}`;
    },
  };
}

/**
 * The stub activities of amendmentV2 (src/workflows/amendment.ts): the real planner, its plan
 * as the claim check the workflow keeps (one batch per target, on the bench's task queue), every
 * batch applied at once. Typed loosely on purpose: amendmentV2's types are still moving, and a
 * bench must not break the build; a mismatch shows as a workflow that does not park or complete.
 */
export function amendmentV2StubActivities(
  ctx: ScenarioContext,
  rules: Ruleset,
  approvalPolicy: ApprovalPolicy,
): Record<string, (input: never) => Promise<unknown>> {
  const v1 = amendmentStubActivities(ctx, rules, approvalPolicy);
  return {
    async enqueueAmendment(req: Parameters<V1Activities['enqueueAmendment']>[0]) {
      await v1.enqueueAmendment(req);
      return { gapDeadlineSeconds: DEFAULT_GAP_DEADLINE_SECONDS };
    },
    async planAmendmentV2(input: Parameters<V1Activities['planAmendment']>[0]) {
      const { plan } = await v1.planAmendment(input);
      const targets = [...new Set(plan.operations.map((o) => o.target))];
      const batches = targets.map((target) => {
        const idx = plan.operations.map((o, i) => (o.target === target ? i : -1)).filter((i) => i >= 0);
        return {
          target,
          taskQueue: ctx.taskQueue,
          from: idx[0]!,
          to: idx[idx.length - 1]! + 1,
          subjects: new Set(idx.map((i) => plan.operations[i]!.subject)).size,
          batch: 1,
          of: 1,
        };
      });
      return {
        planHash: `bench-${plan.amendmentId}`,
        rulesetHash: plan.rulesetHash,
        customerId: plan.after.customer.id,
        changes: plan.changes.slice(0, 100),
        changesTotal: plan.changes.length,
        violations: plan.violations,
        approval: plan.approval,
        operationsTotal: plan.operations.length,
        operations: plan.operations.slice(0, 50).map((op) => ({
          id: op.id,
          target: op.target,
          action: op.action,
          subject: op.subject,
          description: op.description,
          ruleIds: op.ruleIds,
          outcome: 'pending',
        })),
        batches,
        lanes: Object.fromEntries(targets.map((t) => [t, 1])),
        after: plan.after,
        approvalPolicy,
        plannedAt: new Date().toISOString(),
      };
    },
    async applyBatch(input: { target: string; from: number; to: number }) {
      const operations = Array.from({ length: input.to - input.from }, (_, k) => [input.from + k, 'applied', 1, 0, 0]);
      return { target: input.target, from: input.from, to: input.to, startedAt: new Date().toISOString(), operations };
    },
    async compensateBatch(input: { target: string; from: number; to: number }) {
      return {
        target: input.target,
        operations: Array.from({ length: input.to - input.from }, (_, k) => [input.from + k, 'compensated']),
        at: new Date().toISOString(),
        failed: [],
      };
    },
    recordAudit: v1.recordAudit,
  };
}

export const scenarioFactories: Record<string, (o: ScenarioOptions) => HeapScenario> = {
  floor: (o) => floorScenario('floor', o),
  'floor+zod': (o) => floorScenario('floor+zod', o),
  'floor+schemas': (o) => floorScenario('floor+schemas', o),
  amendment: (o) =>
    amendmentScenario({
      ...(o.bundle ? { bundlePath: o.bundle } : {}),
      ...(o.workflowType ? { workflowType: o.workflowType } : {}),
      ...(o.inputFile
        ? {
            args: (() => {
              const template = JSON.parse(readFileSync(o.inputFile, 'utf8')) as unknown;
              return (i: number, run: string) => [substitute(template, i, run)];
            })(),
          }
        : {}),
    }),
};

scenarioFactories.amendmentV2 = (o) => {
  const rules = loadRuleset(
    readFileSync(resolve(ROOT, 'examples', 'reference', 'rules.yaml'), 'utf8'),
    'examples/reference/rules.yaml',
  );
  return amendmentScenario({
    name: 'amendmentV2',
    workflowType: o.workflowType ?? 'amendmentV2',
    ...(o.bundle ? { bundlePath: o.bundle } : {}),
    activities: (ctx) => amendmentV2StubActivities(ctx, rules, BENCH_APPROVAL_POLICY),
  });
};

export function makeScenario(name: string, o: ScenarioOptions): HeapScenario {
  const f = scenarioFactories[name];
  if (!f) throw new Error(`no scenario ${name} (known: ${Object.keys(scenarioFactories).join(', ')})`);
  return f(o);
}
