/**
 * The operation store: the claim check for plans too large for workflow history.
 *
 * The planning activity writes every Operation of a plan here, one row each, keyed by
 * (amendment, plan hash, index); the workflow carries only the plan hash, the counts and
 * the batches (index ranges). The batch activities read their range, apply it and write each
 * operation's outcome, attempts, timing and what the connector observed before (the prior
 * state compensation needs) back to the same row; compensation reads the applied rows and
 * records its own outcome. So the store is also where a retried or resumed batch learns what
 * an earlier attempt already did, and where `amendctl status --operations` and the audit
 * record read the full list.
 *
 * What names a person (the subject, the description, params, observed state) is sealed with
 * the codec keys (src/store/seal.ts); indexes, targets, actions, outcomes and times are
 * plain, so counts and pages need no key.
 *
 * Connection: the amendctl database (the same as the durable audit log: src/audit/store.ts).
 */
import type { Pool } from 'pg';
import type { JsonValue } from '../domain/json';
import type { Operation } from '../domain/plan';
import { inTransaction, StoreTable, storePool } from './schema';
import { Sealer } from './seal';

export const OPERATIONS_TABLE = 'amendctl_operations';

/** What a batch attempt leaves for one operation. */
export type StoredOutcome = 'pending' | 'applied' | 'unchanged' | 'failed' | 'skipped';
export type StoredCompensation = 'compensated' | 'unchanged' | 'failed';

export interface OperationResultData {
  prior?: JsonValue;
  detail?: string;
  error?: { type: string; message: string };
}

export interface StoredOperation {
  idx: number;
  op: Operation;
  outcome: StoredOutcome;
  attempts: number;
  startedAt?: string;
  finishedAt?: string;
  result?: OperationResultData;
  compensation?: { outcome: StoredCompensation; at: string; detail?: string };
  /** What the connector noted before a write whose answer may be lost (src/connectors/types.ts, OperationJournal). */
  journal?: JsonValue;
}

export interface OutcomeUpdate {
  idx: number;
  outcome: StoredOutcome;
  attempts: number;
  startedAt?: string | undefined;
  finishedAt?: string | undefined;
  result?: OperationResultData | undefined;
}

