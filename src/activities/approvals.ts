/**
 * The worker's side of approval proofs (issue 12): a token from an approve or reject signal is
 * checked against the keys this worker trusts (AMENDCTL_APPROVAL_KEYS). The answer, recorded in
 * history, says who was proven and how, or why the decision does not count; the keys never
 * leave the worker, and the token itself is never written back.
 */
import type { ApprovalVerifier } from '../approvals/token';
import type { VerifyApprovalInput, VerifyApprovalResult } from '../workflows/definitions';

export const NO_TRUST =
  'this worker trusts no approval keys (AMENDCTL_APPROVAL_KEYS is not set): no approval can be verified';

export function createApprovalActivities(trust: ApprovalVerifier | undefined): {
  verifyApproval(input: VerifyApprovalInput): Promise<VerifyApprovalResult>;
} {
  return {
    async verifyApproval(input) {
      if (!trust) return { ok: false, why: NO_TRUST };
      const v = trust.verify(input.token, input);
      if (!v.ok) return v;
      return {
        ok: true,
        by: v.by,
        via: v.via,
        keyId: v.keyId,
        issuedAt: v.issuedAt,
        expiresAt: v.expiresAt,
        tokenId: v.tokenId,
        verifiedAt: new Date().toISOString(),
      };
    },
  };
}
