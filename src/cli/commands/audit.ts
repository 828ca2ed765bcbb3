/**
 * amendctl audit AMENDMENT_ID | --contract ID [--format json|csv|md]
 * amendctl audit verify [--contract ID] [--checkpoint FILE]
 * amendctl audit checkpoint [--out FILE]
 *
 * Records are built from the workflow history (decoded with the codec keys) while Temporal
 * still has it; an amendment whose history is gone (retention, a new server) is read from the
 * durable audit log instead.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { WorkflowNotFoundError } from '@temporalio/client';
import { AesGcmCodec, decodePayload, loadCodecKeys } from '../../codec';
import { AUDIT_FORMATS, type AuditFormat, formatRecords } from '../../audit/format';
import { recordFromHistory } from '../../audit/history';
import type { AuditRecord } from '../../audit/record';
import { CheckpointSchema, checkCheckpoint, signCheckpoint } from '../../audit/checkpoint';
import { AuditStore, verifyRows } from '../../audit/store';
import { checkId } from '../../client/inputs';
import { InputError, parseWith } from '../../domain/errors';
import { shown } from '../../domain/text';
import { OperationStore } from '../../store/operations';
import type { AmendctlClient } from '../../client';
import { AMENDMENT_TYPES_QUERY, amendmentWorkflowId } from '../../workflows/definitions';
import { connect, connectionOptions, parse, strings, TemporalUnreachable } from '../common';
import { type CliIO, type Command, UsageError } from '../io';
import { help } from './amendments';

const USAGE =
  'amendctl audit AMENDMENT_ID [--format json|csv|md] | amendctl audit --contract ID [--format ...] | amendctl audit verify [--contract ID] [--checkpoint FILE] | amendctl audit checkpoint [--out FILE]';

const HELP =
  "The audit record of an amendment (or of a contract: all its amendments in sequence order): what changed, the plan and its rules, approvals, every operation with outcome, attempts and timing, compensations. Built from the workflow history; from the durable audit log (AMENDCTL_AUDIT_DATABASE_URL, or AMENDCTL_AUDIT_*/AMENDCTL_WAREHOUSE_*) once the history is gone. `verify` checks the durable log's hash chains and names the first broken record; with --checkpoint FILE also that every chain head the signed checkpoint names is still there, unchanged (a truncated log fails). `checkpoint` writes such a checkpoint (signed with a key derived from the codec keys): keep it where the database's writers cannot reach.";
