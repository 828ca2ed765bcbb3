/**
 * The durable audit log: append-only PostgreSQL table, one hash chain per contract.
 *
 *   row: contract_id, seq (1, 2, ...), amendment_id, record (JSONB), prev_hash, hash
 *   record = { "sealed": the record encrypted with the codec keys (src/store/seal.ts) }: the
 *            names, emails and observed state it holds are never in clear; rows written before
 *            sealing hold the record itself, and read as they are
 *   hash = sha256(prev_hash || canonical JSON of the stored record); the first row's prev_hash is 64 zeros.
 *
 * Editing a record, deleting or reordering rows breaks the chain at that row, which `verify`
 * names, without a key. Removing the newest rows leaves a shorter valid chain: a signed checkpoint
 * kept elsewhere catches that (src/audit/checkpoint.ts). UPDATE, DELETE and TRUNCATE are refused by triggers.
 *
 * Appending is idempotent: one row per (contract_id, amendment_id); a retry returns the row
 * already written. Writers of one contract are serialised by a transaction-scoped advisory lock.
 *
 * Connection (credentials from the environment only): AMENDCTL_AUDIT_DATABASE_URL, or
 * AMENDCTL_AUDIT_HOST/_PORT/_DATABASE/_USER/_PASSWORD, each falling back to the warehouse
 * target's AMENDCTL_WAREHOUSE_* (the local PostgreSQL of `amendctl dev`); the database
 * defaults to `amendctl_audit` (scripts/local-postgres.sh creates it).
 */
import { createHash } from 'node:crypto';
import { Pool, type PoolConfig } from 'pg';
import { canonicalJson } from '../domain/json';
import { inTransaction, schemaOnce } from '../store/schema';
import { Sealer } from '../store/seal';
import { type AuditRecord, dropUndefined } from './record';

export const AUDIT_TABLE = 'amendctl_audit_log';
export const GENESIS = '0'.repeat(64);

export function auditDbConfig(env: NodeJS.ProcessEnv = process.env): PoolConfig {
  if (env.AMENDCTL_AUDIT_DATABASE_URL)
    return { connectionString: env.AMENDCTL_AUDIT_DATABASE_URL, max: 4, allowExitOnIdle: true };
  const password = env.AMENDCTL_AUDIT_PASSWORD ?? env.AMENDCTL_WAREHOUSE_PASSWORD;
  return {
    host: env.AMENDCTL_AUDIT_HOST ?? env.AMENDCTL_WAREHOUSE_HOST ?? '127.0.0.1',
    port: Number(env.AMENDCTL_AUDIT_PORT ?? env.AMENDCTL_WAREHOUSE_PORT ?? 5432),
    database: env.AMENDCTL_AUDIT_DATABASE ?? 'amendctl_audit',
    user: env.AMENDCTL_AUDIT_USER ?? env.AMENDCTL_WAREHOUSE_USER ?? 'amendctl',
    ...(password !== undefined ? { password } : {}),
    max: 4,
    allowExitOnIdle: true,
  };
}

export function chainHash(prevHash: string, record: unknown): string {
  return createHash('sha256').update(prevHash).update(canonicalJson(record)).digest('hex');
}

export interface AuditRow {
  contractId: string;
  seq: number;
  amendmentId: string;
  record: AuditRecord;
  /** What the row holds and its hash covers: `{ sealed }`, or the record itself (rows from before sealing). */
  stored: unknown;
  prevHash: string;
  hash: string;
  recordedAt: string;
}

