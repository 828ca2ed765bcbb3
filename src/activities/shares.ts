/**
 * A target as one contract sees it, when accounts may be shared by several contracts
 * (src/store/shares.ts): the connector wrapped so that each operation takes or gives up its
 * contract's share, and the target changes only as the set of shares says.
 *
 * - ensure, reactivate, join, grant: the share is taken, the operation applied. An ensure of an
 *   account another contract holds leaves the account's owner attributes (`externalId`) as they
 *   are: the account is linked, never taken over.
 * - deactivate, leave, revoke: the share is given up; the target is changed only when no other
 *   contract holds one, otherwise the operation is `unchanged` ("kept: named by 1 other contract").
 * - updateAttributes: applied, except owner attributes while another contract holds the account.
 * - Compensation restores the share as it was, and compensates the target change only when no other
 *   contract has come to rely on it meanwhile; a share-only step (the target unchanged) is compensated too.
 *
 * What the wrapper adds to an operation's observed state is `{ [SHARE]: {...}, prior }`; the
 * connector only ever sees its own `prior`.
 */
import type { JsonObject, JsonValue } from '../domain/json';
import type { Action } from '../domain/plan';
import type {
  AccountState,
  ApplyResult,
  CompensateResult,
  CompensationSpec,
  Connector,
  OperationJournal,
  OperationSpec,
} from '../connectors/types';
import type { ShareKey, ShareStore, ShareTx } from '../store/shares';

export const SHARE = '@share';
/** Attributes that say whose an account is: an ensure by a second contract never rewrites them. */
export const OWNER_ATTRIBUTES = ['externalId'] as const;

const TAKES: ReadonlySet<Action> = new Set(['ensureAccount', 'reactivateAccount', 'joinGroup', 'grantRole']);
const GIVES_UP: ReadonlySet<Action> = new Set(['deactivateAccount', 'leaveGroup', 'revokeRole']);

/** What an operation did to its contract's share: `took` (it had none), `gaveUp` (the amendment that had taken it). */
interface ShareStep {
  took?: true;
  gaveUp?: string;
}

/** The share an operation is about: the account's (its active state and attributes), or a group's or role's. */
export function shareKey(op: OperationSpec): ShareKey {
  const group = op.params['group'];
  const role = op.params['role'];
  const resource =
    (op.action === 'joinGroup' || op.action === 'leaveGroup') && typeof group === 'string'
      ? `group:${group}`
      : (op.action === 'grantRole' || op.action === 'revokeRole') && typeof role === 'string'
        ? `role:${role}`
        : '';
  return { target: op.target, subject: op.subject, resource };
}

function wrap(step: ShareStep, prior: JsonValue): JsonObject {
  return { [SHARE]: step as JsonObject, prior };
}

function unwrap(prior: JsonValue | undefined): { step: ShareStep; prior: JsonValue } | undefined {
  if (typeof prior !== 'object' || prior === null || Array.isArray(prior) || !(SHARE in prior)) return undefined;
  return { step: prior[SHARE] as ShareStep, prior: prior['prior'] ?? null };
}

/** An operation that changed its contract's share though the target was left as it was: its compensation still has a share to restore. */
export function changedShare(result: { prior?: JsonValue } | undefined): boolean {
  const u = unwrap(result?.prior);
  return u !== undefined && (u.step.took === true || u.step.gaveUp !== undefined);
}

function plural(n: number, what: string): string {
  return `${n} other ${what}${n === 1 ? '' : 's'}`;
}

function withoutOwnerAttributes(op: OperationSpec): OperationSpec {
  const attrs = op.params['attributes'];
  if (typeof attrs !== 'object' || attrs === null || Array.isArray(attrs) || !OWNER_ATTRIBUTES.some((a) => a in attrs))
    return op;
  const kept = Object.fromEntries(
    Object.entries(attrs).filter(([k]) => !(OWNER_ATTRIBUTES as readonly string[]).includes(k)),
  );
  return { ...op, params: { ...op.params, attributes: kept } };
}

/** The connector's result with the share step in its observed state, and the note (another contract names it) in its detail. */
function withStep(d: { step: ShareStep; note?: string }, r: ApplyResult): ApplyResult {
  return {
    ...r,
    prior: wrap(d.step, r.prior),
    ...(d.note ? { detail: r.detail ? `${r.detail}; ${d.note}` : d.note } : {}),
  };
}

export class SharedConnector implements Connector {
  readonly target: string;
  readonly type: string;
  readonly applyGroupChange?: (ops: OperationSpec[]) => Promise<ApplyResult[]>;
  readonly groupChangeActions?: readonly OperationSpec['action'][];
  readonly prefetchAccounts?: (ops: OperationSpec[]) => Promise<void>;

