/** submit, status, approve, reject, cancel, reverse: the amendment commands on the typed client. */
import { opFromStored } from '../../audit/record';
import { AmendmentNotFoundError, ApprovalRefusedError, ReversalRefusedError } from '../../client';
import { ApproveInputSchema, checkId, checkInput, RejectInputSchema, RetryBudgetSchema } from '../../client/inputs';
import { OperationStore } from '../../store/operations';
import type { AmendmentView } from '../../workflows/definitions';
import { shown } from '../../domain/text';
import { InputError } from '../../domain/errors';
import { type ApprovalSigner, loadSigningKey } from '../../approvals/token';
import { amendmentWorkflowId } from '../../workflows/definitions';
import {
  connect,
  connectionOptions,
  finalExit,
  flags,
  parse,
  strings,
  readAmendmentFile,
  viewJson,
  viewText,
} from '../common';
import { type CliIO, type Command, UsageError } from '../io';

const SUBMIT_USAGE = 'amendctl submit FILE [--wait] [--json] [--retry-budget SECONDS]';
export const submitCommand: Command = async (argv, io) => {
  const { values, positionals } = parse(
    argv,
    { ...connectionOptions, wait: { type: 'boolean' }, json: { type: 'boolean' }, 'retry-budget': { type: 'string' } },
    SUBMIT_USAGE,
  );
  if (values.help)
    return help(
      io,
      SUBMIT_USAGE,
      'Validates the amendment (JSON or YAML) and starts its workflow. --wait follows it to a final status.',
    );
  if (positionals.length !== 1) throw new UsageError(`expected one FILE\nusage: ${SUBMIT_USAGE}`);
  const amendment = readAmendmentFile(positionals[0]!);
  const raw = values['retry-budget'];
  const budget = raw !== undefined ? (/^\d{1,9}$/.test(raw.trim()) ? Number(raw) : NaN) : undefined;
  if (budget !== undefined) {
    const r = RetryBudgetSchema.safeParse(budget);
    if (!r.success)
      throw new UsageError(
        `--retry-budget takes a whole number of seconds from 1 to 2592000 (30 days), got "${shownArg(raw!)}"`,
      );
  }
  const client = await connect(values);
  try {
    const r = await client.submitAmendment(amendment, budget ? { retryBudgetSeconds: budget } : {});
    if (r.duplicate && r.differs)
      io.err(
        `amendctl: warning: ${r.amendmentId} was submitted before with different content; the first submission stands`,
      );
    if (!values.wait) {
      const v = await client.getStatus(r.amendmentId);
      if (values.json) io.out(viewJson(v));
      else
        io.out(
          `${r.duplicate ? 'already submitted' : 'submitted'}: ${viewText(v)}\nfollow it: amendctl status ${r.amendmentId}`,
        );
      return 0;
    }
    const v = await client.waitForResult(r.amendmentId, {
      onUpdate: values.json ? undefined : (u) => io.err(progressLine(u)),
    });
    io.out(values.json ? viewJson(v) : viewText(v));
    return finalExit(v, io);
  } finally {
    await client.close();
  }
};

function progressLine(v: AmendmentView): string {
  const hint =
    v.status === 'pending_approval'
      ? `\n  approve: amendctl approve ${v.amendmentId} [--comment TEXT]   reject: amendctl reject ${v.amendmentId} --reason TEXT   (signed with your key: --key or AMENDCTL_APPROVER_KEY)`
      : '';
  return `  ${v.amendmentId}: ${v.status}${v.reason ? ` — ${v.reason}` : ''}${hint}`;
}

const STATUS_USAGE = 'amendctl status AMENDMENT_ID [--json] [--operations [--offset N] [--limit N]]';
const STATUS_HELP =
  'Shows the status of an amendment: its plan, approvals, counts per target and outcome, and the first operations. --operations pages through every operation with its outcome, attempts and timing, from the operation store (the amendctl database: AMENDCTL_AUDIT_DATABASE_URL or AMENDCTL_AUDIT_*; the codec keys read it).';
