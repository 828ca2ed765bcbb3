/**
 * recordAudit: the amendment's audit record, from its final view, appended to the durable
 * hash-chained log (src/audit/store.ts). Idempotent: a retry finds the row already written.
 * The store is opened on first use, once per worker process, from the worker's environment
 * (its pool lets the process exit when idle).
 */
import { Context } from '@temporalio/activity';
import { recordFromView } from '../audit/record';
import { AuditStore } from '../audit/store';
import type { AmendmentActivities } from '../workflows/definitions';

export function createAuditActivities(env: NodeJS.ProcessEnv = process.env): Pick<AmendmentActivities, 'recordAudit'> {
  let store: AuditStore | undefined;
  return {
    async recordAudit(view) {
      store ??= AuditStore.fromEnv(env);
      const { workflowExecution } = Context.current().info;
      return store.append(recordFromView(view, { runId: workflowExecution?.runId }));
    },
  };
}
