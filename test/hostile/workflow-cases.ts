/**
 * The workflow rows of the hostile-input table (issue 10, point 6): signals, updates and
 * queries of the wrong shape or size sent to running workflows, what the typed client refuses
 * before anything is sent, and amendments started by hand past the client. Data and senders
 * only (no server here): test/hostile/workflows.test.ts runs them against the dev server, and
 * test/hostile/documents.test.ts counts them into the table's total.
 */
import { proven } from '../harness/approvals';
import { randomBytes } from 'node:crypto';
import type { WorkflowHandle } from '@temporalio/client';
import type { AmendctlClient } from '../../src/client';
import type { AmendmentInput } from '../../src/domain/amendment';

/** The workflows a case is sent to: a holder pending approval, one queued behind it, one scheduled, their contract. */
export interface Ctx {
  client: AmendctlClient;
  holder: WorkflowHandle;
  queued: WorkflowHandle;
  scheduled: WorkflowHandle;
  contract: WorkflowHandle;
  holderId: string;
  /** A fresh baseline of a contract of its own (for amendments started by hand); `ids[tag]` is its amendment id. */
  ids: Record<string, string>;
  freshBaseline(tag: string): AmendmentInput & { contract: NonNullable<AmendmentInput['contract']> };
  /** Start amendmentV4 by hand (as `temporal workflow start` does), past the client's checks. */
  startRaw(workflowId: string, input: unknown): Promise<WorkflowHandle>;
}

export type Target = 'holder' | 'queued' | 'scheduled';

export type WfExpect =
  /** Recorded as ignored, with why (approval.ignored for approve/reject, ignoredSignals for the others); nothing else changes. */
  | { kind: 'ignored'; on: Target; list: 'approval' | 'signals'; why: RegExp; by?: RegExp }
  /** The Update's validator refuses at once: nothing is written to history. */
  | { kind: 'update-refused'; on: Target; type: string; why: RegExp }
  /** Temporal itself refuses the call (too large, no such handler): nothing reaches the workflow. */
  | { kind: 'server-refused'; on: Target | 'contract'; why: RegExp; noWorkflow?: string }
  /** A signal no handler takes: kept by the SDK, nothing changes. */
  | { kind: 'dropped'; on: Target }
  /** A malformed message to the contract: logged and ignored; its line (holder, waiting, applied) as it was. */
  | { kind: 'contract-ignored' }
  /** The typed client refuses before anything is sent: an InputError naming the field, no workflow started or signalled. */
  | { kind: 'client-refused'; path: string; why: RegExp; noWorkflow?: string }
  /** Started by hand past the client: the workflow ends invalid, with the reason, having applied nothing. */
  | { kind: 'ended-invalid'; why: RegExp };

export interface WorkflowCase {
  id: string;
  boundary: string;
  input: string;
  send: (ctx: Ctx) => Promise<unknown>;
  expect: WfExpect;
}

const big = (n: number): string => 'x'.repeat(n);
/** Random base64: it does not compress, so it stays over Temporal's 2 MB once encoded. */
const noise = (chars: number): string =>
  randomBytes(Math.ceil((chars * 3) / 4))
    .toString('base64')
    .slice(0, chars);

const sig =
  (on: Target, name: string, ...args: unknown[]) =>
  (ctx: Ctx) =>
    ctx[on].signal(name, ...args);
/** A well-formed decision with a valid proof of `by` (the harness vouches), so what is tested is the approval policy. */
const provenSig =
  (on: Target, name: 'approve' | 'reject', d: { by: string; comment?: string; reason?: string }) => async (ctx: Ctx) =>
    ctx[on].signal(name, await proven(ctx[on], name, d));
const upd =
  (on: Target, ...args: unknown[]) =>
  (ctx: Ctx) =>
    ctx[on].executeUpdate('approveUpdate', { args: args as [unknown] });
const toContract =
  (name: string, ...args: unknown[]) =>
  (ctx: Ctx) =>
    ctx.contract.signal(name, ...args);

