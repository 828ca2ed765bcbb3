/**
 * The state of one amendment workflow (amendmentV2) and what its signals and updates do to
 * it. Time is always an argument, and the only Temporal API called here is `patched()` (through
 * `strictSignals`), so the handlers' rules are unit-testable; src/workflows/amendment.ts
 * registers them and runs the phases.
 *
 * Hostile messages (issue 10): a signal of the wrong shape or size is recorded as ignored, with
 * why; none may fail the workflow task (which would leave the amendment, and its contract's
 * turn, stuck for good). A payload that made the first release throw (null, or nothing) is
 * ignored in every history: it never got past its workflow task. Stricter readings (shapes,
 * lengths, unsafe characters, one person however the name is written) apply to histories that
 * have the patch `hostile-signals`, so what a running amendment already decided replays as it was.
 */
import { inWorkflowContext, patched } from '@temporalio/workflow';
import { formatPath } from '../domain/errors';
import { shown, unsafeText } from '../domain/text';
import { type ApprovalState, identity } from './approval';
import { proofView } from './proofs';
import {
  type AmendmentStatus,
  type AmendmentView,
  type AmendmentWorkflowInput,
  ApproveSchema,
  type ApproveUpdateResult,
  type BatchResult,
  type BatchSpec,
  CancelSchema,
  type CompensateBatchResult,
  type ContractNotice,
  type Decision,
  type OperationOutcome,
  type OperationView,
  type PlannedAmendment,
  RejectSchema,
  SHOWN_FAILURES,
  type TurnMessage,
  type VerifyApprovalResult,
} from './definitions';

export type Waiting = Extract<ContractNotice, { kind: 'waiting' }>;

const HOSTILE_SIGNALS_PATCH = 'hostile-signals';
/** The stricter readings of people's and the contract's messages: on in new histories (a marker in history), off in replays of older ones. */
export function strictSignals(): boolean {
  return !inWorkflowContext() || patched(HOSTILE_SIGNALS_PATCH);
}
/** Longest `by` a signal may carry: a user id, not a document. */
export const MAX_BY = 256;
export const MAX_REASON = 2000;
export const IGNORED_SIGNALS_KEPT = 100;
/** Decisions waiting for their proof to be verified, at most (more are ignored: nobody needs to send 20 at once). */
export const UNVERIFIED_KEPT = 20;
/** Why a decision without a proof does not count. */
export const NO_PROOF =
  'no proof of identity: an approval counts only with a signed token (amendctl approve, the API or the inbox)';

/**
 * A decision whose proof the worker has yet to verify (histories with the patch `approval-proof`):
 * the approval loop hands it to the `verifyApproval` activity, then `onVerified` counts it or
 * records why not. An Update waits on `outcome`.
 */
