/**
 * The webhook intake: amendments a contract system delivered, kept in the amendctl database
 * before the delivery is acknowledged, until their workflows have started. An acknowledged
 * event is therefore never lost, also when the API process dies right after: any instance
 * starts what another left (src/api/intake.ts).
 *
 * One row per amendment (its id is the key, as the workflow id derives from it): a redelivery
 * adds nothing, and tells whether it carried other content. A row being started is leased to
 * one instance for LEASE_SECONDS; one whose instance died is taken by another once its lease
 * ends. What the row keeps of the amendment (names, emails) is sealed with the codec keys.
 */
import type { Pool } from 'pg';
import type { Submission, SubmitResult } from '../client';
import { StoreTable, storePool } from './schema';
import { Sealer } from './seal';

export const INTAKE_TABLE = 'amendctl_intake';

/** How long an instance holds a row it is starting; another may take it after. */
export const LEASE_SECONDS = 10;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS ${INTAKE_TABLE} (
  amendment_id    text        PRIMARY KEY,
  contract_id     text        NOT NULL,
  source          text        NOT NULL,
  event_id        text        NOT NULL,
  submission      bytea       NOT NULL,
  content_hash    text        NOT NULL,
  received_at     timestamptz NOT NULL DEFAULT now(),
  attempts        integer     NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  leased_until    timestamptz,
  last_error      text,
  started_at      timestamptz,
  run_id          text,
  duplicate       boolean
);
CREATE INDEX IF NOT EXISTS ${INTAKE_TABLE}_due ON ${INTAKE_TABLE} (next_attempt_at) WHERE started_at IS NULL;
`;

/** One amendment of a delivery, as the intake is given it. */
export interface IntakeEntry {
  source: string;
  eventId: string;
  submission: Submission;
}

/** What the intake answered for an entry: kept now, or kept before (a redelivery). */
export interface IntakeReceipt {
  amendmentId: string;
  contractId: string;
  /** False: this amendment was received before; nothing new was kept. */
  received: boolean;
  /** For one received before: whether the earlier delivery carried other content. */
  differs?: boolean;
  /** For one received before: its workflow has started. */
  started?: boolean;
}

/** A row to start, leased to this instance. */
export interface IntakeItem {
  amendmentId: string;
  submission: Submission;
  attempts: number;
}

/** What GET /v1/amendments/{id} can say of an amendment not started yet. */
export interface IntakeStatus {
  amendmentId: string;
  contractId: string;
  source: string;
  eventId: string;
  receivedAt: string;
  attempts: number;
  startedAt?: string;
  lastError?: string;
}

export class IntakeStore extends StoreTable {
  constructor(
    pool: Pool,
    private readonly sealer: Sealer,
  ) {
    super(pool, 'amendctl_intake_schema', SCHEMA);
  }

  static fromEnv(env: NodeJS.ProcessEnv = process.env): IntakeStore {
    // An unreachable database answers the sender 503 within seconds (it retries).
    return new IntakeStore(storePool(env, { max: 8, connectMs: 3_000, queryMs: 10_000 }), Sealer.fromEnv(env));
  }

  /**
   * Keep every entry of a delivery in one transaction (committed: durable), each leased to the
   * caller, which starts them at once. An amendment kept before is left as it is.
   */
  async receive(entries: IntakeEntry[]): Promise<IntakeReceipt[]> {
    await this.ensureSchema();
    if (entries.length === 0) return [];
    const subs = entries.map((e) => e.submission);
    const ids = subs.map((s) => s.input.amendment.amendmentId);
    const inserted = await this.pool.query<{ amendment_id: string }>(
      `INSERT INTO ${INTAKE_TABLE} (amendment_id, contract_id, source, event_id, submission, content_hash, leased_until)
       SELECT *, now() + make_interval(secs => ${LEASE_SECONDS}) FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bytea[], $6::text[])
       ON CONFLICT (amendment_id) DO NOTHING
       RETURNING amendment_id`,
      [
        ids,
        subs.map((s) => s.input.amendment.contractId),
        entries.map((e) => e.source),
        entries.map((e) => e.eventId),
        subs.map((s) => this.sealer.seal(s)),
        subs.map((s) => s.hash),
      ],
    );
    const fresh = new Set(inserted.rows.map((r) => r.amendment_id));
    const earlier = ids.filter((id) => !fresh.has(id));
    const before = new Map<string, { content_hash: string; started_at: Date | null }>();
    if (earlier.length > 0) {
      const r = await this.pool.query<{ amendment_id: string; content_hash: string; started_at: Date | null }>(
        `SELECT amendment_id, content_hash, started_at FROM ${INTAKE_TABLE} WHERE amendment_id = ANY($1)`,
        [earlier],
      );
      for (const row of r.rows) before.set(row.amendment_id, row);
    }
    return subs.map((s, i) => {
      const amendmentId = ids[i]!;
      const contractId = s.input.amendment.contractId;
      if (fresh.has(amendmentId)) return { amendmentId, contractId, received: true };
      const b = before.get(amendmentId);
      return {
        amendmentId,
        contractId,
        received: false,
        differs: b ? b.content_hash !== s.hash : false,
        started: Boolean(b?.started_at),
      };
    });
  }

  /** Up to `limit` rows due to start whose lease has ended (their instance died, or a start failed), leased to the caller, oldest first. */
  async claim(limit: number): Promise<IntakeItem[]> {
    await this.ensureSchema();
    const r = await this.pool.query<{ amendment_id: string; submission: Buffer; attempts: number }>(
      `UPDATE ${INTAKE_TABLE} SET leased_until = now() + make_interval(secs => ${LEASE_SECONDS})
        WHERE amendment_id IN (
          SELECT amendment_id FROM ${INTAKE_TABLE}
           WHERE started_at IS NULL AND next_attempt_at <= now() AND (leased_until IS NULL OR leased_until < now())
           ORDER BY received_at LIMIT $1 FOR UPDATE SKIP LOCKED)
        RETURNING amendment_id, submission, attempts`,
      [limit],
    );
    return r.rows.map((row) => ({
      amendmentId: row.amendment_id,
      submission: this.sealer.open<Submission>(row.submission),
      attempts: row.attempts,
    }));
  }

  /** Its workflow started (or was there already): done. */
  async started(r: SubmitResult): Promise<void> {
    await this.pool.query(
      `UPDATE ${INTAKE_TABLE} SET started_at = now(), run_id = $2, duplicate = $3, leased_until = NULL, attempts = attempts + 1 WHERE amendment_id = $1`,
      [r.amendmentId, r.runId, r.duplicate],
    );
  }

  /** The start failed: released, to be tried again after `delayMs` by whichever instance comes first. */
  async retryLater(amendmentId: string, delayMs: number, error: string): Promise<void> {
    await this.pool.query(
      `UPDATE ${INTAKE_TABLE} SET leased_until = NULL, attempts = attempts + 1, last_error = $3, next_attempt_at = now() + make_interval(secs => $2::double precision / 1000) WHERE amendment_id = $1`,
      [amendmentId, delayMs, error.slice(0, 2000)],
    );
  }

  /** An amendment the intake holds (started or not), or undefined. */
  async status(amendmentId: string): Promise<IntakeStatus | undefined> {
    await this.ensureSchema();
    const r = await this.pool.query<{
      amendment_id: string;
      contract_id: string;
      source: string;
      event_id: string;
      received_at: Date;
      attempts: number;
      started_at: Date | null;
      last_error: string | null;
    }>(
      `SELECT amendment_id, contract_id, source, event_id, received_at, attempts, started_at, last_error FROM ${INTAKE_TABLE} WHERE amendment_id = $1`,
      [amendmentId],
    );
    const row = r.rows[0];
    if (!row) return undefined;
    return {
      amendmentId: row.amendment_id,
      contractId: row.contract_id,
      source: row.source,
      eventId: row.event_id,
      receivedAt: row.received_at.toISOString(),
      attempts: row.attempts,
      ...(row.started_at ? { startedAt: row.started_at.toISOString() } : {}),
      ...(row.last_error ? { lastError: row.last_error } : {}),
    };
  }

  /** Remove rows started more than `days` ago. */
  async prune(days: number): Promise<void> {
    await this.pool.query(`DELETE FROM ${INTAKE_TABLE} WHERE started_at < now() - make_interval(days => $1)`, [days]);
  }

  /** How many amendments wait to start (a gauge). */
  async waiting(): Promise<number> {
    await this.ensureSchema();
    const r = await this.pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM ${INTAKE_TABLE} WHERE started_at IS NULL`,
    );
    return Number(r.rows[0]?.n ?? 0);
  }
}
