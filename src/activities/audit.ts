/**
 * recordAudit: the amendment's audit record, from its final view, appended to the durable
 * hash-chained log (src/audit/store.ts). Idempotent: a retry finds the row already written.
 * The store is opened on first use, once per worker process, from the worker's environment
 * (its pool lets the process exit when idle).
 */
import { Context } from '@temporalio/activity';
import { opFromStored, recordFromView } from '../audit/record';
import { AuditStore } from '../audit/store';
import type { OperationStore } from '../store/operations';
import type { AmendmentActivities } from '../workflows/definitions';
import { countFinal } from '../observability/metrics';
import { currentTraceId } from '../observability/tracing';

/** `operations`: the operation store, where amendmentV2's whole list of operations is (its view shows the first ones). */
export function createAuditActivities(
  operations: () => OperationStore,
  env: NodeJS.ProcessEnv = process.env,
): Pick<AmendmentActivities, 'recordAudit'> {
  let store: AuditStore | undefined;
  return {
    async recordAudit(view) {
      store ??= AuditStore.fromEnv(env);
      const { workflowExecution } = Context.current().info;
      const traceId = currentTraceId();
      const total = view.operationsTotal ?? 0;
      const all =
        view.planHash && total > 0
          ? (await operations().load(view.amendmentId, view.planHash, 0, total)).map(opFromStored)
          : undefined;
      const row = await store.append(
        recordFromView(view, {
          runId: workflowExecution?.runId,
          ...(all ? { operations: all } : {}),
          ...(traceId ? { traceId } : {}),
        }),
      );
      if (!row.duplicate) countFinal(view);
      return row;
    },
  };
}