export interface Unverified {
  kind: 'approve' | 'reject';
  by: string;
  at: string;
  text?: string;
  token: string;
  outcome?: { counted: true } | { counted: false; why: string };
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const nullish = (v: unknown): boolean => v === null || v === undefined;

/** Why `by`, or a reason, may not count (new histories), or undefined. */
function personProblem(input: Record<string, unknown>, field: 'reason' | undefined): string | undefined {
  const by = input['by'];
  if (typeof by === 'string') {
    if (by.length > MAX_BY) return `by: at most ${MAX_BY} characters (got ${by.length})`;
    const why = unsafeText(by);
    if (why) return `by: ${why}`;
  }
  const text = field ? input[field] : undefined;
  if (typeof text === 'string' && text.length > MAX_REASON)
    return `${field}: at most ${MAX_REASON} characters (got ${text.length})`;
  return undefined;
}

/** Why a turn message from the contract is malformed, or undefined. */
function turnProblem(t: unknown): string | undefined {
  if (!isObject(t))
    return `expected { kind: "turn", applied } or { kind: "refused", reason }, got ${t === null ? 'null' : Array.isArray(t) ? 'an array' : typeof t}`;
  if (t['kind'] === 'turn') {
    const a = t['applied'];
    if (a === null) return undefined;
    if (
      !isObject(a) ||
      !isObject(a['contract']) ||
      typeof a['sequence'] !== 'number' ||
      typeof a['amendmentId'] !== 'string'
    )
      return 'applied: expected null or { contract, sequence, amendmentId, previous }';
    return undefined;
  }
  if (t['kind'] === 'refused') return typeof t['reason'] === 'string' ? undefined : 'reason: expected a string';
  return `kind: expected "turn" or "refused", got ${shown(JSON.stringify(t['kind']) ?? 'nothing', 40)}`;
}

/** Why a notice from the contract is malformed, or undefined. */
function noticeProblem(n: unknown): string | undefined {
  if (!isObject(n))
    return `expected { kind: "waiting", ... } or { kind: "superseded", by, reason }, got ${n === null ? 'null' : Array.isArray(n) ? 'an array' : typeof n}`;
  if (n['kind'] === 'superseded')
    return typeof n['by'] === 'string' && typeof n['reason'] === 'string'
      ? undefined
      : 'by and reason: expected strings';
  if (n['kind'] === 'waiting') {
    const nums = (v: unknown): boolean => Array.isArray(v) && v.every((x) => typeof x === 'number');
    if (typeof n['appliedSequence'] !== 'number' || !nums(n['missing']) || !Array.isArray(n['scheduledAhead']))
      return 'expected appliedSequence (a number), missing (numbers) and scheduledAhead (a list)';
    const ahead = n['scheduledAhead'] as unknown[];
    if (
      !ahead.every(
        (x) =>
          isObject(x) &&
          typeof x['sequence'] === 'number' &&
          typeof x['amendmentId'] === 'string' &&
          typeof x['effectiveAt'] === 'string',
      )
    )
      return 'scheduledAhead: expected { sequence, amendmentId, effectiveAt } items';
    const h = n['holder'];
    if (h !== undefined && !(isObject(h) && typeof h['amendmentId'] === 'string' && typeof h['sequence'] === 'number'))
      return 'holder: expected { amendmentId, sequence, since? }';
    return undefined;
  }
  return `kind: expected "waiting" or "superseded", got ${shown(JSON.stringify(n['kind']) ?? 'nothing', 40)}`;
}

/** Why an approval Update is refused before anything is written to history. */
export class UpdateRefused extends Error {
  constructor(
    readonly type: 'InvalidApproval' | 'NotPendingApproval' | 'ApproverNotAllowed',
    message: string,
  ) {
    super(message);
  }
}

export class AmendmentState {
  readonly view: AmendmentView;
  approval: ApprovalState | undefined;
  turn: TurnMessage | undefined;
  cancelled: { by: string; at: string; reason: string } | undefined;
  superseded: { by: string; reason: string } | undefined;
  waiting: Waiting | undefined;
  /** Counts contract notices, so a wait can wake on any new one. */
  notices = 0;
  /** Decisions that arrived before a plan existed: shown once the approval view exists. */
  private readonly early: Array<{ by: string; at: string; why: string }> = [];
  /** An approval counts only with a verified proof of its identity (runs with the patch `approval-proof`, asked at the start). */
  proofs = false;
  /** amendmentV3: the strict reading of signals always, without asking its patch (strictSignals). */
  settled = false;
  /** Decisions with a proof, in arrival order, for the approval loop to verify. */
  readonly unverified: Unverified[] = [];
  /** Approval notices in flight (src/workflows/notify.ts): a finished amendment waits for them a little. */
  notifier: { settled(): Promise<void> } | undefined;
  /** Ids of the tokens already used here: a token counts once. */
  private readonly usedTokens = new Set<string>();

  private strict(): boolean {
    return this.settled || strictSignals();
  }

  constructor(input: AmendmentWorkflowInput | undefined, workflowId: string, startedAt: string) {
    const raw = (input?.amendment ?? {}) as Partial<Record<string, unknown>>;
    this.view = {
      amendmentId: typeof raw.amendmentId === 'string' ? raw.amendmentId : workflowId,
      contractId: typeof raw.contractId === 'string' ? raw.contractId : '',
      sequence: typeof raw.sequence === 'number' ? raw.sequence : 0,
      workflowId,
      submittedBy: typeof raw.submittedBy === 'string' ? raw.submittedBy : '',
      status: 'queued',
      changes: [],
      violations: [],
      operations: [],
      submittedAt: startedAt,
    };
  }