export const statusCommand: Command = async (argv, io) => {
  const { values, positionals } = parse(
    argv,
    { ...connectionOptions, ...strings('offset', 'limit'), ...flags('json', 'operations') },
    STATUS_USAGE,
  );
  if (values.help) return help(io, STATUS_USAGE, STATUS_HELP);
  if (positionals.length !== 1) throw new UsageError(`expected one AMENDMENT_ID\nusage: ${STATUS_USAGE}`);
  checkId('AMENDMENT_ID', positionals[0]!);
  if (values.operations)
    return operationsPage(io, positionals[0]!, {
      offset: wholeNumber(values.offset, '--offset', 0),
      limit: wholeNumber(values.limit, '--limit', 100),
      json: values.json === true,
    });
  return withClient(io, values, async (client) => {
    const v = await client.getStatus(positionals[0]!);
    io.out(values.json ? viewJson(v) : viewText(v));
    return finalExit(v, io);
  });
};

/** A page is at most this many operations (the whole plan is paged through, not read at once). */
const MAX_PAGE = 1000;

function wholeNumber(raw: string | undefined, flag: string, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = /^\d{1,15}$/.test(raw.trim()) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n)) throw new UsageError(`${flag} takes a whole number, got "${shownArg(raw)}"`);
  if (flag === '--limit' && (n < 1 || n > MAX_PAGE))
    throw new UsageError(`--limit takes a whole number from 1 to ${MAX_PAGE}, got "${shownArg(raw)}"`);
  return n;
}

/** An argument echoed in a message: one line, bounded. */
function shownArg(raw: string): string {
  return shown(raw, 60);
}

async function operationsPage(
  io: CliIO,
  amendmentId: string,
  opts: { offset: number; limit: number; json: boolean },
): Promise<number> {
  const store = OperationStore.fromEnv(process.env);
  try {
    const page = await store.page(amendmentId, { offset: opts.offset, limit: Math.max(1, opts.limit) });
    if (!page) {
      io.err(
        `amendctl: no operations of ${amendmentId} in the operation store (not planned yet, invalid, or started by the first release, whose status lists every operation)`,
      );
      return 1;
    }
    const rows = page.operations.map(opFromStored);
    if (opts.json) {
      io.out(
        JSON.stringify(
          { amendmentId, planHash: page.planHash, total: page.total, offset: page.offset, operations: rows },
          null,
          2,
        ),
      );
      return 0;
    }
    const end = page.offset + rows.length;
    io.out(
      `${amendmentId}: operations ${rows.length ? `${page.offset + 1}-${end}` : 'none'} of ${page.total} (plan ${page.planHash.slice(0, 12)})`,
    );
    for (const [i, o] of rows.entries()) {
      const timing = o.durationMs !== undefined ? `, ${o.durationMs} ms` : '';
      const extra = o.error
        ? ` (${o.error.type}: ${o.error.message})`
        : o.compensation
          ? ` (compensation: ${o.compensation.outcome}${o.compensation.detail ? `, ${o.compensation.detail}` : ''})`
          : '';
      io.out(
        `  ${String(page.offset + i + 1).padStart(String(page.total).length)} ${o.outcome.padEnd(11)} ${o.description}${o.attempts ? ` [${o.attempts} attempt${o.attempts === 1 ? '' : 's'}${timing}]` : ''}${extra}`,
      );
    }
    if (end < page.total)
      io.out(`next: amendctl status ${amendmentId} --operations --offset ${end} --limit ${opts.limit}`);
    return 0;
  } finally {
    await store.close();
  }
}

const APPROVE_USAGE =
  'amendctl approve AMENDMENT_ID [--key FILE] [--by USER] [--comment TEXT] [--signal | --print-signal]';
