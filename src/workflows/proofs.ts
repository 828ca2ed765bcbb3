/** What the approval loops of the amendment and the reconciliation share (issue 12). */
import { condition, proxyLocalActivities } from '@temporalio/workflow';
import type { ApprovalEvent, ApprovalState } from './approval';
import type { AmendmentActivities, ProofView, VerifyApprovalResult } from './definitions';

/** Approval proofs, verified in the worker with the keys it trusts (src/activities/approvals.ts): a verdict, never a failure, for a bad token. */
export const proofs = proxyLocalActivities<Pick<AmendmentActivities, 'verifyApproval'>>({
  startToCloseTimeout: '10s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '10s' },
});

/**
 * The approval loop's wait: until `wakeOn` (a decision arrived, or one to verify), or until the
 * approval's next deadline or reminder is due, which it then applies and returns.
 */
export async function untilApprovalWakes(
  approval: ApprovalState,
  wakeOn: () => boolean,
): Promise<{ woke: true } | { woke: false; event: ApprovalEvent | undefined }> {
  const wake = approval.nextWakeMs();
  if (wake === undefined) {
    await condition(wakeOn);
    return { woke: true };
  }
  if (wake > Date.now() && (await condition(wakeOn, wake - Date.now()))) return { woke: true };
  return { woke: false, event: approval.tick(Date.now()) };
}

/** What a decision records of a verified proof (who vouched, how, when). */
export function proofView(r: Extract<VerifyApprovalResult, { ok: true }>): ProofView {
  return {
    via: r.via,
    keyId: r.keyId,
    issuedAt: r.issuedAt,
    expiresAt: r.expiresAt,
    tokenId: r.tokenId,
    verifiedAt: r.verifiedAt,
  };
}