export const auditCommand: Command = async (argv, io) => {
  const { values, positionals } = parse(
    argv,
    { ...connectionOptions, ...strings('contract', 'format', 'checkpoint', 'out') },
    USAGE,
  );
  if (values.help) return help(io, USAGE, HELP);
  if (positionals[0] === 'verify') {
    if (positionals.length !== 1) throw new UsageError(`verify takes no other argument\nusage: ${USAGE}`);
    if (values.contract) checkId('CONTRACT_ID', values.contract);
    return verify(values.contract, values.checkpoint, io);
  }
  if (positionals[0] === 'checkpoint') {
    if (positionals.length !== 1 || values.contract)
      throw new UsageError(`checkpoint takes only --out FILE\nusage: ${USAGE}`);
    return checkpoint(values.out, io);
  }
  if (values.checkpoint || values.out)
    throw new UsageError(`--checkpoint goes with verify, --out with checkpoint\nusage: ${USAGE}`);
  const format = (values.format ?? 'md') as AuditFormat;
  if (!AUDIT_FORMATS.includes(format))
    throw new UsageError(`--format is one of ${AUDIT_FORMATS.join(', ')}, got "${shown(values.format ?? '', 60)}"`);
  if (values.contract ? positionals.length !== 0 : positionals.length !== 1)
    throw new UsageError(`give one AMENDMENT_ID or --contract ID\nusage: ${USAGE}`);
  if (values.contract) checkId('CONTRACT_ID', values.contract);
  else checkId('AMENDMENT_ID', positionals[0]!);

  const store = AuditStore.fromEnv();
  const codec = new AesGcmCodec(loadCodecKeys());
  let opStore: OperationStore | undefined;
  const operations = (): OperationStore => (opStore ??= OperationStore.fromEnv());
  let client: AmendctlClient | undefined;
  try {
    try {
      client = await connect(values);
    } catch (err) {
      if (!(err instanceof TemporalUnreachable)) throw err;
      io.err(`amendctl audit: ${err.message}; reading the durable audit log only`);
    }
    const fromHistory = async (amendmentId: string): Promise<AuditRecord | undefined> => {
      if (!client) return undefined;
      const handle = client.client.workflow.getHandle(amendmentWorkflowId(amendmentId));
      try {
        const desc = await handle.describe();
        return await recordFromHistory(await handle.fetchHistory(), (p) => decodePayload(codec, p), {
          runId: desc.runId,
          operations: (id, planHash) => operations().all(id, planHash),
        });
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return undefined;
        throw err;
      }
    };

    let records: AuditRecord[];
    if (values.contract) {
      const contractId = values.contract;
      const ids = new Set<string>();
      if (client) {
        for await (const w of client.client.workflow.list({
          query: `ContractId = '${contractId.replace(/'/g, "\\'")}' AND (${AMENDMENT_TYPES_QUERY})`,
        })) {
          if (w.workflowId.startsWith('amendment-')) ids.add(w.workflowId.slice('amendment-'.length));
        }
      }
      const live = (await Promise.all([...ids].map(fromHistory))).filter((r): r is AuditRecord => r !== undefined);
      const have = new Set(live.map((r) => r.amendmentId));
      const logged = (await store.contractRows(contractId))
        .filter((row) => !have.has(row.amendmentId))
        .map((row) => row.record);
      records = [...live, ...logged].sort(
        (a, b) => a.sequence - b.sequence || a.submittedAt.localeCompare(b.submittedAt),
      );
      if (records.length === 0) {
        io.err(`amendctl audit: no amendment of contract ${contractId} in Temporal or in the durable audit log`);
        return 1;
      }
    } else {
      const id = positionals[0]!;
      const r = (await fromHistory(id)) ?? (await store.amendmentRow(id))?.record;
      if (!r) {
        io.err(`amendctl audit: no amendment ${id} in Temporal or in the durable audit log`);
        return 1;
      }
      records = [r];
    }
    io.out(formatRecords(records, format, !values.contract));
    return 0;
  } finally {
    await Promise.allSettled([client?.close(), store.close(), opStore?.close()]);
  }
};

async function verify(contractId: string | undefined, checkpointFile: string | undefined, io: CliIO): Promise<number> {
  const cp = checkpointFile ? readCheckpoint(checkpointFile) : undefined;
  const store = AuditStore.fromEnv();
  try {
    const rows = await store.rows(contractId);
    const r = verifyRows(rows);
    if (!r.ok) {
      const b = r.broken!;
      io.out(`audit log BROKEN at contract ${b.contractId}, seq ${b.seq} (amendment ${b.amendmentId}): ${b.problem}`);
      return 1;
    }
    if (cp) {
      const problems = checkCheckpoint(cp, rows, loadCodecKeys(), contractId);
      if (problems.length > 0) {
        for (const p of problems)
          io.out(
            `audit log BROKEN${p.contractId ? ` at contract ${p.contractId}` : ''} against the checkpoint ${checkpointFile}: ${p.problem}`,
          );
        return 1;
      }
    }
    const checked = cp ? `; every chain head of the checkpoint of ${cp.at} is there, unchanged` : '';
    io.out(
      `audit log intact: ${r.rows} record${r.rows === 1 ? '' : 's'} in ${r.contracts} contract chain${r.contracts === 1 ? '' : 's'}${contractId ? ` (contract ${contractId})` : ''}${checked}`,
    );
    return 0;
  } finally {
    await store.close();
  }
}

async function checkpoint(out: string | undefined, io: CliIO): Promise<number> {
  const store = AuditStore.fromEnv();
  try {
    const cp = signCheckpoint(await store.heads(), loadCodecKeys());
    const text = `${JSON.stringify(cp, null, 2)}\n`;
    if (out) {
      writeFileSync(out, text, { flag: 'wx' });
      io.err(
        `audit checkpoint: ${cp.heads.length} contract chain head${cp.heads.length === 1 ? '' : 's'} signed with key ${cp.keyId}, written to ${out}`,
      );
    } else io.out(text);
    return 0;
  } finally {
    await store.close();
  }
}

function readCheckpoint(file: string) {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new InputError('not a readable audit checkpoint', [{ file, path: '', message: (err as Error).message }]);
  }
  return parseWith(CheckpointSchema, raw, 'not an audit checkpoint', file);
}