  /** Sets status and reason; true when the status itself changed (the search attribute then follows). */
  setStatus(status: AmendmentStatus, reason?: string): boolean {
    const changed = this.view.status !== status;
    this.view.status = status;
    if (reason === undefined) delete this.view.reason;
    else this.view.reason = reason;
    return changed;
  }

  // ---- signals from the contract ----

  onTurn(t: TurnMessage): void {
    const problem = nullish(t) ? turnProblem(t) : undefined; // the first release threw on these
    const strictProblem = problem ?? (turnProblem(t) !== undefined && this.strict() ? turnProblem(t) : undefined);
    if (strictProblem)
      return this.ignoreSignal('turn', '?', new Date().toISOString(), `malformed turn signal: ${strictProblem}`);
    this.turn ??= t;
  }

  onNotice(n: ContractNotice): void {
    const problem = nullish(n) ? noticeProblem(n) : undefined; // the first release threw on these
    const strictProblem = problem ?? (noticeProblem(n) !== undefined && this.strict() ? noticeProblem(n) : undefined);
    if (strictProblem)
      return this.ignoreSignal(
        'contractNotice',
        '?',
        new Date().toISOString(),
        `malformed contract notice: ${strictProblem}`,
      );
    if (n.kind === 'superseded') this.superseded ??= { by: n.by, reason: n.reason };
    else this.waiting = n;
    this.notices++;
  }

  // ---- signals and updates from people ----

  onCancel(input: unknown, at: string): void {
    const parsed = CancelSchema.safeParse(input);
    const by = parsed.success ? parsed.data.by : claimedBy(input);
    if (!parsed.success)
      return this.ignoreSignal('cancel', by, at, `malformed cancel signal: ${issuesText(parsed.error.issues)}`);
    const tooMuch = personProblem(parsed.data, 'reason');
    if (tooMuch && this.strict()) return this.ignoreSignal('cancel', by, at, `malformed cancel signal: ${tooMuch}`);
    // Only before it takes effect: once it holds its turn, reject (pending approval) is the way to stop it.
    if (
      (this.view.status !== 'scheduled' && this.view.status !== 'queued') ||
      this.turn !== undefined ||
      this.cancelled
    ) {
      return this.ignoreSignal(
        'cancel',
        by,
        at,
        `too late to cancel: the amendment is ${this.view.status}${this.view.status === 'pending_approval' ? ' (use reject)' : ''}`,
      );
    }
    this.cancelled = { by, at, reason: parsed.data.reason };
  }

  onApprove(input: unknown, at: string): void {
    const parsed = ApproveSchema.safeParse(input);
    if (!parsed.success)
      return this.ignoreDecision(
        { by: claimedBy(input), at },
        `malformed approve signal: ${issuesText(parsed.error.issues)}`,
      );
    const d = decision(parsed.data, at);
    const tooMuch = personProblem(parsed.data, undefined);
    if (tooMuch && this.strict()) return this.ignoreDecision(d, `malformed approve signal: ${tooMuch}`);
    if (!this.approval || this.view.status !== 'pending_approval')
      return this.ignoreDecision(d, `no approval is pending (status ${this.view.status})`);
    if (this.proofs)
      return void this.toVerify(
        { kind: 'approve', by: d.by, at, ...(d.comment ? { text: d.comment } : {}) },
        parsed.data.proof,
      );
    this.approval.approve(d, this.samePersonChecks(d.by));
    if (!this.approval.approved) this.setStatus('pending_approval', this.approval.waitingFor());
  }

  /** Queues a decision for verification, or records why it cannot count as it is. Returns the queued entry. */
  private toVerify(u: Omit<Unverified, 'token'>, token: string | undefined): Unverified | undefined {
    const d = {
      by: u.by,
      at: u.at,
      ...(u.kind === 'reject' ? { reason: u.text ?? '' } : u.text ? { comment: u.text } : {}),
    };
    if (!token) {
      this.ignoreDecision(d, NO_PROOF);
      return undefined;
    }
    if (this.unverified.length >= UNVERIFIED_KEPT) {
      this.ignoreDecision(d, `more than ${UNVERIFIED_KEPT} decisions are waiting to be verified`);
      return undefined;
    }
    const entry: Unverified = { ...u, token };
    this.unverified.push(entry);
    return entry;
  }

