/**
 * Approval decisions as a pure state machine: who may approve, how many are needed,
 * separation of duties, the deadline, escalation to a second approver group, reminders.
 * Signals that do not count are recorded with the reason. Time is always an argument
 * (workflow time, in ms), so the machine is deterministic and unit-testable.
 * Workflow-safe.
 */
import { shown } from '../domain/text';
import type { ApprovalPolicy, ApprovalReminder, ApprovalStage, ApprovalView, Decision } from './definitions';

/** Ignored decisions kept in the view (each is in history anyway): a flood of bad signals cannot grow the status without bound. */
export const IGNORED_KEPT = 100;

/**
 * One person, however the name is written: case, compatibility forms and surrounding spaces do
 * not make another approver (under `strict`, the reading of new histories: "SAM" is the submitter
 * sam, and "dana" then "Dana" is one approval, not two).
 */
export const identity = (by: string): string => by.normalize('NFKC').trim().toLowerCase();

/** Eligible user ids of one stage: named users and the members of every group, or `*` for anyone. */
export function eligibleApprovers(stage: {
  approvers: string[];
  groups?: Record<string, string[]>;
}): Set<string> | '*' {
  if (stage.approvers.includes('*')) return '*';
  const groups = stage.groups ?? {};
  const out = new Set<string>();
  for (const a of stage.approvers) {
    if (a.startsWith('group:')) for (const m of groups[a.slice('group:'.length)] ?? []) out.add(m);
    else out.add(a);
  }
  // Groups not named in `approvers` still count (the original policy shape: every group's members may approve).
  if (!stage.approvers.some((a) => a.startsWith('group:')))
    for (const members of Object.values(groups)) for (const m of members) out.add(m);
  return out;
}

export type ApprovalEvent =
  | { kind: 'reminded'; reminder: ApprovalReminder }
  | { kind: 'escalated'; at: string }
  | { kind: 'expired'; at: string };

const iso = (ms: number): string => new Date(ms).toISOString();