const KEY_HELP =
  "The decision is signed with the approver's key (--key FILE or AMENDCTL_APPROVER_KEY; make one with `amendctl approval-key new`), which the workers must trust (AMENDCTL_APPROVAL_KEYS): without a valid signature it does not count. --by defaults to the key's approver. --print-signal prints the signed `temporal workflow signal` command (valid 10 minutes) instead of sending anything.";
export const approveCommand: Command = async (argv, io) => {
  const { values, positionals } = parse(
    argv,
    { ...connectionOptions, ...strings('by', 'comment', 'key'), ...flags('signal', 'print-signal') },
    APPROVE_USAGE,
  );
  if (values.help) {
    return help(
      io,
      APPROVE_USAGE,
      `Approves an amendment that is pending approval, through the Update \`approveUpdate\`: a refused approval (not an approver, the submitter, already approved, not pending, a proof that does not verify) fails with the reason. --signal sends the \`approve\` signal instead and reads back what the workflow made of it.\n${KEY_HELP}`,
    );
  }
  if (positionals.length !== 1) throw new UsageError(`expected AMENDMENT_ID\nusage: ${APPROVE_USAGE}`);
  const amendmentId = checkId('AMENDMENT_ID', positionals[0]!);
  const key = approverKey(values.key);
  const by = deciderOf(key, values.by, APPROVE_USAGE);
  const decisionIn = checkInput(
    ApproveInputSchema,
    { by, ...(values.comment ? { comment: values.comment } : {}) },
    'invalid approval',
  );
  if (values['print-signal']) return printSignal(io, values, amendmentId, 'approve', key, decisionIn);
  if (values.signal) return decide(io, values, amendmentId, key, (c, id) => c.approve(id, decisionIn));
  return withClient(io, values, async (client) => {
    const r = await client.signWith(key).approveNow(amendmentId, decisionIn);
    io.out(
      r.approved
        ? `${amendmentId}: approved (${r.approvals.map((a) => a.by).join(', ')}); it proceeds`
        : `${amendmentId}: approval by ${by} recorded; ${r.stillNeeded} more needed from ${r.eligible.join(', ')}${r.deadline ? ` by ${r.deadline}` : ''}`,
    );
    return 0;
  });
};

