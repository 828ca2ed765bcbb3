/** contract: a contract's line (applied sequence, holder, waiting, scheduled, recent), and an operator's release of its turn. */
import { ReleaseRefusedError } from '../../client';
import { checkId, checkInput, RejectInputSchema } from '../../client/inputs';
import type { AppliedStateView, ContractView } from '../../workflows/definitions';
import { connect, connectionOptions, parse } from '../common';
import { type Command, UsageError } from '../io';
import { help } from './amendments';

const USAGE =
  'amendctl contract CONTRACT_ID [--json] | amendctl contract release CONTRACT_ID --by USER --reason TEXT [--json]';

export const contractCommand: Command = async (argv, io) => {
  const { values, positionals } = parse(
    argv,
    { ...connectionOptions, json: { type: 'boolean' }, by: { type: 'string' }, reason: { type: 'string' } },
    USAGE,
  );
  if (values.help) {
    return help(
      io,
      USAGE,
      [
        "Shows a contract's line: the sequence applied, who holds its turn and since when, who waits, what is scheduled, the last amendments applied, turns taken back.",
        'release: frees the turn of a holder whose workflow has ended without releasing it (an amendment started before turn keepers existed, or one whose keeper could not report).',
        'What the holder applied is compensated and an audit record names USER and TEXT. A holder that still runs is refused: reject or cancel it, and it releases the turn itself.',
      ].join('\n'),
    );
  }
  const release = positionals[0] === 'release';
  const ids = release ? positionals.slice(1) : positionals;
  if (ids.length !== 1) throw new UsageError(`expected one CONTRACT_ID\nusage: ${USAGE}`);
  if (release && (!values.by || !values.reason))
    throw new UsageError(`release needs --by USER and --reason TEXT\nusage: ${USAGE}`);
  if (!release && (values.by || values.reason))
    throw new UsageError(`--by and --reason go with release\nusage: ${USAGE}`);
  const contractId = checkId('CONTRACT_ID', ids[0]!);
  if (release) checkInput(RejectInputSchema, { by: values.by, reason: values.reason }, 'invalid release');
  const client = await connect(values);
  try {
    if (release) {
      const before = await client.getContract(contractId);
      const view = await client.releaseTurn(contractId, { by: values.by!, reason: values.reason! });
      const taken = view.reclaimed?.[view.reclaimed.length - 1];
      if (values.json) io.out(JSON.stringify({ released: before.view.holder, contract: view }, null, 2));
      else
        io.out(
          `released the turn of ${before.view.holder ?? '?'}${taken && taken.amendmentId === before.view.holder ? `: ${reclaimText(taken)}` : ''}\n${contractText(view, null)}`,
        );
      return 0;
    }
    const { view, applied } = await client.getContract(contractId);
    io.out(
      values.json
        ? JSON.stringify(
            { ...view, applied: applied ? { sequence: applied.sequence, amendmentId: applied.amendmentId } : null },
            null,
            2,
          )
        : contractText(view, applied),
    );
    return 0;
  } catch (err) {
    if (err instanceof ReleaseRefusedError) {
      io.err(`amendctl contract: ${err.message}`);
      return 1;
    }
    if ((err as Error)?.name === 'WorkflowNotFoundError') {
      io.err(`amendctl contract: no contract ${contractId} (no amendment of it was ever submitted)`);
      return 1;
    }
    throw err;
  } finally {
    await client.close();
  }
};

function reclaimText(r: NonNullable<ContractView['reclaimed']>[number]): string {
  const flagged =
    r.flagged.length > 0
      ? `; left for an operator: ${r.flagged.slice(0, 3).join('; ')}${r.flagged.length > 3 ? ` and ${r.flagged.length - 3} more` : ''}`
      : '';
  return `${r.amendmentId} (sequence ${r.sequence}) ${r.ended.toLowerCase()}${r.by ? `, released by ${r.by}: ${r.reason ?? ''}` : ''}; ${r.undone} operation${r.undone === 1 ? '' : 's'} compensated${flagged} (${r.at})`;
}

export function contractText(v: ContractView, applied: AppliedStateView | null): string {
  const lines = [
    `contract ${v.contractId}: sequence ${v.appliedSequence} applied${v.lastAmendmentId ? ` (by ${v.lastAmendmentId})` : ''}${applied ? `, ${applied.contract.namedUsers.length} named user${applied.contract.namedUsers.length === 1 ? '' : 's'}` : ''}`,
  ];
  const h = v.holding;
  if (h)
    lines.push(
      `  holder:    ${h.amendmentId} (sequence ${h.sequence})${h.since ? ` since ${h.since}` : ''}${h.reclaiming ? `; being taken back: ${h.reclaiming.why} (${h.reclaiming.at})` : ''}`,
    );
  else if (v.holder) lines.push(`  holder:    ${v.holder}`);
  else lines.push('  holder:    none (the turn is free)');
  lines.push(
    `  waiting:   ${v.waiting.length === 0 ? 'none' : v.waiting.map((w) => `${w.amendmentId} (sequence ${w.sequence})`).join(', ')}`,
  );
  lines.push(
    `  scheduled: ${v.scheduled.length === 0 ? 'none' : v.scheduled.map((s) => `${s.amendmentId} (sequence ${s.sequence}) at ${s.effectiveAt}`).join(', ')}`,
  );
  const recent = v.recent.slice(-5).reverse();
  lines.push(
    `  recent:    ${recent.length === 0 ? 'none' : recent.map((r) => `${r.amendmentId} (sequence ${r.sequence}, ${r.at})`).join(', ')}${v.recent.length > 5 ? `, and ${v.recent.length - 5} earlier` : ''}`,
  );
  for (const r of (v.reclaimed ?? []).slice(-3).reverse()) lines.push(`  taken back: ${reclaimText(r)}`);
  return lines.join('\n');
}
