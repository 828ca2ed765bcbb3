/**
 * amendctl audit AMENDMENT_ID | --contract ID [--format json|csv|md]
 * amendctl audit verify [--contract ID]
 *
 * Records are built from the workflow history (decoded with the codec keys) while Temporal
 * still has it; an amendment whose history is gone (retention, a new server) is read from the
 * durable audit log instead.
 */
import { WorkflowNotFoundError } from '@temporalio/client';
import { AesGcmCodec, decodePayload, loadCodecKeys } from '../../codec';
import { AUDIT_FORMATS, type AuditFormat, formatRecords } from '../../audit/format';
import { recordFromHistory } from '../../audit/history';
import type { AuditRecord } from '../../audit/record';
import { AuditStore } from '../../audit/store';
import { OperationStore } from '../../store/operations';
import type { AmendctlClient } from '../../client';
import { amendmentWorkflowId } from '../../workflows/definitions';
import { connect, connectionOptions, parse, TemporalUnreachable } from '../common';
import { type CliIO, type Command, UsageError } from '../io';
import { help } from './amendments';

const USAGE = 'amendctl audit AMENDMENT_ID [--format json|csv|md] | amendctl audit --contract ID [--format ...] | amendctl audit verify [--contract ID]';

export const auditCommand: Command = async (argv, io) => {
  const { values, positionals } = parse(argv, { ...connectionOptions, contract: { type: 'string' }, format: { type: 'string' } }, USAGE);
  if (values.help) {
    return help(
      io,
      USAGE,
      'The audit record of an amendment (or of a contract: all its amendments in sequence order): what changed, the plan and its rules, approvals, every operation with outcome, attempts and timing, compensations. Built from the workflow history; from the durable audit log (AMENDCTL_AUDIT_DATABASE_URL, or AMENDCTL_AUDIT_*/AMENDCTL_WAREHOUSE_*) once the history is gone. `verify` checks the durable log\'s hash chains and names the first broken record.',
    );
  }
  if (positionals[0] === 'verify') {
    if (positionals.length !== 1) throw new UsageError(`verify takes no other argument\nusage: ${USAGE}`);
    return verify(values.contract, io);
  }
  const format = (values.format ?? 'md') as AuditFormat;
  if (!AUDIT_FORMATS.includes(format)) throw new UsageError(`--format is one of ${AUDIT_FORMATS.join(', ')}, got "${values.format}"`);
  if (values.contract ? positionals.length !== 0 : positionals.length !== 1) throw new UsageError(`give one AMENDMENT_ID or --contract ID\nusage: ${USAGE}`);

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
        return await recordFromHistory(await handle.fetchHistory(), (p) => decodePayload(codec, p), { runId: desc.runId, operations: (id, planHash) => operations().all(id, planHash) });
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
        for await (const w of client.client.workflow.list({ query: `ContractId = '${contractId.replace(/'/g, "\\'")}' AND (WorkflowType = 'amendmentV2' OR WorkflowType = 'amendmentWorkflow')` })) {
          if (w.workflowId.startsWith('amendment-')) ids.add(w.workflowId.slice('amendment-'.length));
        }
      }
      const live = (await Promise.all([...ids].map(fromHistory))).filter((r): r is AuditRecord => r !== undefined);
      const have = new Set(live.map((r) => r.amendmentId));
      const logged = (await store.contractRows(contractId)).filter((row) => !have.has(row.amendmentId)).map((row) => row.record);
      records = [...live, ...logged].sort((a, b) => a.sequence - b.sequence || a.submittedAt.localeCompare(b.submittedAt));
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

async function verify(contractId: string | undefined, io: CliIO): Promise<number> {
  const store = AuditStore.fromEnv();
  try {
    const r = await store.verify(contractId);
    if (r.ok) {
      io.out(`audit log intact: ${r.rows} record${r.rows === 1 ? '' : 's'} in ${r.contracts} contract chain${r.contracts === 1 ? '' : 's'}${contractId ? ` (contract ${contractId})` : ''}`);
      return 0;
    }
    const b = r.broken!;
    io.out(`audit log BROKEN at contract ${b.contractId}, seq ${b.seq} (amendment ${b.amendmentId}): ${b.problem}`);
    return 1;
  } finally {
    await store.close();
  }
}