const ignoredApproval = (why: RegExp, by?: RegExp): WfExpect => ({
  kind: 'ignored',
  on: 'holder',
  list: 'approval',
  why,
  ...(by ? { by } : {}),
});
const ignoredSignal = (on: Target, why: RegExp): WfExpect => ({ kind: 'ignored', on, list: 'signals', why });
const refusedUpdate = (type: string, why: RegExp): WfExpect => ({ kind: 'update-refused', on: 'holder', type, why });

export const WORKFLOW_CASES: WorkflowCase[] = [
  // approve signals to an amendment pending approval (approvers: dana, erin, Sam; submitted by sam)
  {
    id: 'H001',
    boundary: 'approve signal',
    input: 'payload null',
    send: sig('holder', 'approve', null),
    expect: ignoredApproval(/^malformed approve signal: \(root\): Invalid input: expected object, received null$/),
  },
  {
    id: 'H002',
    boundary: 'approve signal',
    input: 'no payload at all',
    send: sig('holder', 'approve'),
    expect: ignoredApproval(/^malformed approve signal: \(root\): Invalid input: expected object, received undefined$/),
  },
  {
    id: 'H003',
    boundary: 'approve signal',
    input: 'payload "dana" (a bare string)',
    send: sig('holder', 'approve', 'dana'),
    expect: ignoredApproval(/expected object, received string$/),
  },
  {
    id: 'H004',
    boundary: 'approve signal',
    input: 'payload 42',
    send: sig('holder', 'approve', 42),
    expect: ignoredApproval(/expected object, received number$/),
  },
  {
    id: 'H005',
    boundary: 'approve signal',
    input: 'payload [] (an array)',
    send: sig('holder', 'approve', []),
    expect: ignoredApproval(/expected object, received array$/),
  },
  {
    id: 'H006',
    boundary: 'approve signal',
    input: 'payload {} (no by)',
    send: sig('holder', 'approve', {}),
    expect: ignoredApproval(/^malformed approve signal: by: Invalid input: expected string, received undefined$/),
  },
  {
    id: 'H007',
    boundary: 'approve signal',
    input: 'by: 1 (a number)',
    send: sig('holder', 'approve', { by: 1 }),
    expect: ignoredApproval(/^malformed approve signal: by: Invalid input: expected string, received number$/, /^1$/),
  },
  {
    id: 'H008',
    boundary: 'approve signal',
    input: 'by: ""',
    send: sig('holder', 'approve', { by: '' }),
    expect: ignoredApproval(/by: the approver \("by"\) is required/),
  },
  {
    id: 'H009',
    boundary: 'approve signal',
    input: 'by: "   " (spaces)',
    send: sig('holder', 'approve', { by: '   ' }),
    expect: ignoredApproval(/by: the approver \("by"\) is required/),
  },
  {
    id: 'H010',
    boundary: 'approve signal',
    input: 'by dana plus an unknown field "role"',
    send: sig('holder', 'approve', { by: 'dana', role: 'admin' }),
    expect: ignoredApproval(/^malformed approve signal: \(root\): Unrecognized key: "role"$/, /^dana$/),
  },
  {
    id: 'H011',
    boundary: 'approve signal',
    input: 'comment of 3,000 characters',
    send: sig('holder', 'approve', { by: 'dana', comment: big(3000) }),
    expect: ignoredApproval(/^malformed approve signal: comment: Too big: expected string to have <=2000 characters$/),
  },
  {
    id: 'H012',
    boundary: 'approve signal',
    input: 'by of 300 characters',
    send: sig('holder', 'approve', { by: big(300) }),
    expect: ignoredApproval(
      /^malformed approve signal: by: at most 256 characters \(got 300\)$/,
      /^x{120}… \(300 characters\)$/,
    ),
  },
  {
    id: 'H013',
    boundary: 'approve signal',
    input: 'by "dana" + right-to-left override',
    send: sig('holder', 'approve', { by: 'dana\u202E' }),
    expect: ignoredApproval(
      /^malformed approve signal: by: contains the bidirectional control U\+202E at character 5/,
      /^dana<U\+202E>$/,
    ),
  },
  {
    id: 'H014',
    boundary: 'approve signal',
    input: 'by "dana" + zero-width space',
    send: sig('holder', 'approve', { by: 'dana\u200B' }),
    expect: ignoredApproval(/^malformed approve signal: by: contains the invisible character U\+200B at character 5$/),
  },
  {
    id: 'H015',
    boundary: 'approve signal',
    input: 'by "mallory" (not an approver)',
    send: provenSig('holder', 'approve', { by: 'mallory' }),
    expect: ignoredApproval(/^mallory is not an approver for this amendment$/),
  },
  {
    id: 'H016',
    boundary: 'approve signal',
    input: 'by "sam" (the submitter)',
    send: provenSig('holder', 'approve', { by: 'sam' }),
    expect: ignoredApproval(/^sam submitted this amendment and may not approve it \(separation of duties\)$/),
  },
  {
    id: 'H017',
    boundary: 'approve signal',
    input: 'by "Sam" (the submitter, capitalised; an approver)',
    send: provenSig('holder', 'approve', { by: 'Sam' }),
    expect: ignoredApproval(/^Sam submitted this amendment and may not approve it \(separation of duties\)$/),
  },
  {
    id: 'H018',
    boundary: 'approve signal',
    input: 'by " sam " (the submitter, padded)',
    send: provenSig('holder', 'approve', { by: ' sam ' }),
    expect: ignoredApproval(/^sam submitted this amendment and may not approve it/),
  },
  {
    id: 'H019',
    boundary: 'approve signal',
    input: 'by of 1.5 MB (compresses under 2 MB)',
    send: sig('holder', 'approve', { by: big(1_500_000) }),
    expect: ignoredApproval(
      /^malformed approve signal: by: at most 256 characters \(got 1500000\)$/,
      /… \(1500000 characters\)$/,
    ),
  },
  {
    id: 'H020',
    boundary: 'approve signal',
    input: '3.5 MB of random text (over 2 MB encoded)',
    send: sig('holder', 'approve', { by: noise(3_500_000) }),
    expect: { kind: 'server-refused', on: 'holder', why: /exceeds|too large|size limit|larger than/i },
  },
  {
    id: 'H021',
    boundary: 'reject signal',
    input: 'payload null',
    send: sig('holder', 'reject', null),
    expect: ignoredApproval(/^malformed reject signal: \(root\): Invalid input: expected object, received null$/),
  },
  {
    id: 'H022',
    boundary: 'reject signal',
    input: 'by dana, no reason',
    send: sig('holder', 'reject', { by: 'dana' }),
    expect: ignoredApproval(
      /^malformed reject signal: reason: Invalid input: expected string, received undefined$/,
      /^dana$/,
    ),
  },
  {
    id: 'H023',
    boundary: 'reject signal',
    input: 'reason "  " (spaces)',
    send: sig('holder', 'reject', { by: 'dana', reason: '  ' }),
    expect: ignoredApproval(/^malformed reject signal: reason: a reason is required$/),
  },
  {
    id: 'H024',
    boundary: 'reject signal',
    input: 'by "mallory" (not an approver)',
    send: provenSig('holder', 'reject', { by: 'mallory', reason: 'no' }),
    expect: ignoredApproval(/^mallory is not an approver for this amendment$/),
  },
  {
    id: 'H025',
    boundary: 'reject signal',
    input: 'reason of 3,000 characters',
    send: sig('holder', 'reject', { by: 'dana', reason: big(3000) }),
    expect: ignoredApproval(/^malformed reject signal: reason: at most 2000 characters \(got 3000\)$/),
  },
  {
    id: 'H026',
    boundary: 'reject signal',
    input: 'by with a line break (a forged log line)',
    send: sig('holder', 'reject', { by: 'dana\nerin approved', reason: 'x' }),
    expect: ignoredApproval(
      /^malformed reject signal: by: contains the control character U\+000A at character 5/,
      /^dana<U\+000A>erin approved$/,
    ),
  },
  {
    id: 'P001',
    boundary: 'approve signal',
    input: 'by "dana" (an approver) with no proof',
    send: sig('holder', 'approve', { by: 'dana' }),
    expect: ignoredApproval(/^no proof of identity: an approval counts only with a signed token/, /^dana$/),
  },
  {
    id: 'P002',
    boundary: 'reject signal',
    input: 'by "dana" (an approver) with no proof',
    send: sig('holder', 'reject', { by: 'dana', reason: 'no' }),
    expect: ignoredApproval(/^no proof of identity/),
  },
  {
    id: 'P003',
    boundary: 'approve signal',
    input: 'proof of 5,000 characters',
    send: sig('holder', 'approve', { by: 'dana', proof: big(5000) }),
    expect: ignoredApproval(/^malformed approve signal: proof: the proof: at most 4096 characters$/),
  },
  {
    id: 'P004',
    boundary: 'approve signal',
    input: 'proof "x" (not a token)',
    send: sig('holder', 'approve', { by: 'dana', proof: 'x' }),
    expect: ignoredApproval(/^the proof is not an amap1 approval token$/),
  },
  {
    id: 'H027',
    boundary: 'cancel signal',
    input: 'a well-formed cancel while pending approval',
    send: sig('holder', 'cancel', { by: 'olga', reason: 'changed my mind' }),
    expect: ignoredSignal('holder', /^too late to cancel: the amendment is pending_approval \(use reject\)$/),
  },
  {
    id: 'H028',
    boundary: 'cancel signal',
    input: 'payload null',
    send: sig('holder', 'cancel', null),
    expect: ignoredSignal(
      'holder',
      /^malformed cancel signal: \(root\): Invalid input: expected object, received null$/,
    ),
  },
  {
    id: 'H029',
    boundary: 'signal name',
    input: '"approved" (no such signal)',
    send: sig('holder', 'approved', { by: 'dana' }),
    expect: { kind: 'dropped', on: 'holder' },
  },
  {
    id: 'H030',
    boundary: 'turn signal (internal)',
    input: 'turn null to the holder',
    send: sig('holder', 'turn', null),
    expect: ignoredSignal(
      'holder',
      /^malformed turn signal: expected \{ kind: "turn", applied \} or \{ kind: "refused", reason \}, got null$/,
    ),
  },
  {
    id: 'H031',
    boundary: 'turn signal (internal)',
    input: 'turn { kind: "bogus" }',
    send: sig('holder', 'turn', { kind: 'bogus' }),
    expect: ignoredSignal('holder', /^malformed turn signal: kind: expected "turn" or "refused", got "bogus"$/),
  },
  {
    id: 'H032',
    boundary: 'contractNotice (internal)',
    input: 'notice null (the first release threw on it)',
    send: sig('holder', 'contractNotice', null),
    expect: ignoredSignal(
      'holder',
      /^malformed contract notice: expected \{ kind: "waiting", \.\.\. \} or \{ kind: "superseded", by, reason \}, got null$/,
    ),
  },
  {
    id: 'H033',
    boundary: 'contractNotice (internal)',
    input: 'notice "x" (a string)',
    send: sig('holder', 'contractNotice', 'x'),
    expect: ignoredSignal('holder', /got string$/),
  },
  {
    id: 'H034',
    boundary: 'contractNotice (internal)',
    input: 'notice { kind: "waiting" } without its fields',
    send: sig('holder', 'contractNotice', { kind: 'waiting' }),
    expect: ignoredSignal(
      'holder',
      /^malformed contract notice: expected appliedSequence \(a number\), missing \(numbers\) and scheduledAhead \(a list\)$/,
    ),
  },

  // the approval Update: refused by its validator, nothing written to history
  {
    id: 'U001',
    boundary: 'approveUpdate',
    input: 'argument null',
    send: upd('holder', null),
    expect: refusedUpdate(
      'InvalidApproval',
      /^malformed approval: \(root\): Invalid input: expected object, received null$/,
    ),
  },
  {
    id: 'U002',
    boundary: 'approveUpdate',
    input: 'no argument',
    send: upd('holder'),
    expect: refusedUpdate(
      'InvalidApproval',
      /^malformed approval: \(root\): Invalid input: expected object, received undefined$/,
    ),
  },
  {
    id: 'U003',
    boundary: 'approveUpdate',
    input: 'by: 1',
    send: upd('holder', { by: 1 }),
    expect: refusedUpdate(
      'InvalidApproval',
      /^malformed approval: by: Invalid input: expected string, received number$/,
    ),
  },
  {
    id: 'U004',
    boundary: 'approveUpdate',
    input: 'by dana plus unknown field "role"',
    send: upd('holder', { by: 'dana', role: 'admin' }),
    expect: refusedUpdate('InvalidApproval', /^malformed approval: \(root\): Unrecognized key: "role"$/),
  },
  {
    id: 'U005',
    boundary: 'approveUpdate',
    input: 'by "mallory"',
    send: upd('holder', { by: 'mallory' }),
    expect: refusedUpdate('ApproverNotAllowed', /^mallory is not an approver for this amendment$/),
  },
  {
    id: 'U006',
    boundary: 'approveUpdate',
    input: 'by "sam" (the submitter)',
    send: upd('holder', { by: 'sam' }),
    expect: refusedUpdate('ApproverNotAllowed', /^sam submitted this amendment and may not approve it/),
  },
  {
    id: 'U007',
    boundary: 'approveUpdate',
    input: 'by "Sam" (the submitter, capitalised; an approver)',
    send: upd('holder', { by: 'Sam' }),
    expect: refusedUpdate(
      'ApproverNotAllowed',
      /^Sam submitted this amendment and may not approve it \(separation of duties\)$/,
    ),
  },
  {
    id: 'U008',
    boundary: 'approveUpdate',
    input: 'by of 1 MB (the refusal stays short)',
    send: upd('holder', { by: big(1_000_000) }),
    expect: refusedUpdate('InvalidApproval', /^malformed approval: by: at most 256 characters \(got 1000000\)$/),
  },
  {
    id: 'U009',
    boundary: 'approveUpdate',
    input: 'by "dana" + right-to-left override',
    send: upd('holder', { by: 'dana\u202E' }),
    expect: refusedUpdate(
      'InvalidApproval',
      /^malformed approval: by: contains the bidirectional control U\+202E at character 5/,
    ),
  },
  {
    id: 'U010',
    boundary: 'approveUpdate',
    input: '3.5 MB of random text (over 2 MB encoded)',
    send: upd('holder', { by: noise(3_500_000) }),
    expect: {
      kind: 'server-refused',
      on: 'holder',
      why: /exceeds|too large|size limit|larger than|unexpected workflow task failure/i,
    },
  },
  {
    id: 'U011',
    boundary: 'update name',
    input: 'update "approve" (the signal\'s name)',
    send: (ctx) => ctx.holder.executeUpdate('approve', { args: [{ by: 'dana' }] }),
    expect: { kind: 'server-refused', on: 'holder', why: /No registered handler for update: approve/ },
  },
  {
    id: 'U012',
    boundary: 'approveUpdate',
    input: 'by dana, to the queued amendment',
    send: upd('queued', { by: 'dana' }),
    expect: {
      kind: 'update-refused',
      on: 'queued',
      type: 'NotPendingApproval',
      why: /is not pending approval \(status queued: waiting for the turn of contract .* holds it since/,
    },
  },
  {
    id: 'U013',
    boundary: 'query name',
    input: 'query "state" (no such query)',
    send: (ctx) => ctx.holder.query('state'),
    expect: { kind: 'server-refused', on: 'holder', why: /^QueryNotRegisteredError/ },
  },

  // internal signals to an amendment queued behind the holder: it stays queued, never jumps the line
  {
    id: 'Q001',
    boundary: 'turn signal (internal)',
    input: 'turn null (the first release threw on it)',
    send: sig('queued', 'turn', null),
    expect: ignoredSignal(
      'queued',
      /^malformed turn signal: expected \{ kind: "turn", applied \} or \{ kind: "refused", reason \}, got null$/,
    ),
  },
  {
    id: 'Q002',
    boundary: 'turn signal (internal)',
    input: 'turn { kind: "turn" } without applied',
    send: sig('queued', 'turn', { kind: 'turn' }),
    expect: ignoredSignal(
      'queued',
      /^malformed turn signal: applied: expected null or \{ contract, sequence, amendmentId, previous \}$/,
    ),
  },
  {
    id: 'Q003',
    boundary: 'turn signal (internal)',
    input: 'turn { kind: "refused" } without reason',
    send: sig('queued', 'turn', { kind: 'refused' }),
    expect: ignoredSignal('queued', /^malformed turn signal: reason: expected a string$/),
  },
  {
    id: 'Q004',
    boundary: 'turn signal (internal)',
    input: 'turn 42',
    send: sig('queued', 'turn', 42),
    expect: ignoredSignal('queued', /got number$/),
  },
  {
    id: 'Q005',
    boundary: 'contractNotice (internal)',
    input: 'waiting notice, appliedSequence "x"',
    send: sig('queued', 'contractNotice', { kind: 'waiting', appliedSequence: 'x', missing: [], scheduledAhead: [] }),
    expect: ignoredSignal('queued', /^malformed contract notice: expected appliedSequence \(a number\)/),
  },
  {
    id: 'Q006',
    boundary: 'contractNotice (internal)',
    input: 'waiting notice with scheduledAhead [1]',
    send: sig('queued', 'contractNotice', { kind: 'waiting', appliedSequence: 0, missing: [], scheduledAhead: [1] }),
    expect: ignoredSignal(
      'queued',
      /^malformed contract notice: scheduledAhead: expected \{ sequence, amendmentId, effectiveAt \} items$/,
    ),
  },
  {
    id: 'Q007',
    boundary: 'cancel signal',
    input: 'cancel by olga without a reason',
    send: sig('queued', 'cancel', { by: 'olga' }),
    expect: ignoredSignal(
      'queued',
      /^malformed cancel signal: reason: Invalid input: expected string, received undefined$/,
    ),
  },
  {
    id: 'Q008',
    boundary: 'cancel signal',
    input: 'cancel with an unknown field "force"',
    send: sig('queued', 'cancel', { by: 'olga', reason: 'x', force: true }),
    expect: ignoredSignal('queued', /^malformed cancel signal: \(root\): Unrecognized key: "force"$/),
  },

  // an amendment scheduled for next month
  {
    id: 'S001',
    boundary: 'cancel signal',
    input: 'payload null',
    send: sig('scheduled', 'cancel', null),
    expect: ignoredSignal(
      'scheduled',
      /^malformed cancel signal: \(root\): Invalid input: expected object, received null$/,
    ),
  },
  {
    id: 'S002',
    boundary: 'cancel signal',
    input: 'reason of 3,000 characters',
    send: sig('scheduled', 'cancel', { by: 'olga', reason: big(3000) }),
    expect: ignoredSignal('scheduled', /^malformed cancel signal: reason: at most 2000 characters \(got 3000\)$/),
  },
  {
    id: 'S003',
    boundary: 'cancel signal',
    input: 'by "olga" + right-to-left override',
    send: sig('scheduled', 'cancel', { by: 'olga\u202E', reason: 'x' }),
    expect: ignoredSignal(
      'scheduled',
      /^malformed cancel signal: by: contains the bidirectional control U\+202E at character 5/,
    ),
  },
  {
    id: 'S004',
    boundary: 'contractNotice (internal)',
    input: 'superseded notice without by and reason',
    send: sig('scheduled', 'contractNotice', { kind: 'superseded' }),
    expect: ignoredSignal('scheduled', /^malformed contract notice: by and reason: expected strings$/),
  },
  {
    id: 'S005',
    boundary: 'turn signal (internal)',
    input: 'turn [] (an array)',
    send: sig('scheduled', 'turn', []),
    expect: ignoredSignal('scheduled', /got an array$/),
  },

  // the contract's entity workflow: anyone with Temporal access can signal it
  {
    id: 'K001',
    boundary: 'enqueue signal (contract)',
    input: 'payload null',
    send: toContract('enqueue', null),
    expect: { kind: 'contract-ignored' },
  },
  {
    id: 'K002',
    boundary: 'enqueue signal (contract)',
    input: 'payload {}',
    send: toContract('enqueue', {}),
    expect: { kind: 'contract-ignored' },
  },
  {
    id: 'K003',
    boundary: 'enqueue signal (contract)',
    input: 'payload "x"',
    send: toContract('enqueue', 'x'),
    expect: { kind: 'contract-ignored' },
  },
  {
    id: 'K004',
    boundary: 'enqueue signal (contract)',
    input: 'sequence "2" (a string) for a ghost amendment',
    send: toContract('enqueue', { amendmentId: 'ghost', sequence: '2', workflowId: 'amendment-ghost' }),
    expect: { kind: 'contract-ignored' },
  },
  {
    id: 'K014',
    boundary: 'enqueue signal (contract)',
    input: 'lateKeeper "yes" (a string) for a ghost amendment',
    send: toContract('enqueue', {
      amendmentId: 'ghost',
      sequence: 2,
      workflowId: 'amendment-ghost',
      lateKeeper: 'yes',
    }),
    expect: { kind: 'contract-ignored' },
  },
  {
    id: 'K005',
    boundary: 'release signal (contract)',
    input: 'payload null',
    send: toContract('release', null),
    expect: { kind: 'contract-ignored' },
  },
  {
    id: 'K006',
    boundary: 'release signal (contract)',
    input: "the holder's release with a corrupt contract",
    send: (ctx) => ctx.contract.signal('release', { amendmentId: ctx.holderId, applied: { seats: 'all' } }),
    expect: { kind: 'contract-ignored' },
  },
  {
    id: 'K007',
    boundary: 'withdraw signal (contract)',
    input: 'payload null',
    send: toContract('withdraw', null),
    expect: { kind: 'contract-ignored' },
  },
  {
    id: 'K008',
    boundary: 'withdraw signal (contract)',
    input: 'payload {}',
    send: toContract('withdraw', {}),
    expect: { kind: 'contract-ignored' },
  },
  {
    id: 'K009',
    boundary: 'holderGone signal (contract)',
    input: 'payload null',
    send: toContract('holderGone', null),
    expect: { kind: 'contract-ignored' },
  },
  {
    id: 'K010',
    boundary: 'holderGone signal (contract)',
    input: 'amendmentId 5 (a number)',
    send: toContract('holderGone', { amendmentId: 5, workflowId: 'x' }),
    expect: { kind: 'contract-ignored' },
  },
  {
    id: 'K011',
    boundary: 'releaseTurn signal (contract)',
    input: 'payload null',
    send: toContract('releaseTurn', null),
    expect: { kind: 'contract-ignored' },
  },
  {
    id: 'K012',
    boundary: 'releaseTurn signal (contract)',
    input: "the holder's id, no by or reason",
    send: (ctx) => ctx.contract.signal('releaseTurn', { amendmentId: ctx.holderId }),
    expect: { kind: 'contract-ignored' },
  },
  {
    id: 'K013',
    boundary: 'query name (contract)',
    input: 'query "contracts" (no such query)',
    send: (ctx) => ctx.contract.query('contracts'),
    expect: { kind: 'server-refused', on: 'contract', why: /^QueryNotRegisteredError/ },
  },

  // the typed client: refused before anything is sent
  {
    id: 'L001',
    boundary: 'client submit',
    input: 'an email with a Cyrillic "а"',
    send: (ctx) => {
      const a = ctx.freshBaseline('cl1');
      a.contract.namedUsers![0]!.email = `аda@${a.contract.customer.id}.test`;
      return ctx.client.submitAmendment(a);
    },
    expect: {
      kind: 'client-refused',
      path: 'contract.namedUsers[0].email',
      why: /mixes Cyrillic and Latin letters/,
      noWorkflow: 'cl1',
    },
  },
  {
    id: 'L002',
    boundary: 'client submit',
    input: 'retryBudgetSeconds 1e20',
    send: (ctx) => ctx.client.submitAmendment(ctx.freshBaseline('cl2'), { retryBudgetSeconds: 1e20 }),
    expect: { kind: 'client-refused', path: 'retryBudgetSeconds', why: /at most 2592000 seconds/, noWorkflow: 'cl2' },
  },
  {
    id: 'L003',
    boundary: 'client submit',
    input: '3.5 MB of random text in a custom clause',
    send: (ctx) => {
      const a = ctx.freshBaseline('cl3');
      a.contract.custom = { blob: noise(3_500_000) };
      return ctx.client.submitAmendment(a);
    },
    expect: {
      kind: 'client-refused',
      path: '',
      why: /^\d+ bytes once compressed and encrypted; Temporal takes at most 2097152 bytes per payload/,
      noWorkflow: 'cl3',
    },
  },
  {
    id: 'L004',
    boundary: 'client approve',
    input: 'by "dana" + zero-width space',
    send: (ctx) => ctx.client.approve(ctx.holderId, { by: 'dana\u200B' }),
    expect: { kind: 'client-refused', path: 'by', why: /invisible character U\+200B/ },
  },
  {
    id: 'L005',
    boundary: 'client status',
    input: 'amendment id "../holder"',
    send: (ctx) => ctx.client.getStatus('../holder'),
    expect: { kind: 'client-refused', path: 'AMENDMENT_ID', why: /is not an id of letters/ },
  },

  // amendments started by hand (`temporal workflow start`), past the client
  {
    id: 'X001',
    boundary: 'workflow start (by hand)',
    input: 'amendment null',
    send: (ctx) => ctx.startRaw('raw1', { amendment: null }),
    expect: {
      kind: 'ended-invalid',
      why: /^invalid amendment: \(root\): Invalid input: expected object, received null$/,
    },
  },
  {
    id: 'X002',
    boundary: 'workflow start (by hand)',
    input: 'a baseline whose email mixes scripts',
    send: (ctx) => {
      const a = ctx.freshBaseline('raw2');
      a.contract.namedUsers![0]!.email = `аda@${a.contract.customer.id}.test`;
      return ctx.startRaw(a.amendmentId, { amendment: a });
    },
    expect: {
      kind: 'ended-invalid',
      why: /^contract: namedUsers\[0\]\.email: an email address that reads as it is: mixes Cyrillic and Latin letters/,
    },
  },
  {
    id: 'X003',
    boundary: 'workflow start (by hand)',
    input: 'a custom clause nested 1,000 deep',
    send: (ctx) => {
      const a = ctx.freshBaseline('raw3');
      let v: unknown = 1;
      for (let i = 0; i < 1000; i++) v = [v];
      a.contract.custom = { x: v as never };
      return ctx.startRaw(a.amendmentId, { amendment: a });
    },
    expect: {
      kind: 'ended-invalid',
      why: /^contract: custom\.x\[0\]\[0\]\[0\]\[0\]\[0\]\[0\]\[0\]\[0\]\[0\]\[0\]\[0\]: nested deeper than 64 levels \(from here down\)$/,
    },
  },
  {
    id: 'X004',
    boundary: 'workflow start (by hand)',
    input: 'a baseline term that ends before it starts',
    send: (ctx) => {
      const a = ctx.freshBaseline('raw4');
      a.contract.term = { start: '2026-06-01', end: '2026-01-01' };
      return ctx.startRaw(a.amendmentId, { amendment: a });
    },
    expect: { kind: 'ended-invalid', why: /^contract: term\.end: the term ends before it starts$/ },
  },
  {
    id: 'X005',
    boundary: 'workflow start (by hand)',
    input: '3.5 MB of random text as input',
    send: (ctx) => ctx.startRaw('raw5', { amendment: { blob: noise(3_500_000) } }),
    expect: {
      kind: 'server-refused',
      on: 'holder',
      why: /exceeds|too large|size limit|larger than/i,
      noWorkflow: 'raw5',
    },
  },
];