  /**
   * The worker's verdict on a decision's proof: counted (under the approval policy, with the
   * verified identity and how it was proven) or ignored with why. A token counts once.
   */
  onVerified(u: Unverified, r: VerifyApprovalResult): void {
    const d: Decision = { by: u.by, at: u.at, ...(u.kind === 'approve' && u.text ? { comment: u.text } : {}) };
    const ignore = (why: string): void => {
      u.outcome = { counted: false, why };
      this.ignoreDecision(u.kind === 'reject' ? { ...d, reason: u.text ?? '' } : d, why);
    };
    if (!r.ok) return ignore(r.why);
    if (this.usedTokens.has(r.tokenId)) return ignore('this proof was already used (a token counts once)');
    this.usedTokens.add(r.tokenId);
    const a = this.approval;
    if (!a || this.view.status !== 'pending_approval' || a.approved || a.rejected)
      return ignore(`no approval is pending (status ${this.view.status})`);
    const proven: Decision = { ...d, by: r.by, proof: proofView(r) };
    const strict = this.samePersonChecks(r.by);
    const counted =
      u.kind === 'approve' ? a.approve(proven, strict) : a.reject({ ...proven, reason: u.text ?? '' }, strict);
    u.outcome = counted
      ? { counted: true }
      : {
          counted: false,
          why:
            (u.kind === 'approve'
              ? a.whyNot(r.by, strict)
              : a.whyNot(r.by, strict)?.replace(/\bapprove\b/, 'reject')) ?? 'not counted under the approval policy',
        };
    if (!a.approved && !a.rejected) this.setStatus('pending_approval', a.waitingFor());
  }

  /** Decisions still waiting when the approval is decided (or ends): recorded as ignored. */
  dropUnverified(why: string): void {
    for (const u of this.unverified.splice(0)) {
      u.outcome = { counted: false, why };
      this.ignoreDecision({ by: u.by, at: u.at, ...(u.kind === 'reject' ? { reason: u.text ?? '' } : {}) }, why);
    }
  }

  /** The approval Update's validator: throws UpdateRefused, so a refused call leaves no trace in history. */
  validateApproveUpdate(input: unknown): void {
    // Validators never run in a replay: the strict reading always applies here (no patch needed, none may be written).
    const parsed = ApproveSchema.safeParse(input);
    if (!parsed.success)
      throw new UpdateRefused('InvalidApproval', `malformed approval: ${issuesText(parsed.error.issues)}`);
    const tooMuch = personProblem(parsed.data, undefined);
    if (tooMuch) throw new UpdateRefused('InvalidApproval', `malformed approval: ${tooMuch}`);
    const a = this.approval;
    if (!a || this.view.status !== 'pending_approval' || a.approved || a.rejected) {
      throw new UpdateRefused(
        'NotPendingApproval',
        `${this.view.amendmentId} is not pending approval (status ${this.view.status}${this.view.reason ? `: ${this.view.reason}` : ''})`,
      );
    }
    const why = a.whyNot(parsed.data.by, true);
    if (why) throw new UpdateRefused('ApproverNotAllowed', why);
    if (this.proofs && !parsed.data.proof) throw new UpdateRefused('ApproverNotAllowed', NO_PROOF);
    if (this.proofs && this.unverified.length >= UNVERIFIED_KEPT)
      throw new UpdateRefused(
        'ApproverNotAllowed',
        `more than ${UNVERIFIED_KEPT} decisions are waiting to be verified`,
      );
  }

  onApproveUpdate(input: unknown, at: string): ApproveUpdateResult {
    const a = this.approval!;
    const d = decision(ApproveSchema.parse(input), at);
    a.approve(d, this.samePersonChecks(d.by));
    if (!a.approved) this.setStatus('pending_approval', a.waitingFor());
    return this.approvalResult();
  }