export class ApprovalState {
  readonly view: ApprovalView;
  private eligible: Set<string> | '*';
  private deadlineMs: number | undefined;
  private nextReminderMs: number | undefined;

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
      stage: 'primary',
      needed: required ? policy.required : 0,
      stillNeeded: required ? policy.required : 0,
      approvals: [],
      ignored: [],
      eligible: [],
      reminders: [],
    };
    this.view.eligible = this.eligibleList();
  }

  /** Pending approval begins now: the deadline and the first reminder are set from the policy. */
  start(nowMs: number): void {
    this.view.requestedAt = iso(nowMs);
    this.armStage(nowMs, this.policy.deadlineSeconds);
  }

  get stage(): ApprovalStage {
    return this.view.stage;
  }

  /**
   * Why this person's approval would not count, or undefined if it does. `strict` (new
   * histories) compares people by `identity`; without it, exactly as first released (replay).
   */
  whyNot(by: string, strict = false): string | undefined {
    const who = shown(by);
    const same = strict ? (a: string, b: string) => identity(a) === identity(b) : (a: string, b: string) => a === b;
    if (this.view.expired) return `the approval deadline ${this.view.deadline ?? ''} has passed`;
    if (this.policy.separationOfDuties && same(by, this.submittedBy))
      return `${who} submitted this amendment and may not approve it (separation of duties)`;
    if (this.eligible !== '*' && !this.eligible.has(by)) {
      return this.view.stage === 'escalated'
        ? `${who} is not in the escalation approver group for this amendment`
        : `${who} is not an approver for this amendment`;
    }
    if (this.stageApprovals().some((a) => same(a.by, by))) return `${who} has already approved`;
    return undefined;
  }

  approve(d: Decision, strict = false): boolean {
    const why = this.whyNot(d.by, strict);
    if (why) {
      this.ignore(d, why);
      return false;
    }
    this.view.approvals.push({ ...d, stage: this.view.stage });
    this.refresh();
    return true;
  }

  reject(d: Decision & { reason: string }, strict = false): boolean {
    const why = this.whyNot(d.by, strict);
    // Anyone allowed to approve may reject; the submitter may withdraw its own amendment.
    if (why && d.by !== this.submittedBy) {
      this.ignore(d, why.replace(/\bapprove\b/, 'reject'));
      return false;
    }
    this.view.rejection = d;
    return true;
  }

  /** Recorded in the view, `by` as it can be shown (one line, bounded), at most IGNORED_KEPT of them. */
  ignore(d: Decision & { reason?: string }, why: string): void {
    if (this.view.ignored.length >= IGNORED_KEPT) return;
    const extra = {
      ...(d.comment !== undefined ? { comment: shown(d.comment, 500) } : {}),
      ...(typeof d.reason === 'string' ? { reason: shown(d.reason, 500) } : {}),
    };
    this.view.ignored.push({ by: shown(d.by), at: d.at, ...extra, why });
  }

  get approved(): boolean {
    return !this.view.expired && this.stageApprovals().length >= this.view.needed;
  }

  get rejected(): boolean {
    return this.view.rejection !== undefined;
  }

  get expired(): boolean {
    return this.view.expired === true;
  }

  /** The next time the workflow must wake for this approval (deadline or reminder), or undefined. */
  nextWakeMs(): number | undefined {
    const times = [this.deadlineMs, this.nextReminderMs].filter((t): t is number => t !== undefined);
    return times.length === 0 ? undefined : Math.min(...times);
  }

  /**
   * Time has reached `nowMs`: at the deadline, escalate (if the policy says so and this is
   * the first stage) or expire; otherwise send the due reminder. At most one event per call.
   */
  tick(nowMs: number): ApprovalEvent | undefined {
    if (this.approved || this.rejected || this.expired) return undefined;
    if (this.deadlineMs !== undefined && nowMs >= this.deadlineMs) {
      const esc = this.policy.escalation;
      if (this.view.stage === 'primary' && this.policy.onDeadline === 'escalate' && esc) {
        this.view.stage = 'escalated';
        this.view.escalatedAt = iso(nowMs);
        this.view.needed = esc.required;
        this.eligible = eligibleApprovers(esc);
        this.armStage(this.deadlineMs, esc.deadlineSeconds); // from the planned deadline: timers fire a little late
        this.refresh();
        return { kind: 'escalated', at: this.view.escalatedAt };
      }
      this.view.expired = true;
      this.deadlineMs = undefined;
      this.nextReminderMs = undefined;
      return { kind: 'expired', at: iso(nowMs) };
    }
    if (this.nextReminderMs !== undefined && nowMs >= this.nextReminderMs) {
      const reminder: ApprovalReminder = {
        at: iso(nowMs),
        stage: this.view.stage,
        waitingFor: this.waitingFor(),
        to: this.view.eligible,
      };
      this.view.reminders.push(reminder);
      this.nextReminderMs = this.reminderAfter(this.nextReminderMs);
      return { kind: 'reminded', reminder };
    }
    return undefined;
  }

  /** A line for `status`: who is still needed, and by when. */
  waitingFor(): string {
    const left = this.view.stillNeeded;
    const who =
      this.eligible === '*'
        ? `anyone but ${this.submittedBy}`
        : this.view.eligible.join(', ') || 'nobody (no eligible approver is configured)';
    const stage = this.view.stage === 'escalated' ? ' (escalated)' : '';
    const by = this.view.deadline ? ` by ${this.view.deadline}` : '';
    return `waiting for ${left} more approval${left === 1 ? '' : 's'}${stage} from ${who}${by}`;
  }

  private stageApprovals(): ApprovalView['approvals'] {
    return this.view.approvals.filter((a) => (a.stage ?? 'primary') === this.view.stage);
  }

  private armStage(fromMs: number, deadlineSeconds: number | undefined): void {
    this.deadlineMs = deadlineSeconds !== undefined ? fromMs + deadlineSeconds * 1000 : undefined;
    if (this.deadlineMs === undefined) delete this.view.deadline;
    else this.view.deadline = iso(this.deadlineMs);
    this.nextReminderMs = this.reminderAfter(fromMs);
  }

  private reminderAfter(nowMs: number): number | undefined {
    const every = this.policy.reminderEverySeconds;
    if (!every) return undefined;
    const next = nowMs + every * 1000;
    return this.deadlineMs !== undefined && next >= this.deadlineMs ? undefined : next;
  }

  private refresh(): void {
    this.view.stillNeeded = Math.max(0, this.view.needed - this.stageApprovals().length);
    this.view.eligible = this.eligibleList();
  }

  private eligibleList(): string[] {
    if (this.eligible === '*') return ['*'];
    const done = new Set(
      this.view?.approvals.filter((a) => (a.stage ?? 'primary') === this.view.stage).map((a) => a.by) ?? [],
    );
    return [...this.eligible]
      .filter((u) => !(this.policy.separationOfDuties && u === this.submittedBy) && !done.has(u))
      .sort();
  }
}
