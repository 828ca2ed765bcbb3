/**
 * The amendments pending approval, for the inbox: Temporal visibility (the search attribute
 * AmendmentStatus = "pending_approval", running, on this deployment's task queue), then the
 * `status` query of each. Bounded: at most `cap` amendments are read (the page says so when there
 * are more), a few queries at a time.
 */
import type { AmendctlClient, AmendmentView } from '../../client';
import { statusQuery } from '../../workflows/definitions';

export const PENDING_CAP = 200;
const PAGE_SIZE = 100;
const AT_ONCE = 8;

export interface Pending {
  views: AmendmentView[];
  /** More amendments are pending than were read. */
  capped: boolean;
  /** Amendments listed whose status could not be read (no worker answered): counted, not shown. */
  unread: number;
}

const quoted = (s: string): string => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

export async function listPending(client: AmendctlClient, cap = PENDING_CAP): Promise<Pending> {
  const query = `AmendmentStatus = "pending_approval" AND ExecutionStatus = "Running" AND TaskQueue = ${quoted(client.taskQueue)}`;
  const ids: string[] = [];
  let capped = false;
  for await (const wf of client.client.workflow.list({ query, pageSize: PAGE_SIZE })) {
    if (ids.length >= cap) {
      capped = true;
      break;
    }
    ids.push(wf.workflowId);
  }
  const views: Array<AmendmentView | undefined> = new Array(ids.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < ids.length; i = next++) {
      views[i] = await client.client.workflow
        .getHandle(ids[i]!)
        .query(statusQuery)
        .catch(() => undefined);
    }
  };
  await Promise.all(Array.from({ length: Math.min(AT_ONCE, ids.length) }, worker));
  const read = views.filter((v): v is AmendmentView => v !== undefined && v.status === 'pending_approval');
  // Oldest request first: the one closest to its deadline is read first.
  read.sort(
    (a, b) =>
      (a.approval?.deadline ?? '\uffff').localeCompare(b.approval?.deadline ?? '\uffff') ||
      a.submittedAt.localeCompare(b.submittedAt),
  );
  return { views: read, capped, unread: views.filter((v) => v === undefined).length };
}
