/**
 * Signed decisions for tests that talk to a workflow handle directly (a raw signal or Update, as
 * `temporal workflow signal` would): the proof the harness key (test/harness/approval-keys.ts)
 * signs for the amendment's current plan, as the API would for a signed-in approver.
 */
import type { WorkflowHandle } from '@temporalio/client';
import { type ApprovalSigner, loadSigningKey } from '../../src/approvals/token';
import type { AmendmentView } from '../../src/workflows/definitions';
import { need } from './env';

let signer: ApprovalSigner | undefined;
export const harnessSigner = (): ApprovalSigner => (signer ??= loadSigningKey(need('AMENDCTL_APPROVER_KEY')));

type Decision = { by: string; comment?: string; reason?: string };

/** The decision with a proof for the amendment's current plan (queried from the workflow). */
export async function proven<D extends Decision>(
  h: WorkflowHandle,
  decision: 'approve' | 'reject',
  d: D,
): Promise<D & { proof: string }> {
  const v = await h.query<AmendmentView>('status');
  if (!v.planHash) throw new Error(`${v.amendmentId} has no plan yet (status ${v.status}): nothing to sign for`);
  const by = d.by.trim();
  const { token } = harnessSigner().sign({
    amendmentId: v.amendmentId,
    planHash: v.planHash,
    decision,
    by,
    via: 'service',
    text: decision === 'approve' ? d.comment : d.reason?.trim(),
  });
  return { ...d, proof: token };
}