  /** The approval Update with a proof: queued for verification like the signal (the validator refused what cannot count). */
  queueApproveUpdate(input: unknown, at: string): Unverified {
    const p = ApproveSchema.parse(input);
    return this.toVerify({ kind: 'approve', by: p.by, at, ...(p.comment ? { text: p.comment } : {}) }, p.proof)!;
  }

  approvalResult(): ApproveUpdateResult {
    const a = this.approval!;
    const v = a.view;
    return {
      amendmentId: this.view.amendmentId,
      approved: a.approved,
      stillNeeded: v.stillNeeded,
      approvals: v.approvals,
      eligible: v.eligible,
      ...(v.deadline ? { deadline: v.deadline } : {}),
    };
  }

  onReject(input: unknown, at: string): void {
    const parsed = RejectSchema.safeParse(input);
    if (!parsed.success)
      return this.ignoreDecision(
        { by: claimedBy(input), at },
        `malformed reject signal: ${issuesText(parsed.error.issues)}`,
      );
    const d = { by: parsed.data.by, at, reason: parsed.data.reason };
    const tooMuch = personProblem(parsed.data, 'reason');
    if (tooMuch && this.strict()) return this.ignoreDecision(d, `malformed reject signal: ${tooMuch}`);
    if (!this.approval || this.view.status !== 'pending_approval')
      return this.ignoreDecision(d, `no approval is pending (status ${this.view.status})`);
    if (this.proofs) return void this.toVerify({ kind: 'reject', by: d.by, at, text: d.reason }, parsed.data.proof);
    this.approval.reject(d, this.samePersonChecks(d.by));
  }

  /**
   * Whether to compare people by identity (case, compatibility forms) for this decision: only
   * when that could change the outcome is the patch asked (so a history gets its marker only
   * where the stricter reading mattered, and an older history replays as it was).
   */
  private samePersonChecks(by: string): boolean {
    const a = this.approval;
    if (!a) return false;
    const submitter = this.view.submittedBy;
    const alike = (x: string): boolean => x !== by && identity(x) === identity(by);
    const matters = alike(submitter) || a.view.approvals.some((p) => alike(p.by));
    return matters && this.strict();
  }

  /** The approval the plan needs (or none): decisions that came early are recorded in it as ignored. */
  startApproval(approval: ApprovalState): void {
    this.approval = approval;
    this.view.approval = approval.view;
    for (const e of this.early.splice(0)) approval.ignore({ by: e.by, at: e.at }, e.why);
  }

  // ---- the plan and its outcomes ----

  /** The view of a plan: the first operations and changes, and counts of all. */
  showPlan(plan: PlannedAmendment): void {
    const v = this.view;
    v.changes = plan.changes;
    v.changesTotal = plan.changesTotal;
    v.violations = plan.violations;
    v.rulesetHash = plan.rulesetHash;
    v.planHash = plan.planHash;
    v.customerId = plan.customerId;
    v.operations = plan.operations.map((o) => ({ ...o }));
    v.operationsTotal = plan.operationsTotal;
    const counts: NonNullable<AmendmentView['operationCounts']> = {};
    for (const b of plan.batches) bump(counts, b.target, 'pending', b.to - b.from);
    v.operationCounts = counts;
  }

  /** A batch's result: counts move from pending, the shown operations and failures follow. */
  recordBatch(b: BatchSpec, r: BatchResult): void {
    const start = Date.parse(r.startedAt);
    const counts = this.view.operationCounts!;
    for (const [idx, outcome, attempts, startedMs, durationMs] of r.operations) {
      bump(counts, b.target, 'pending', -1);
      bump(counts, b.target, outcome, 1);
      const shown = this.view.operations[idx];
      if (shown) {
        shown.outcome = outcome;
        if (attempts > 0) {
          shown.attempts = attempts;
          shown.startedAt = new Date(start + startedMs).toISOString();
          shown.finishedAt = new Date(start + startedMs + durationMs).toISOString();
        }
      }
    }
    for (const f of [...(r.failure ? [r.failure] : []), ...(r.alsoFailed ?? [])]) {
      const { idx, type, message, ...op } = f;
      this.addFailure({ ...op, target: b.target, outcome: 'failed' }, idx, { type, message });
    }
  }

