/**
 * Approval decisions as a pure state machine: who may approve, how many are needed,
 * separation of duties. Signals that do not count are recorded with the reason.
 * Workflow-safe.
 */
import type { ApprovalPolicy, ApprovalView, Decision } from './definitions';

export function eligibleApprovers(policy: ApprovalPolicy): Set<string> | '*' {
  if (policy.approvers.includes('*')) return '*';
  const out = new Set(policy.approvers);
  for (const members of Object.values(policy.groups)) for (const m of members) out.add(m);
  return out;
}

export class ApprovalState {
  readonly view: ApprovalView;
  private readonly eligible: Set<string> | '*';

  constructor(
    private readonly policy: ApprovalPolicy,
    private readonly submittedBy: string,
    required: boolean,
    reasons: ApprovalView['reasons'],
  ) {
    this.eligible = eligibleApprovers(policy);
    this.view = {
      required,
      reasons,
      needed: required ? policy.required : 0,
      approvals: [],
      ignored: [],
      eligible: this.eligibleList(),
    };
  }

  /** Why this person's approval would not count, or undefined if it does. */
  whyNot(by: string): string | undefined {
    if (this.policy.separationOfDuties && by === this.submittedBy) return `${by} submitted this amendment and may not approve it (separation of duties)`;
    if (this.eligible !== '*' && !this.eligible.has(by)) return `${by} is not an approver for this amendment`;
    if (this.view.approvals.some((a) => a.by === by)) return `${by} has already approved`;
    return undefined;
  }

  approve(d: Decision): boolean {
    const why = this.whyNot(d.by);
    if (why) {
      this.view.ignored.push({ ...d, why });
      return false;
    }
    this.view.approvals.push(d);
    this.view.eligible = this.eligibleList();
    return true;
  }

  reject(d: Decision & { reason: string }): boolean {
    const why = this.whyNot(d.by);
    // Anyone allowed to approve may reject; the submitter may withdraw its own amendment.
    if (why && d.by !== this.submittedBy) {
      this.view.ignored.push({ ...d, why: why.replace('approve', 'reject') });
      return false;
    }
    this.view.rejection = d;
    return true;
  }

  ignore(d: Decision, why: string): void {
    this.view.ignored.push({ ...d, why });
  }

  get approved(): boolean {
    return this.view.approvals.length >= this.view.needed;
  }

  get rejected(): boolean {
    return this.view.rejection !== undefined;
  }

  /** A line for `status`: who is still needed. */
  waitingFor(): string {
    const left = this.view.needed - this.view.approvals.length;
    const who = this.eligible === '*' ? `anyone but ${this.submittedBy}` : this.view.eligible.join(', ') || 'nobody (no eligible approver is configured)';
    return `waiting for ${left} more approval${left === 1 ? '' : 's'} from ${who}`;
  }

  private eligibleList(): string[] {
    if (this.eligible === '*') return ['*'];
    return [...this.eligible].filter((u) => !(this.policy.separationOfDuties && u === this.submittedBy) && !this.view?.approvals.some((a) => a.by === u)).sort();
  }
}