/** The approver's signing key: --key, else AMENDCTL_APPROVER_KEY; a usage error saying how to get one otherwise. */
export function approverKey(file: string | undefined): ApprovalSigner {
  const path = file ?? process.env.AMENDCTL_APPROVER_KEY;
  if (!path)
    throw new UsageError(
      "no approval key: give --key FILE or set AMENDCTL_APPROVER_KEY (make one with `amendctl approval-key new --id ID --approver YOU`, and have its public key added to the workers' AMENDCTL_APPROVAL_KEYS)",
    );
  try {
    return loadSigningKey(path);
  } catch (err) {
    if (err instanceof InputError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (err as Error).message;
    throw new UsageError(`${file ? '--key' : 'AMENDCTL_APPROVER_KEY'} ${path}: cannot read the approval key: ${why}`);
  }
}

/** Who decides: the key's approver (--by may repeat it); a service's key must say whom it vouches for. */
export function deciderOf(key: ApprovalSigner, by: string | undefined, usage: string): string {
  if (key.approver && by !== undefined && by !== key.approver)
    throw new UsageError(`--by ${by}: this key is ${key.approver}'s and signs only as ${key.approver}`);
  const who = by ?? key.approver;
  if (!who)
    throw new UsageError(`key ${key.id} is a service's key: say whom it signs for with --by USER\nusage: ${usage}`);
  return who;
}

/** The signed payload as one `temporal workflow signal` command, for an operator to run (nothing is sent here). */
async function printSignal(
  io: CliIO,
  values: Parameters<typeof connect>[0],
  amendmentId: string,
  decision: 'approve' | 'reject',
  key: ApprovalSigner,
  d: { by: string; comment?: string | undefined; reason?: string | undefined },
): Promise<number> {
  return withClient(io, values, async (client) => {
    const proof = await client.proofFor(
      amendmentId,
      decision,
      d.by,
      decision === 'approve' ? d.comment : d.reason,
      key,
    );
    const payload = JSON.stringify({ ...d, proof });
    const quoted = `'${payload.replace(/'/g, `'\\''`)}'`;
    io.out(
      `temporal workflow signal --workflow-id ${amendmentWorkflowId(amendmentId)} --name ${decision} --input ${quoted}`,
    );
    io.err(`signed for ${d.by} with key ${key.id}, for the current plan of ${amendmentId}; valid for 10 minutes, once`);
    return 0;
  });
}

/** Connect, run, close; a refused approval, an unknown amendment or a refused reversal is one line on stderr and exit 1. */
async function withClient(
  io: CliIO,
  values: Parameters<typeof connect>[0],
  fn: (c: Awaited<ReturnType<typeof connect>>) => Promise<number>,
): Promise<number> {
  const client = await connect(values);
  try {
    return await fn(client);
  } catch (err) {
    if (err instanceof ApprovalRefusedError) {
      io.err(`amendctl: not counted: ${err.message}`);
      return 1;
    }
    if (err instanceof AmendmentNotFoundError || err instanceof ReversalRefusedError) {
      io.err(`amendctl: ${err.message}`);
      return 1;
    }
    throw err;
  } finally {
    await client.close();
  }
}

const CANCEL_USAGE = 'amendctl cancel AMENDMENT_ID --by USER --reason TEXT';
export const cancelCommand: Command = async (argv, io) => {
  const { values, positionals } = parse(
    argv,
    { ...connectionOptions, by: { type: 'string' }, reason: { type: 'string' } },
    CANCEL_USAGE,
  );
  if (values.help)
    return help(
      io,
      CANCEL_USAGE,
      'Cancels a scheduled or queued amendment before it takes effect; it ends rejected and nothing changes.',
    );
  if (positionals.length !== 1 || !values.by || !values.reason)
    throw new UsageError(`expected AMENDMENT_ID, --by USER and --reason TEXT\nusage: ${CANCEL_USAGE}`);
  const amendmentId = checkId('AMENDMENT_ID', positionals[0]!);
  checkInput(RejectInputSchema, { by: values.by, reason: values.reason }, 'invalid cancellation');
  return withClient(io, values, async (client) => {
    await client.cancel(amendmentId, { by: values.by!, reason: values.reason! });
    const v = await client.waitForResult(amendmentId, { onUpdate: () => undefined, pollMs: 250 });
    io.out(`${amendmentId}: ${v.status}${v.reason ? ` — ${v.reason}` : ''}`);
    return v.status === 'rejected' && v.cancellation ? 0 : 1;
  });
};

const REVERSE_USAGE = 'amendctl reverse AMENDMENT_ID --by USER --reason TEXT [--wait] [--json]';
const REVERSE_HELP =
  "Reverses a completed amendment (the contract's last applied one): submits the reversal amendment rollback-AMENDMENT_ID with the next sequence, submitted by USER. A reversal always needs approval under the approval policy; USER cannot approve it. --wait follows it to a final status. `amendctl rollback` is the former name of this command.";
export const reverseCommand: Command = async (argv, io) => {
  const { values, positionals } = parse(
    argv,
    { ...connectionOptions, ...strings('by', 'reason'), ...flags('wait', 'json') },
    REVERSE_USAGE,
  );
  if (values.help) return help(io, REVERSE_USAGE, REVERSE_HELP);
  if (positionals.length !== 1 || !values.by || !values.reason)
    throw new UsageError(`expected AMENDMENT_ID, --by USER and --reason TEXT\nusage: ${REVERSE_USAGE}`);
  checkId('AMENDMENT_ID', positionals[0]!);
  checkInput(RejectInputSchema, { by: values.by, reason: values.reason }, 'invalid reversal request');
  return withClient(io, values, async (client) => {
    const r = await client.reverse(positionals[0]!, { by: values.by!, reason: values.reason! });
    if (!values.wait) {
      const v = await client.getStatus(r.amendmentId);
      io.out(
        values.json
          ? viewJson(v)
          : `${r.duplicate ? 'already requested' : 'reversal requested'}: ${viewText(v)}\napprove: amendctl approve ${r.amendmentId} (as an approver, with your key)`,
      );
      return 0;
    }
    const v = await client.waitForResult(r.amendmentId, {
      onUpdate: values.json ? undefined : (u) => io.err(progressLine(u)),
    });
    io.out(values.json ? viewJson(v) : viewText(v));
    return finalExit(v, io);
  });
};

const REJECT_USAGE = 'amendctl reject AMENDMENT_ID --reason TEXT [--key FILE] [--by USER] [--print-signal]';
export const rejectCommand: Command = async (argv, io) => {
  const { values, positionals } = parse(
    argv,
    { ...connectionOptions, ...strings('by', 'reason', 'key'), ...flags('print-signal') },
    REJECT_USAGE,
  );
  if (values.help)
    return help(
      io,
      REJECT_USAGE,
      `Rejects an amendment that is pending approval; nothing changes in any target.\n${KEY_HELP}`,
    );
  if (positionals.length !== 1 || !values.reason)
    throw new UsageError(`expected AMENDMENT_ID and --reason TEXT\nusage: ${REJECT_USAGE}`);
  const amendmentId = checkId('AMENDMENT_ID', positionals[0]!);
  const key = approverKey(values.key);
  const by = deciderOf(key, values.by, REJECT_USAGE);
  const d = checkInput(RejectInputSchema, { by, reason: values.reason }, 'invalid rejection');
  if (values['print-signal']) return printSignal(io, values, amendmentId, 'reject', key, d);
  return decide(io, values, amendmentId, key, (c, id) => c.reject(id, d));
};

async function decide(
  io: CliIO,
  values: Parameters<typeof connect>[0],
  amendmentId: string,
  key: ApprovalSigner,
  send: (c: Awaited<ReturnType<typeof connect>>, id: string) => Promise<void>,
): Promise<number> {
  return withClient(io, values, async (client) => {
    client.signWith(key);
    const before = await client.getStatus(amendmentId);
    if (before.status !== 'pending_approval') {
      io.err(
        `amendctl: ${amendmentId} is ${before.status}, not pending approval${before.reason ? ` (${before.reason})` : ''}`,
      );
      return 1;
    }
    const ignoredBefore = before.approval?.ignored.length ?? 0;
    await send(client, amendmentId);
    // Signals are asynchronous: read back what the workflow made of this one.
    let after = await client.getStatus(amendmentId);
    for (
      let i = 0;
      i < 20 &&
      after.status === 'pending_approval' &&
      (after.approval?.ignored.length ?? 0) === ignoredBefore &&
      after.approval?.approvals.length === before.approval?.approvals.length;
      i++
    ) {
      await new Promise((r) => setTimeout(r, 250));
      after = await client.getStatus(amendmentId);
    }
    const ignored = after.approval?.ignored.slice(ignoredBefore) ?? [];
    if (ignored.length > 0) {
      io.err(`amendctl: not counted: ${ignored.map((i) => i.why).join('; ')}`);
      return 1;
    }
    io.out(`${amendmentId}: ${after.status}${after.reason ? ` — ${after.reason}` : ''}`);
    return 0;
  });
}

export function help(io: CliIO, usage: string, what: string): number {
  io.out(
    `usage: ${usage}\n\n${what}\n\nTemporal: --address HOST:PORT, --namespace NS, --profile NAME (or TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_PROFILE)`,
  );
  return 0;
}