export interface VerifyResult {
  ok: boolean;
  contracts: number;
  rows: number;
  /** The first broken record, per contract checked in order. */
  broken?: { contractId: string; seq: number; amendmentId: string; problem: string };
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS ${AUDIT_TABLE} (
  contract_id  text        NOT NULL,
  seq          bigint      NOT NULL CHECK (seq >= 1),
  amendment_id text        NOT NULL,
  record       jsonb       NOT NULL,
  prev_hash    text        NOT NULL,
  hash         text        NOT NULL,
  recorded_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (contract_id, seq),
  UNIQUE (contract_id, amendment_id)
);
CREATE OR REPLACE FUNCTION ${AUDIT_TABLE}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '${AUDIT_TABLE} is append-only (% refused)', TG_OP;
END $$;
CREATE OR REPLACE TRIGGER ${AUDIT_TABLE}_no_change BEFORE UPDATE OR DELETE ON ${AUDIT_TABLE} FOR EACH ROW EXECUTE FUNCTION ${AUDIT_TABLE}_append_only();
CREATE OR REPLACE TRIGGER ${AUDIT_TABLE}_no_truncate BEFORE TRUNCATE ON ${AUDIT_TABLE} FOR EACH STATEMENT EXECUTE FUNCTION ${AUDIT_TABLE}_append_only();
`;

export class AuditStore {
  /** Create the table and its triggers once per process (serialised across processes). */
  readonly ensureSchema: () => Promise<void>;

  constructor(
    readonly pool: Pool,
    private readonly sealer: Sealer,
  ) {
    // An idle connection the server closes (restart, shutdown) is not an error of any caller: the pool reconnects.
    pool.on('error', () => undefined);
    this.ensureSchema = schemaOnce(pool, 'amendctl_audit_schema', SCHEMA);
  }

  static fromEnv(env: NodeJS.ProcessEnv = process.env): AuditStore {
    return new AuditStore(new Pool(auditDbConfig(env)), Sealer.fromEnv(env));
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  /** Append a record to its contract's chain; a second append of the same amendment returns the first row. */
  async append(input: AuditRecord): Promise<{ seq: number; hash: string; duplicate: boolean }> {
    const record = dropUndefined(input);
    await this.ensureSchema();
    return inTransaction(this.pool, async (c) => {
      await c.query(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, [`amendctl_audit:${record.contractId}`]);
      const existing = await c.query<{ seq: string; hash: string }>(
        `SELECT seq, hash FROM ${AUDIT_TABLE} WHERE contract_id = $1 AND amendment_id = $2`,
        [record.contractId, record.amendmentId],
      );
      if (existing.rows[0]) return { seq: Number(existing.rows[0].seq), hash: existing.rows[0].hash, duplicate: true };
      const last = await c.query<{ seq: string; hash: string }>(
        `SELECT seq, hash FROM ${AUDIT_TABLE} WHERE contract_id = $1 ORDER BY seq DESC LIMIT 1`,
        [record.contractId],
      );
      const seq = Number(last.rows[0]?.seq ?? 0) + 1;
      const prevHash = last.rows[0]?.hash ?? GENESIS;
      const stored = { sealed: this.sealer.seal(record).toString('utf8') };
      const hash = chainHash(prevHash, stored);
      await c.query(
        `INSERT INTO ${AUDIT_TABLE} (contract_id, seq, amendment_id, record, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6)`,
        [record.contractId, seq, record.amendmentId, JSON.stringify(stored), prevHash, hash],
      );
      return { seq, hash, duplicate: false };
    });
  }

  async contractRows(contractId: string): Promise<AuditRow[]> {
    await this.ensureSchema();
    const r = await this.pool.query(`SELECT * FROM ${AUDIT_TABLE} WHERE contract_id = $1 ORDER BY seq`, [contractId]);
    return r.rows.map((row) => this.toRow(row));
  }

  async amendmentRow(amendmentId: string): Promise<AuditRow | undefined> {
    await this.ensureSchema();
    const r = await this.pool.query(
      `SELECT * FROM ${AUDIT_TABLE} WHERE amendment_id = $1 ORDER BY recorded_at LIMIT 1`,
      [amendmentId],
    );
    return r.rows[0] ? this.toRow(r.rows[0]) : undefined;
  }

  /** Check every chain (or one contract's): sequence, links and hashes; names the first broken record. */
  async verify(contractId?: string): Promise<VerifyResult> {
    return verifyRows(await this.rows(contractId));
  }

  /** Every row (or one contract's), by contract, then seq. */
  async rows(contractId?: string): Promise<AuditRow[]> {
    await this.ensureSchema();
    const r = contractId
      ? await this.pool.query(`SELECT * FROM ${AUDIT_TABLE} WHERE contract_id = $1 ORDER BY seq`, [contractId])
      : await this.pool.query(`SELECT * FROM ${AUDIT_TABLE} ORDER BY contract_id, seq`);
    return r.rows.map((row) => this.toRow(row));
  }

  /** Each contract chain's head: its last seq and hash (what a checkpoint signs: src/audit/checkpoint.ts). */
  async heads(): Promise<Array<{ contractId: string; seq: number; hash: string }>> {
    await this.ensureSchema();
    const r = await this.pool.query<{ contract_id: string; seq: string; hash: string }>(
      `SELECT DISTINCT ON (contract_id) contract_id, seq, hash FROM ${AUDIT_TABLE} ORDER BY contract_id, seq DESC`,
    );
    return r.rows.map((x) => ({ contractId: x.contract_id, seq: Number(x.seq), hash: x.hash }));
  }

  /** A row, its record opened with the codec keys (a key that is not configured is an error naming it). */
  private toRow(r: Record<string, unknown>): AuditRow {
    const stored = r.record;
    const sealed =
      stored && typeof stored === 'object' && typeof (stored as { sealed?: unknown }).sealed === 'string'
        ? (stored as { sealed: string }).sealed
        : undefined;
    return {
      contractId: String(r.contract_id),
      seq: Number(r.seq),
      amendmentId: String(r.amendment_id),
      record: sealed !== undefined ? this.sealer.open<AuditRecord>(sealed) : (stored as AuditRecord),
      stored,
      prevHash: String(r.prev_hash),
      hash: String(r.hash),
      recordedAt: r.recorded_at instanceof Date ? r.recorded_at.toISOString() : String(r.recorded_at),
    };
  }
}

/** Pure: rows ordered by contract, then seq. */
export function verifyRows(rows: AuditRow[]): VerifyResult {
  const contracts = new Set<string>();
  let prev: AuditRow | undefined;
  for (const row of rows) {
    const first = !prev || prev.contractId !== row.contractId;
    contracts.add(row.contractId);
    const expectSeq = first ? 1 : prev!.seq + 1;
    const expectPrev = first ? GENESIS : prev!.hash;
    const problem =
      row.seq !== expectSeq
        ? `seq ${row.seq} where ${expectSeq} was expected (a record is missing)`
        : row.prevHash !== expectPrev
          ? `prev_hash does not match the hash of the record before it`
          : row.record?.amendmentId !== row.amendmentId || row.record?.contractId !== row.contractId
            ? `the record names amendment ${String(row.record?.amendmentId)} of contract ${String(row.record?.contractId)}, not this row's`
            : chainHash(row.prevHash, row.stored) !== row.hash
              ? `the record does not match its hash (it was edited after it was written)`
              : undefined;
    if (problem)
      return {
        ok: false,
        contracts: contracts.size,
        rows: rows.length,
        broken: { contractId: row.contractId, seq: row.seq, amendmentId: row.amendmentId, problem },
      };
    prev = row;
  }
  return { ok: true, contracts: contracts.size, rows: rows.length };
}
