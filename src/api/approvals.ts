/**
 * The approval desk of `amendctl serve` (issue 12): a person proven by the server (a sign-in to
 * the inbox, an API key bound to them, their bearer JWT) decides; the desk signs that decision
 * with the server's approval key for the amendment's current plan, sends it as the approve or
 * reject signal, and reads back what the workflow made of it. The worker verifies the token and
 * applies the approval policy: the desk's own check only spares a person a decision that cannot
 * count, it is not the control.
 */
import type { AmendctlClient } from '../client';
import { AmendmentNotFoundError } from '../client';
import type { ApprovalSigner, ProofMethod } from '../approvals/token';
import { identity } from '../workflows/approval';
import type { AmendmentView } from '../workflows/definitions';
import { ProblemError } from './problem';

/** A person the server has proven, and how. */
export interface Approver {
  id: string;
  via: Extract<ProofMethod, 'oidc' | 'password' | 'api-key' | 'jwt'>;
}

export type DecisionKind = 'approve' | 'reject';

export interface DecideResult {
  view: AmendmentView;
  /** True when the workflow counted the decision (an approval recorded, or the rejection). */
  counted: boolean;
  /** Why the workflow did not count it. */
  why?: string;
}

export interface DeskOptions {
  client: AmendctlClient;
  signer: ApprovalSigner;
  /** How long a signed decision is valid (default 5 minutes: it is sent at once). */
  tokenSeconds?: number;
  /** How long to wait for the workflow to record the decision (default 10 s). */
  waitMs?: number;
}

const same = (a: string, b: string): boolean => identity(a) === identity(b);

export class ApprovalDesk {
  constructor(private readonly opts: DeskOptions) {}

  /** Why this person may not make this decision now, or undefined. Mirrors the workflow's policy for what the view shows. */
  whyNot(view: AmendmentView, approverId: string, decision: DecisionKind = 'approve'): string | undefined {
    const a = view.approval;
    if (view.status !== 'pending_approval' || !a) return `${view.amendmentId} is ${view.status}, not pending approval`;
    const submitter = same(view.submittedBy, approverId);
    // The submitter may withdraw (reject) its own amendment, never approve it.
    if (decision === 'reject' && submitter) return undefined;
    const done = a.approvals.some((x) => (x.stage ?? 'primary') === a.stage && same(x.by, approverId));
    if (done) return decision === 'approve' ? `${approverId} has already approved` : undefined;
    if (submitter) return `${approverId} submitted this amendment and may not approve it (separation of duties)`;
    if (a.eligible.includes('*') || a.eligible.some((e) => same(e, approverId))) return undefined;
    return `${approverId} is not ${a.stage === 'escalated' ? 'in the escalation approver group' : 'an approver'} for this amendment`;
  }

  /** Signs this person's decision for the current plan, sends it, and answers once the workflow has recorded it. */
  async decide(approver: Approver, amendmentId: string, decision: DecisionKind, text?: string): Promise<DecideResult> {
    const { client } = this.opts;
    const before = await this.status(amendmentId);
    const why = this.whyNot(before, approver.id, decision);
    if (why) {
      if (before.status !== 'pending_approval')
        throw new ProblemError(
          409,
          'not-pending-approval',
          'Not pending approval',
          `${why}${before.reason ? ` (${before.reason})` : ''}`,
        );
      throw new ProblemError(403, 'approver-not-allowed', 'Not allowed', why);
    }
    if (decision === 'reject' && !text?.trim())
      throw new ProblemError(422, 'validation-failed', 'The request does not validate', 'a rejection needs a reason', {
        errors: [{ path: 'reason', message: 'required' }],
      });
    const { token } = this.opts.signer.sign({
      amendmentId,
      planHash: before.planHash!,
      decision,
      by: approver.id,
      via: approver.via,
      ...(text !== undefined ? { text } : {}),
      seconds: this.opts.tokenSeconds ?? 300,
    });
    if (decision === 'approve')
      await client.approve(amendmentId, { by: approver.id, ...(text ? { comment: text } : {}), proof: token });
    else await client.reject(amendmentId, { by: approver.id, reason: text!, proof: token });
    return this.outcome(amendmentId, before);
  }

  private async status(amendmentId: string): Promise<AmendmentView> {
    try {
      return await this.opts.client.getStatus(amendmentId);
    } catch (err) {
      if (err instanceof AmendmentNotFoundError)
        throw new ProblemError(404, 'not-found', 'Not found', `no amendment ${amendmentId}`);
      throw err;
    }
  }

  /** Signals are asynchronous: the decision counted (an approval more, a rejection, the status moved on) or was ignored, with why. */
  private async outcome(amendmentId: string, before: AmendmentView): Promise<DecideResult> {
    const deadline = Date.now() + (this.opts.waitMs ?? 10_000);
    const ignoredBefore = before.approval?.ignored.length ?? 0;
    const approvalsBefore = before.approval?.approvals.length ?? 0;
    for (;;) {
      const v = await this.status(amendmentId);
      const ignored = v.approval?.ignored.slice(ignoredBefore) ?? [];
      if (ignored.length > 0) return { view: v, counted: false, why: ignored.map((i) => i.why).join('; ') };
      if (
        (v.approval?.approvals.length ?? 0) > approvalsBefore ||
        v.approval?.rejection ||
        v.status !== 'pending_approval'
      )
        return { view: v, counted: true };
      if (Date.now() >= deadline)
        throw new ProblemError(
          504,
          'decision-not-recorded',
          'Not recorded in time',
          `the decision was sent to ${amendmentId} but the workflow has not recorded it yet; its status will show it`,
        );
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
