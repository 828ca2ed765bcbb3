/**
 * amendctl drift [CONTRACT_ID] [--json]: what each target holds against what the applied
 * contract and the rules say (read-only; run here, with the worker's targets, rules and keys).
 * Exit: 0 no drift, 1 drift found (or a contract cannot be checked), 2 input error, 3 Temporal unreachable.
 *
 * amendctl reconcile run|schedule|unschedule|approve|reject: the reconciliation workflow, by
 * hand or on a Temporal Schedule (src/workflows/reconcile.ts).
 */
import { ScheduleAlreadyRunning, ScheduleNotFoundError, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import { checkId, checkInput, ApproveInputSchema, RejectInputSchema } from '../../client/inputs';
import { ConnectorRegistry, parseTargets } from '../../connectors/registry';
import { checkContractDrift, type DriftReport, NoContractError } from '../../activities/drift';
import { countDifferences, DriftError } from '../../domain/drift';
import { InputError, zodIssues } from '../../domain/errors';
import { ShareStore } from '../../store/shares';
import { DurationSchema, readDocumentFile, workerFiles } from '../../worker/config';
import { FileRulesProvider } from '../../worker/rules';
import { approveSignal, rejectSignal } from '../../workflows/definitions';
import {
  type ReconcileAllView,
  type ReconcileInput,
  ReconcileInputSchema,
  type ReconcilePolicy,
  RECONCILE_POLICIES,
  reconcileScheduleId,
  reconcileStatusQuery,
  type ReconcileView,
  reconcileWorkflowIdPrefix,
} from '../../workflows/reconcile-definitions';
import { connect, connectionOptions, parse } from '../common';
import { type CliIO, type Command, UsageError } from '../io';
import { approverKey, deciderOf, help } from './amendments';

const DRIFT_USAGE = 'amendctl drift [CONTRACT_ID] [--json]';

export const driftCommand: Command = async (argv, io) => {
  const { values, positionals } = parse(argv, { ...connectionOptions, json: { type: 'boolean' } }, DRIFT_USAGE);
  if (values.help) {
    return help(
      io,
      DRIFT_USAGE,
      [
        'Reads what each target holds for the contract (or every contract on the task queue) and lists what differs from the applied contract under the rules:',
        'an account missing, an account active that should not be (or inactive that should be), a membership missing, a membership extra (also accounts the contract does not name in a group of its own), a wrong attribute.',
        'Read-only. Uses the worker configuration (AMENDCTL_TARGETS, AMENDCTL_RULES, the codec keys, the amendctl database for shares). Exit 1 when drift is found.',
      ].join('\n'),
    );
  }
  if (positionals.length > 1) throw new UsageError(`expected at most one CONTRACT_ID\nusage: ${DRIFT_USAGE}`);
  const contractId = positionals[0] !== undefined ? checkId('CONTRACT_ID', positionals[0]) : undefined;
  const env = process.env;
  const files = workerFiles(env);
  const registry = new ConnectorRegistry(
    parseTargets(readDocumentFile(files.targetsFile, 'targets file', 'AMENDCTL_TARGETS'), files.targetsFile, env),
  );
  const rules = new FileRulesProvider(files.rulesFile);
  const client = await connect(values);
  let shares: ShareStore | undefined;
  const deps = {
    registry,
    ruleset: () => rules.current(),
    client: client.client,
    shares: () => (shares ??= ShareStore.fromEnv(env)),
  };
  try {
    const ids = contractId ? [contractId] : await listContracts(client.client, client.taskQueue);
    const reports: DriftReport[] = [];
    const failed: Array<{ contractId: string; error: string }> = [];
    for (const id of ids) {
      try {
        reports.push(await checkContractDrift(deps, id));
      } catch (err) {
        if (!(err instanceof NoContractError || err instanceof DriftError)) throw err;
        failed.push({ contractId: id, error: err.message });
      }
    }
    if (values.json) {
      const shown = reports.map(reportJson);
      io.out(
        JSON.stringify(
          contractId ? (shown[0] ?? { contractId, error: failed[0]?.error }) : { contracts: shown, failed },
          null,
          2,
        ),
      );
    } else {
      for (const r of reports) io.out(reportText(r));
      for (const f of failed) io.err(`amendctl drift: ${f.error}`);
      if (!contractId)
        io.out(
          `${ids.length} contract${ids.length === 1 ? '' : 's'} checked: ${reports.filter((r) => r.differences.length > 0).length} with drift${failed.length ? `, ${failed.length} could not be checked` : ''}`,
        );
    }
    return failed.length > 0 || reports.some((r) => r.differences.length > 0) ? 1 : 0;
  } finally {
    await Promise.allSettled([registry.close(), client.close(), shares?.close()]);
  }
};

async function listContracts(client: Client, taskQueue: string): Promise<string[]> {
  const ids: string[] = [];
  const query = `WorkflowType = 'contractWorkflow' AND ExecutionStatus = 'Running' AND TaskQueue = '${taskQueue.replace(/'/g, '')}'`;
  for await (const w of client.workflow.list({ query, pageSize: 1000 }))
    if (w.workflowId.startsWith('contract-')) ids.push(w.workflowId.slice('contract-'.length));
  return ids.sort();
}

function reportJson(r: DriftReport) {
  return {
    contractId: r.contractId,
    customerId: r.customerId,
    appliedSequence: r.appliedSequence,
    appliedAmendmentId: r.appliedAmendmentId,
    total: r.differences.length,
    counts: countDifferences(r.differences),
    targets: r.targets,
    differences: r.differences,
    sharedSkipped: r.sharedSkipped,
    ...(r.busy ? { busy: r.busy } : {}),
    durationMs: r.durationMs,
  };
}

export function reportText(r: DriftReport): string {
  const n = r.differences.length;
  const lines = [
    `contract ${r.contractId} (customer ${r.customerId}, sequence ${r.appliedSequence}): ${n === 0 ? 'no drift' : `${n} difference${n === 1 ? '' : 's'}`} (${r.durationMs} ms)`,
  ];
  if (r.busy) lines.push(`  note: ${r.busy}; what it is changing may show as drift`);
  for (const t of r.targets) {
    if (!t.checked) {
      lines.push(`  ${t.target}: ${t.why ?? 'not checked'}`);
      continue;
    }
    lines.push(
      `  ${t.target}: ${t.accounts} account${t.accounts === 1 ? '' : 's'}, ${t.groups} group${t.groups === 1 ? '' : 's'} or role${t.groups === 1 ? '' : 's'} checked in ${t.ms} ms: ${t.differences === 0 ? 'as it should be' : `${t.differences} difference${t.differences === 1 ? '' : 's'}`}`,
    );
    for (const d of r.differences.filter((x) => x.target === t.target))
      lines.push(`    ✗ ${d.description.slice(t.target.length + 2)}`);
  }
  if (r.sharedSkipped > 0)
    lines.push(
      `  (${r.sharedSkipped} not counted: another contract holds a share of the account or membership, or a linked account keeps its owner's externalId)`,
    );
  return lines.join('\n');
}

// ---- reconcile ---------------------------------------------------------------------------

const RECONCILE_USAGE = [
  'amendctl reconcile run (CONTRACT_ID | --all) [--policy report|repair|approve] [--target NAME=POLICY ...] [--every DURATION] [--wait] [--json]',
  '       amendctl reconcile schedule (CONTRACT_ID | --all) --every DURATION [--policy ...] [--target NAME=POLICY ...] [--concurrency N]',
  '       amendctl reconcile unschedule (CONTRACT_ID | --all)',
  '       amendctl reconcile approve|reject WORKFLOW_ID [--key FILE] [--by USER] [--comment TEXT | --reason TEXT]',
].join('\n');

export const reconcileCommand: Command = async (argv, io) => {
  const { values, positionals } = parse(
    argv,
    {
      ...connectionOptions,
      all: { type: 'boolean' },
      policy: { type: 'string' },
      target: { type: 'string', multiple: true },
      every: { type: 'string' },
      concurrency: { type: 'string' },
      wait: { type: 'boolean' },
      json: { type: 'boolean' },
      by: { type: 'string' },
      comment: { type: 'string' },
      reason: { type: 'string' },
      key: { type: 'string' },
    },
    RECONCILE_USAGE,
  );
  if (values.help) {
    return help(
      io,
      RECONCILE_USAGE,
      [
        'A reconciliation checks a contract (or every contract) for drift and, per target, reports it (report), repairs it (repair) or repairs it once approved (approve).',
        "Repairs run as amendment batches (the same operations, retries, shares and compensation) and are recorded in the contract's audit log as a reconciliation.",
        'A repair that deactivates more accounts than the mass-change guard allows waits for approval, whatever the policy. Find drift in the Web UI: DriftStatus = "reported" or DriftCount > 0.',
        'schedule: a Temporal Schedule (reconcile-CONTRACT_ID, or reconcile-all) runs it every DURATION (90s, 30m, 1h, 1d); a run still going when the next is due is skipped.',
        'run --every DURATION: one long-lived workflow that reconciles every DURATION on durable timers (for a Temporal without Schedules, such as the time-skipping test server).',
      ].join('\n'),
    );
  }
  const [verb, ...rest] = positionals;
  if (!verb || !['run', 'schedule', 'unschedule', 'approve', 'reject'].includes(verb))
    throw new UsageError(`expected run, schedule, unschedule, approve or reject\nusage: ${RECONCILE_USAGE}`);
  if (verb === 'approve' || verb === 'reject') return decide(verb, rest, values, io);
  if (values.all ? rest.length !== 0 : rest.length !== 1)
    throw new UsageError(`expected one CONTRACT_ID or --all\nusage: ${RECONCILE_USAGE}`);
  const contractId = values.all ? undefined : checkId('CONTRACT_ID', rest[0]!);
  const loop = verb === 'run' && values.every ? checkInput(DurationSchema, values.every, 'invalid --every') : undefined;
  const input = { ...reconcileInput(contractId, values), ...(loop ? { everySeconds: loop } : {}) };
  const client = await connect(values);
  try {
    const scheduleId = reconcileScheduleId(contractId);
    if (verb === 'unschedule') {
      try {
        await client.client.schedule.getHandle(scheduleId).delete();
      } catch (err) {
        if (!(err instanceof ScheduleNotFoundError)) throw err;
        io.err(`amendctl reconcile: no schedule ${scheduleId}`);
        return 1;
      }
      io.out(`deleted the schedule ${scheduleId}`);
      return 0;
    }
    if (verb === 'schedule') {
      if (!values.every) throw new UsageError(`schedule needs --every DURATION\nusage: ${RECONCILE_USAGE}`);
      const every = checkInput(DurationSchema, values.every, 'invalid --every');
      const created = await upsertReconcileSchedule(client.client, client.taskQueue, input, every);
      io.out(
        `${created ? 'created' : 'updated'} the schedule ${scheduleId}: ${contractId ? `contract ${contractId}` : 'every contract'} every ${every} s, policy ${policySummary(input)}`,
      );
      return 0;
    }
    const workflowId = `${reconcileWorkflowIdPrefix(contractId)}-${new Date().toISOString().replace(/[:.]/g, '')}`;
    const handle = await client.client.workflow.start('reconcileWorkflow', {
      workflowId,
      taskQueue: client.taskQueue,
      args: [input],
      staticSummary: `Reconciles ${contractId ? `contract ${contractId}` : 'every contract'} (${policySummary(input)})`,
    });
    if (!values.wait) {
      io.out(values.json ? JSON.stringify({ workflowId: handle.workflowId }) : `started ${handle.workflowId}`);
      return 0;
    }
    const result = (await handle.result()) as ReconcileView | ReconcileAllView;
    io.out(
      values.json
        ? JSON.stringify(result, null, 2)
        : 'reconciliationId' in result
          ? reconcileText(result)
          : allText(result),
    );
    if ('reconciliationId' in result) return ['no_drift', 'repaired'].includes(result.status) ? 0 : 1;
    return result.withDrift.length > 0 ? 1 : 0;
  } finally {
    await client.close();
  }
};

function reconcileInput(
  contractId: string | undefined,
  values: { policy?: string; target?: string[]; concurrency?: string },
): ReconcileInput {
  const targets: Record<string, string> = {};
  for (const t of values.target ?? []) {
    const m = /^([^=]+)=(.+)$/.exec(t);
    if (!m) throw new UsageError(`--target ${t}: expected NAME=POLICY (policies: ${RECONCILE_POLICIES.join(', ')})`);
    targets[m[1]!] = m[2]!;
  }
  const raw = {
    ...(contractId ? { contractId } : {}),
    ...(values.policy ? { policy: values.policy } : {}),
    targets,
    ...(values.concurrency ? { concurrency: Number(values.concurrency) } : {}),
  };
  const r = ReconcileInputSchema.safeParse(raw);
  if (!r.success) throw new InputError('invalid reconciliation options', zodIssues(r.error, 'arguments'));
  return raw as ReconcileInput;
}

function policySummary(input: ReconcileInput): string {
  const t = Object.entries(input.targets ?? {}).map(([k, v]) => `${k}=${v}`);
  return [input.policy ?? 'report', ...t].join(', ');
}

/** Create the reconciliation schedule, or update it if it exists. True when created. */
export async function upsertReconcileSchedule(
  client: Client,
  taskQueue: string,
  input: ReconcileInput,
  everySeconds: number,
): Promise<boolean> {
  const scheduleId = reconcileScheduleId(input.contractId);
  const action = {
    type: 'startWorkflow' as const,
    workflowType: 'reconcileWorkflow',
    args: [input],
    taskQueue,
    workflowId: reconcileWorkflowIdPrefix(input.contractId),
    staticSummary: `Scheduled reconciliation of ${input.contractId ? `contract ${input.contractId}` : 'every contract'}`,
  };
  const spec = { intervals: [{ every: everySeconds * 1000 }] };
  const policies = { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: Math.max(60, everySeconds) * 1000 };
  try {
    await client.schedule.create({ scheduleId, spec, action, policies });
    return true;
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    await client.schedule.getHandle(scheduleId).update((prev) => ({ ...prev, spec, action, policies }));
    return false;
  }
}

async function decide(
  verb: 'approve' | 'reject',
  rest: string[],
  values: {
    by?: string;
    comment?: string;
    reason?: string;
    key?: string;
    address?: string;
    namespace?: string;
    profile?: string;
    'task-queue'?: string;
  },
  io: CliIO,
): Promise<number> {
  if (rest.length !== 1)
    throw new UsageError(
      `expected one WORKFLOW_ID (the reconciliation's, from the Web UI or amendctl reconcile run)\nusage: ${RECONCILE_USAGE}`,
    );
  const workflowId = rest[0]!;
  if (!/^reconcile-[A-Za-z0-9._:/-]{1,300}$/.test(workflowId))
    throw new UsageError(
      `${JSON.stringify(workflowId.slice(0, 80))} is not a reconciliation's workflow id (reconcile-...)`,
    );
  // Signed with the approver's key, as an amendment's decision is (README "Approving").
  const key = approverKey(values.key);
  const by = deciderOf(key, values.by, RECONCILE_USAGE);
  const client = await connect(values);
  try {
    const h = client.client.workflow.getHandle(workflowId);
    const before = await h.query(reconcileStatusQuery);
    if (before.status !== 'pending_approval' || !before.repair) {
      io.err(`amendctl: ${workflowId} is ${before.status}, not pending approval`);
      return 1;
    }
    const sign = (text: string | undefined) =>
      key.sign({
        amendmentId: before.reconciliationId,
        planHash: before.repair!.planHash,
        decision: verb,
        by,
        via: key.approver ? 'personal-key' : 'service',
        ...(text !== undefined ? { text } : {}),
      }).token;
    if (verb === 'approve') {
      const d = checkInput(
        ApproveInputSchema,
        { by, ...(values.comment ? { comment: values.comment } : {}) },
        'invalid approval',
      );
      await h.signal(approveSignal, { ...d, at: new Date().toISOString(), proof: sign(d.comment) });
    } else {
      const d = checkInput(RejectInputSchema, { by, reason: values.reason }, 'invalid rejection');
      await h.signal(rejectSignal, { ...d, at: new Date().toISOString(), proof: sign(d.reason) });
    }
    // Read back what the workflow made of it (it verifies the proof first).
    const seen = (v: ReconcileView) =>
      (v.repair?.approval?.approvals.length ?? 0) +
      (v.repair?.approval?.ignored.length ?? 0) +
      (v.repair?.approval?.rejection ? 1 : 0);
    let v = await h.query(reconcileStatusQuery);
    for (let i = 0; i < 40 && v.status === 'pending_approval' && seen(v) === seen(before); i++) {
      await new Promise((r) => setTimeout(r, 250));
      v = await h.query(reconcileStatusQuery);
    }
    const ignored = v.repair?.approval?.ignored.slice(before.repair.approval?.ignored.length ?? 0) ?? [];
    if (ignored.length > 0) {
      io.err(`amendctl: not counted: ${ignored.map((i) => i.why).join('; ')}`);
      return 1;
    }
    io.out(reconcileText(v));
    return 0;
  } finally {
    await client.close();
  }
}

export function reconcileText(v: ReconcileView): string {
  const lines = [`${v.workflowId} (contract ${v.contractId}): ${v.status}${v.reason ? ` — ${v.reason}` : ''}`];
  for (const d of v.found?.differences ?? []) lines.push(`  ✗ ${d.description}`);
  if (v.found && v.found.total > v.found.differences.length)
    lines.push(
      `  … the first ${v.found.differences.length} of ${v.found.total} differences (amendctl drift ${v.contractId} lists them all)`,
    );
  for (const op of v.repair?.operations ?? []) lines.push(`  ${op.outcome.padEnd(11)} ${op.description}`);
  const a = v.repair?.approval;
  if (a?.required)
    lines.push(
      `  approval: ${a.reasons.map((r) => r.message).join('; ')}; ${a.approvals.map((x) => `approved by ${x.by}`).join(', ') || `waiting (eligible: ${a.eligible.join(', ') || 'anyone'})`}`,
    );
  for (const l of v.repair?.leftForOperator ?? []) lines.push(`  left for an operator: ${l}`);
  return lines.join('\n');
}

function allText(v: ReconcileAllView): string {
  return `${v.workflowId}: ${v.contracts} contract${v.contracts === 1 ? '' : 's'} reconciled: ${
    Object.entries(v.byStatus)
      .map(([s, n]) => `${n} ${s}`)
      .join(', ') || 'none'
  }${v.withDrift.length ? `; drift left: ${v.withDrift.join(', ')}` : ''}`;
}

export type { ReconcilePolicy };
