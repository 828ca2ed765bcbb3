/**
 * reclaimTurn: the contract workflow takes its turn back from a holder that ended without
 * releasing it (terminated in the Web UI, timed out, failed at the Temporal level, an earlier
 * release's run cancelled), or that an operator released (`amendctl contract release`).
 *
 * What "taken back" means, so that the contract's applied state and the targets agree:
 *  - the contract's applied state stays what it was (the holder never applied as a whole);
 *  - every operation the holder applied and did not compensate is compensated now (from the
 *    operation store, as its own compensation would have, newest first); a compensation that fails is flagged,
 *    in the audit record and in the contract's view, for an operator;
 *  - its batches were stopped first: a batch activity learns at its next heartbeat (at most a
 *    second or two) that its workflow is gone and starts nothing new, so the compensation waits a few
 *    seconds after the close before it reads the store;
 *  - the amendment gets its audit record (it never wrote one): the way it ended, who released it, what was compensated.
 * A holder that still runs is left alone; a reset (a new run of the same workflow) asks for its
 * turn again; a holder that completed normally has released, or its release is on its way.
 *
 * checkHolder: the contract's check on a holder whose keeper starts late (amendmentV4), a local
 * activity: two describes, the holder's run and its keeper.
 */
import { Context } from '@temporalio/activity';
import { type Client, WorkflowNotFoundError } from '@temporalio/client';
import { opFromStored, recordFromView } from '../audit/record';
import { AuditStore } from '../audit/store';
import type { ConnectorRegistry } from '../connectors/registry';
import type { ShareStore } from '../store/shares';
import type { OperationStore } from '../store/operations';
import {
  type AmendmentActivities,
  type AmendmentView,
  type EnqueueRequest,
  FINAL_STATUSES,
  type HolderCheck,
  keeperWorkflowId,
  type ReclaimResult,
  statusQuery,
} from '../workflows/definitions';
import { countFinal } from '../observability/metrics';
import { compensateApplied } from './provisioning';

/** A batch activity sees its workflow gone at its next heartbeat (throttled to a second): wait this long after the close. */
const SETTLE_MS = 3_000;
const BUDGET_S = 300;

export interface ReclaimDeps {
  client: Client;
  registry: ConnectorRegistry;
  store: () => OperationStore;
  shares: () => ShareStore;
  env?: NodeJS.ProcessEnv;
}