export interface CompensationUpdate {
  idx: number;
  outcome: StoredCompensation;
  at: string;
  detail?: string | undefined;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS ${OPERATIONS_TABLE} (
  amendment_id        text        NOT NULL,
  plan_hash           text        NOT NULL,
  idx                 integer     NOT NULL CHECK (idx >= 0),
  target              text        NOT NULL,
  action              text        NOT NULL,
  op                  bytea       NOT NULL,
  outcome             text        NOT NULL DEFAULT 'pending',
  attempts            integer     NOT NULL DEFAULT 0,
  started_at          timestamptz,
  finished_at         timestamptz,
  result              bytea,
  compensation        text,
  compensated_at      timestamptz,
  compensation_result bytea,
  created_at          timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (amendment_id, plan_hash, idx)
);
ALTER TABLE ${OPERATIONS_TABLE} ADD COLUMN IF NOT EXISTS journal bytea;
`;

/** Rows per INSERT or UPDATE statement. */
const CHUNK = 1000;

export class OperationStore extends StoreTable {
  constructor(
    pool: Pool,
    private readonly sealer: Sealer,
  ) {
    super(pool, 'amendctl_operations_schema', SCHEMA);
  }

  static fromEnv(env: NodeJS.ProcessEnv = process.env): OperationStore {
    return new OperationStore(storePool(env, { max: 8, connectMs: 5_000, queryMs: 60_000 }), Sealer.fromEnv(env));
  }

  /** Store a plan's operations in provisioning order; a plan already stored (a retried activity) is left as it is. */
  async savePlan(amendmentId: string, planHash: string, operations: Operation[]): Promise<void> {
    await this.ensureSchema();
    const have = await this.pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM ${OPERATIONS_TABLE} WHERE amendment_id = $1 AND plan_hash = $2`,
      [amendmentId, planHash],
    );
    if (Number(have.rows[0]?.n ?? 0) === operations.length) return;
    await inTransaction(this.pool, async (c) => {
      for (let from = 0; from < operations.length; from += CHUNK) {
        const chunk = operations.slice(from, from + CHUNK);
        await c.query(
          `INSERT INTO ${OPERATIONS_TABLE} (amendment_id, plan_hash, idx, target, action, op)
           SELECT $1, $2, * FROM unnest($3::int[], $4::text[], $5::text[], $6::bytea[])
           ON CONFLICT DO NOTHING`,
          [
            amendmentId,
            planHash,
            chunk.map((_, i) => from + i),
            chunk.map((o) => o.target),
            chunk.map((o) => o.action),
            chunk.map((o) => this.sealer.seal(o)),
          ],
        );
      }
    });
  }

  /** Operations `from` (inclusive) to `to` (exclusive) of a plan, in index order. */
  async load(amendmentId: string, planHash: string, from: number, to: number): Promise<StoredOperation[]> {
    await this.ensureSchema();
    const r = await this.pool.query(
      `SELECT * FROM ${OPERATIONS_TABLE} WHERE amendment_id = $1 AND plan_hash = $2 AND idx >= $3 AND idx < $4 ORDER BY idx`,
      [amendmentId, planHash, from, to],
    );
    return r.rows.map((row) => this.toStored(row));
  }

  /** Every operation of a plan, in index order. */
  all(amendmentId: string, planHash: string): Promise<StoredOperation[]> {
    return this.load(amendmentId, planHash, 0, 2 ** 31 - 1);
  }

  async saveOutcomes(amendmentId: string, planHash: string, updates: OutcomeUpdate[]): Promise<void> {
    if (updates.length === 0) return;
    await this.ensureSchema();
    for (let from = 0; from < updates.length; from += CHUNK) {
      const u = updates.slice(from, from + CHUNK);
      await this.pool.query(
        `UPDATE ${OPERATIONS_TABLE} t SET outcome = v.outcome, attempts = v.attempts, started_at = v.started_at, finished_at = v.finished_at, result = v.result
           FROM unnest($3::int[], $4::text[], $5::int[], $6::timestamptz[], $7::timestamptz[], $8::bytea[]) AS v(idx, outcome, attempts, started_at, finished_at, result)
          WHERE t.amendment_id = $1 AND t.plan_hash = $2 AND t.idx = v.idx`,
        [
          amendmentId,
          planHash,
          u.map((x) => x.idx),
          u.map((x) => x.outcome),
          u.map((x) => x.attempts),
          u.map((x) => x.startedAt ?? null),
          u.map((x) => x.finishedAt ?? null),
          u.map((x) => (x.result ? this.sealer.seal(x.result) : null)),
        ],
      );
    }
  }

  async saveCompensations(amendmentId: string, planHash: string, updates: CompensationUpdate[]): Promise<void> {
    if (updates.length === 0) return;
    await this.ensureSchema();
    for (let from = 0; from < updates.length; from += CHUNK) {
      const u = updates.slice(from, from + CHUNK);
      await this.pool.query(
        `UPDATE ${OPERATIONS_TABLE} t SET compensation = v.outcome, compensated_at = v.at, compensation_result = v.result
           FROM unnest($3::int[], $4::text[], $5::timestamptz[], $6::bytea[]) AS v(idx, outcome, at, result)
          WHERE t.amendment_id = $1 AND t.plan_hash = $2 AND t.idx = v.idx`,
        [
          amendmentId,
          planHash,
          u.map((x) => x.idx),
          u.map((x) => x.outcome),
          u.map((x) => x.at),
          u.map((x) => (x.detail ? this.sealer.seal({ detail: x.detail }) : null)),
        ],
      );
    }
  }

  /** An operation's journal note, kept before the write it precedes. */
  async saveJournal(amendmentId: string, planHash: string, idx: number, value: JsonValue): Promise<void> {
    await this.ensureSchema();
    await this.pool.query(
      `UPDATE ${OPERATIONS_TABLE} SET journal = $4 WHERE amendment_id = $1 AND plan_hash = $2 AND idx = $3`,
      [amendmentId, planHash, idx, this.sealer.seal(value)],
    );
  }

  /** The plan hash an amendment last stored (a re-planned amendment stores a new one). */
  async latestPlan(amendmentId: string): Promise<{ planHash: string; total: number } | undefined> {
    await this.ensureSchema();
    const r = await this.pool.query<{ plan_hash: string; n: string }>(
      `SELECT plan_hash, count(*) AS n FROM ${OPERATIONS_TABLE} WHERE amendment_id = $1 GROUP BY plan_hash ORDER BY max(created_at) DESC LIMIT 1`,
      [amendmentId],
    );
    return r.rows[0] ? { planHash: r.rows[0].plan_hash, total: Number(r.rows[0].n) } : undefined;
  }

  /** One page of a plan's operations with their outcomes (`amendctl status --operations`). */
  async page(
    amendmentId: string,
    opts: { planHash?: string; offset?: number; limit?: number } = {},
  ): Promise<{ planHash: string; total: number; offset: number; operations: StoredOperation[] } | undefined> {
    const latest = opts.planHash ? undefined : await this.latestPlan(amendmentId);
    const planHash = opts.planHash ?? latest?.planHash;
    if (!planHash) return undefined;
    const offset = Math.max(0, opts.offset ?? 0);
    const limit = Math.min(Math.max(1, opts.limit ?? 100), 10_000);
    const total =
      latest?.total ??
      Number(
        (
          await this.pool.query<{ n: string }>(
            `SELECT count(*) AS n FROM ${OPERATIONS_TABLE} WHERE amendment_id = $1 AND plan_hash = $2`,
            [amendmentId, planHash],
          )
        ).rows[0]?.n ?? 0,
      );
    return { planHash, total, offset, operations: await this.load(amendmentId, planHash, offset, offset + limit) };
  }

  private toStored(row: Record<string, unknown>): StoredOperation {
    const out: StoredOperation = {
      idx: Number(row.idx),
      op: this.sealer.open<Operation>(row.op as Buffer),
      outcome: row.outcome as StoredOutcome,
      attempts: Number(row.attempts),
    };
    if (row.started_at) out.startedAt = (row.started_at as Date).toISOString();
    if (row.finished_at) out.finishedAt = (row.finished_at as Date).toISOString();
    if (row.result) out.result = this.sealer.open<OperationResultData>(row.result as Buffer);
    if (row.journal) out.journal = this.sealer.open<JsonValue>(row.journal as Buffer);
    if (row.compensation) {
      const detail = row.compensation_result
        ? this.sealer.open<{ detail?: string }>(row.compensation_result as Buffer).detail
        : undefined;
      out.compensation = {
        outcome: row.compensation as StoredCompensation,
        at: (row.compensated_at as Date).toISOString(),
        ...(detail ? { detail } : {}),
      };
    }
    return out;
  }
}