  constructor(
    private readonly inner: Connector,
    private readonly shares: ShareStore,
    private readonly contractId: string,
    private readonly amendmentId: string,
  ) {
    this.target = inner.target;
    this.type = inner.type;
    if (inner.applyGroupChange) this.applyGroupChange = (ops) => this.groupChange(ops);
    if (inner.groupChangeActions) this.groupChangeActions = inner.groupChangeActions;
    if (inner.prefetchAccounts) this.prefetchAccounts = (ops) => inner.prefetchAccounts!(ops);
  }

  readAccount(subject: string): Promise<AccountState | null> {
    return this.inner.readAccount(subject);
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  async apply(op: OperationSpec, journal?: OperationJournal): Promise<ApplyResult> {
    const key = shareKey(op);
    return this.shares.locked([key], async (tx) => {
      const decided = await this.decide(tx, op, key);
      if (!decided.send) return decided.result;
      return withStep(decided, await this.inner.apply(decided.send, journal));
    });
  }

  /** Many joins (or leaves) of one group: the shares in one transaction, the target change for those that need it. */
  private async groupChange(ops: OperationSpec[]): Promise<ApplyResult[]> {
    const keys = ops.map(shareKey);
    return this.shares.locked(keys, async (tx) => {
      const decided = [];
      for (let i = 0; i < ops.length; i++) decided.push(await this.decide(tx, ops[i]!, keys[i]!));
      const send = decided.flatMap((d) => (d.send ? [d.send] : []));
      const results = send.length > 0 ? await this.inner.applyGroupChange!(send) : [];
      if (results.length !== send.length)
        throw new Error(`${this.target}: a group change of ${send.length} gave ${results.length} results`);
      let k = 0;
      return decided.map((d) => (d.send ? withStep(d, results[k++]!) : d.result));
    });
  }

  /** The share step of one operation, and what (if anything) goes to the target. */
  private async decide(
    tx: ShareTx,
    op: OperationSpec,
    key: ShareKey,
  ): Promise<
    { step: ShareStep; send: OperationSpec; note?: string } | { step: ShareStep; send?: undefined; result: ApplyResult }
  > {
    // The shares as they were, and this contract's taken or given up with them (one statement each).
    const all = TAKES.has(op.action)
      ? await tx.sharesThenTake(key, { contractId: this.contractId, amendmentId: this.amendmentId })
      : GIVES_UP.has(op.action)
        ? await tx.sharesThenDrop(key, this.contractId)
        : await tx.shares(key);
    const mine = all.find((s) => s.contractId === this.contractId);
    const others = all.length - (mine ? 1 : 0);
    if (TAKES.has(op.action)) {
      // Taken by this amendment already (an earlier attempt) counts as taken now, so its compensation gives it up.
      const step: ShareStep = !mine || mine.amendmentId === this.amendmentId ? { took: true } : {};
      const send = others > 0 && op.action === 'ensureAccount' ? withoutOwnerAttributes(op) : op;
      return { step, send, ...(others > 0 ? { note: `also named by ${plural(others, 'contract')}` } : {}) };
    }
    if (GIVES_UP.has(op.action)) {
      const step: ShareStep = mine ? { gaveUp: mine.amendmentId } : {};
      if (others > 0)
        return {
          step,
          result: {
            outcome: 'unchanged',
            prior: wrap(step, null),
            detail: `kept: named by ${plural(others, 'contract')}`,
          },
        };
      return { step, send: op };
    }
    // updateAttributes: the person's attributes follow, the owner's stay while another contract holds the account.
    return { step: {}, send: others > 0 ? withoutOwnerAttributes(op) : op };
  }

  async compensate(op: CompensationSpec, result: ApplyResult): Promise<CompensateResult> {
    const u = unwrap(result.prior);
    if (!u) return this.inner.compensate(op, result); // applied before shares: the connector's own compensation
    const key = shareKey(op);
    return this.shares.locked([key], async (tx) => {
      if (u.step.took) await tx.drop(key, this.contractId);
      if (u.step.gaveUp !== undefined) await tx.take(key, { contractId: this.contractId, amendmentId: u.step.gaveUp });
      const shareNote = u.step.took ? 'share given back' : u.step.gaveUp !== undefined ? 'share restored' : undefined;
      if (result.outcome !== 'applied')
        return shareNote
          ? { outcome: 'compensated', detail: `${shareNote} (the target was not changed)` }
          : { outcome: 'unchanged' };
      if (TAKES.has(op.action)) {
        const others = (await tx.shares(key)).filter((s) => s.contractId !== this.contractId).length;
        if (others > 0) return { outcome: 'unchanged', detail: `kept: named by ${plural(others, 'contract')} now` };
      }
      return this.inner.compensate(op, { ...result, prior: u.prior });
    });
  }
}