export function createReclaimActivities(deps: ReclaimDeps): Pick<AmendmentActivities, 'reclaimTurn' | 'checkHolder'> {
  let audit: AuditStore | undefined;
  return {
    checkHolder: ({ holder }) => checkHolder(deps.client, holder),

    async reclaimTurn({ contractId, holder, by, reason }): Promise<ReclaimResult> {
      const ctx = Context.current();
      const latest = await describe(deps.client, holder.workflowId);
      const run =
        holder.runId && latest?.runId !== holder.runId
          ? await describe(deps.client, holder.workflowId, holder.runId)
          : latest;
      if (latest && latest.runId !== run?.runId && latest.status === 'RUNNING')
        return { kind: 'rerun', runId: latest.runId };
      if (run?.status === 'RUNNING') return { kind: 'running' };
      if (run?.status === 'COMPLETED') return { kind: 'ended' };
      // Its last view (a closed run's queries replay its history): final means its release went out with its audit record.
      const last = run
        ? await deps.client.workflow
            .getHandle(holder.workflowId, run.runId)
            .query(statusQuery)
            .catch(() => undefined)
        : undefined;
      if (last && FINAL_STATUSES.has(last.status)) return { kind: 'ended' };
      const ended = run?.status ?? 'NOT_FOUND';
      const closedAt = run?.closeTime?.getTime() ?? Date.now();
      while (Date.now() < closedAt + SETTLE_MS) {
        ctx.heartbeat({ phase: 'waiting for its batches to stop' });
        await ctx.sleep(Math.min(1000, closedAt + SETTLE_MS - Date.now()));
      }
      const store = deps.store();
      const plan = await store.latestPlan(holder.amendmentId);
      const rows = plan ? await store.all(holder.amendmentId, plan.planHash) : [];
      ctx.heartbeat({ phase: 'compensating', operations: rows.length });
      const { compensated, failed } = plan
        ? await compensateApplied(deps, contractId, holder.amendmentId, plan.planHash, rows, BUDGET_S)
        : { compensated: 0, failed: [] };

      // The audit record: the holder's own last view where it could be read, and what the contract did.
      const at = new Date().toISOString();
      const how = `the workflow ${describeEnd(ended)}${by ? `; ${by} released its turn: ${reason ?? ''}` : ''}`;
      const status: AmendmentView['status'] =
        failed.length > 0 ? 'failed' : compensated > 0 ? 'rolled_back' : 'rejected';
      // The reason is recorded (audit log, contract view) in the words the amendment workflow's own reasons use.
      const what =
        failed.length > 0
          ? `${compensated} applied operation${compensated === 1 ? '' : 's'} compensated, ${failed.length} left for an operator`
          : compensated > 0
            ? `every applied operation (${compensated}) was compensated`
            : 'nothing had been applied';
      const view: AmendmentView = {
        ...(last ?? {
          amendmentId: holder.amendmentId,
          contractId,
          sequence: holder.sequence,
          workflowId: holder.workflowId,
          submittedBy: '',
          changes: [],
          violations: [],
          operations: [],
          submittedAt: at,
        }),
        status,
        reason: `${how}; the contract took its turn back: ${what}`,
        finishedAt: at,
        ...(failed.length > 0 ? { leftForOperator: failed } : {}),
      };
      audit ??= AuditStore.fromEnv(deps.env ?? process.env);
      const all = plan ? (await store.all(holder.amendmentId, plan.planHash)).map(opFromStored) : undefined;
      const rec = await audit.append(
        recordFromView(view, { ...(run ? { runId: run.runId } : {}), ...(all ? { operations: all } : {}) }),
      );
      if (!rec.duplicate) countFinal(view);
      return {
        kind: 'reclaimed',
        view: {
          amendmentId: holder.amendmentId,
          sequence: holder.sequence,
          at,
          ended,
          ...(by ? { by } : {}),
          ...(reason ? { reason } : {}),
          undone: compensated,
          flagged: failed.slice(0, 20),
          auditSeq: rec.seq,
        },
      };
    },
  };
}

interface RunInfo {
  runId: string;
  status: string;
  closeTime?: Date;
  parentRunId?: string;
}

/** Whether the holder's run, and its keeper (a child of that run), are running. */
export async function checkHolder(client: Client, holder: EnqueueRequest): Promise<HolderCheck> {
  const run = await describe(client, holder.workflowId, holder.runId);
  if (run?.status !== 'RUNNING') return 'closed'; // the reclaim sorts out a reset's new run and a normal end
  const keeper = await describe(client, keeperWorkflowId(holder.workflowId));
  return keeper?.status === 'RUNNING' && keeper.parentRunId === run.runId ? 'kept' : 'running';
}

async function describe(client: Client, workflowId: string, runId?: string): Promise<RunInfo | undefined> {
  try {
    const d = await client.workflow.getHandle(workflowId, runId).describe();
    return {
      runId: d.runId,
      status: d.status.name,
      ...(d.closeTime ? { closeTime: d.closeTime } : {}),
      ...(d.parentExecution?.runId ? { parentRunId: d.parentExecution.runId } : {}),
    };
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return undefined;
    throw err;
  }
}

function describeEnd(status: string): string {
  switch (status) {
    case 'TERMINATED':
      return 'was terminated';
    case 'TIMED_OUT':
      return 'timed out';
    case 'FAILED':
      return 'failed';
    case 'CANCELLED':
      return 'was cancelled';
    case 'NOT_FOUND':
      return 'is gone (not found: past retention, or never started)';
    default:
      return `ended ${status.toLowerCase()}`;
  }
}