  /** A batch whose activity failed as a whole (timed out, or every worker gone): each of its operations counts as failed. */
  recordBatchLost(b: BatchSpec, error: { type: string; message: string }): void {
    const counts = this.view.operationCounts!;
    bump(counts, b.target, 'pending', -(b.to - b.from));
    bump(counts, b.target, 'failed', b.to - b.from);
    for (let i = b.from; i < b.to; i++) {
      const shown = this.view.operations[i];
      if (shown) shown.outcome = 'failed';
    }
    (this.view.lostBatches ??= []).push({ target: b.target, batch: b.batch, of: b.of, from: b.from, to: b.to, error });
  }

  /** Batches never started (after a failure): their operations are skipped. */
  recordSkipped(b: BatchSpec): void {
    const counts = this.view.operationCounts!;
    bump(counts, b.target, 'pending', -(b.to - b.from));
    bump(counts, b.target, 'skipped', b.to - b.from);
    for (let i = b.from; i < b.to; i++) {
      const shown = this.view.operations[i];
      if (shown) shown.outcome = 'skipped';
    }
  }

  recordCompensation(target: string, r: CompensateBatchResult): void {
    const counts = this.view.operationCounts!;
    for (const [idx, outcome] of r.operations) {
      const to: OperationOutcome = outcome === 'failed' ? 'compensation_failed' : 'compensated';
      bump(counts, target, 'applied', -1);
      bump(counts, target, to, 1);
      const shown = this.view.operations[idx];
      if (shown) {
        shown.outcome = to;
        shown.compensation = {
          outcome,
          at: r.at,
          ...(outcome === 'failed'
            ? { detail: r.failed.find((f) => f.idx === idx)?.message ?? 'compensation failed' }
            : {}),
        };
      }
    }
  }

  count(outcome: OperationOutcome): number {
    let n = 0;
    for (const perTarget of Object.values(this.view.operationCounts ?? {})) n += perTarget[outcome] ?? 0;
    return n;
  }

  private addFailure(op: OperationView, idx: number, error: { type: string; message: string }): void {
    const shown = this.view.operations[idx];
    if (shown) shown.error = error;
    const failures = (this.view.failures ??= []);
    if (failures.length < SHOWN_FAILURES) failures.push({ ...(shown ?? op), outcome: 'failed', error });
  }

  private ignoreDecision(d: { by: string; at: string; reason?: string }, why: string): void {
    if (this.approval) this.approval.ignore(d, why);
    else if (this.early.length < IGNORED_SIGNALS_KEPT) this.early.push({ by: shown(d.by), at: d.at, why });
  }

  /** Recorded in the view, `by` as it can be shown (one line, bounded), at most IGNORED_SIGNALS_KEPT of them. */
  private ignoreSignal(signal: string, by: string, at: string, why: string): void {
    const list = (this.view.ignoredSignals ??= []);
    if (list.length < IGNORED_SIGNALS_KEPT) list.push({ signal, by: shown(by), at, why });
  }
}

function bump(
  counts: NonNullable<AmendmentView['operationCounts']>,
  target: string,
  outcome: OperationOutcome,
  n: number,
): void {
  const t = (counts[target] ??= {});
  const next = (t[outcome] ?? 0) + n;
  if (next === 0) delete t[outcome];
  else t[outcome] = next;
}

/** Who a malformed signal says it is from, as it can be shown (one line, bounded). */
function claimedBy(input: unknown): string {
  const by = (input as { by?: unknown } | null)?.by;
  if (by === undefined || by === null) return '?';
  if (typeof by === 'string') return shown(by);
  return shown(JSON.stringify(by) ?? String(by), 60);
}

function decision(d: { by: string; comment?: string | undefined }, at: string): Decision {
  return { by: d.by, at, ...(d.comment ? { comment: d.comment } : {}) };
}

export function issuesText(issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }>): string {
  return issues
    .slice(0, 5)
    .map((i) => `${shown(formatPath(i.path), 80) || '(root)'}: ${shown(i.message, 300)}`)
    .join('; ');
}
