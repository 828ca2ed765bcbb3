/**
 * Rate limits that hold across any number of workers: one token bucket per target in the
 * amendctl database. A worker takes tokens in small chunks (a row lock, one short
 * transaction) and hands them out locally, so the target sees at most `perSecond` requests
 * per second from all workers together (plus at most one chunk per worker in a burst),
 * whatever the batch sizes, and Retry-After from the target pauses every worker.
 */
import type { Pool } from 'pg';

export const RATE_TABLE = 'amendctl_rate_buckets';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS ${RATE_TABLE} (
  target      text             PRIMARY KEY,
  tokens      double precision NOT NULL,
  updated_at  timestamptz      NOT NULL DEFAULT clock_timestamp()
);
`;

export interface Bucket {
  perSecond: number;
  burst: number;
}

export class SharedRateBuckets {
  private ready: Promise<void> | undefined;

  constructor(private readonly pool: Pool) {}

  ensureSchema(): Promise<void> {
    this.ready ??= (async () => {
      const c = await this.pool.connect();
      try {
        await c.query('BEGIN');
        await c.query(`SELECT pg_advisory_xact_lock(hashtextextended('amendctl_rate_schema', 0))`);
        await c.query(SCHEMA);
        await c.query('COMMIT');
      } catch (err) {
        await c.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        c.release();
      }
    })().catch((err: unknown) => {
      this.ready = undefined;
      throw err;
    });
    return this.ready;
  }

  /**
   * Take up to `want` tokens of the target's bucket (a short transaction with a row lock).
   * Answers how many were granted and, when none were, how long until one is there.
   */
  async take(target: string, bucket: Bucket, want: number): Promise<{ granted: number; waitMs: number }> {
    await this.ensureSchema();
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      await c.query(`INSERT INTO ${RATE_TABLE} (target, tokens) VALUES ($1, $2) ON CONFLICT (target) DO NOTHING`, [target, bucket.burst]);
      const cur = await c.query<{ tokens: number; elapsed: number }>(
        `SELECT tokens, GREATEST(0, EXTRACT(EPOCH FROM clock_timestamp() - updated_at))::float8 AS elapsed FROM ${RATE_TABLE} WHERE target = $1 FOR UPDATE`,
        [target],
      );
      const row = cur.rows[0]!;
      const available = Math.min(bucket.burst, Number(row.tokens) + Number(row.elapsed) * bucket.perSecond);
      const granted = Math.max(0, Math.min(want, Math.floor(available)));
      const left = available - granted;
      await c.query(`UPDATE ${RATE_TABLE} SET tokens = $2, updated_at = clock_timestamp() WHERE target = $1`, [target, left]);
      await c.query('COMMIT');
      return { granted, waitMs: granted > 0 ? 0 : Math.max(1, Math.ceil(((1 - left) / bucket.perSecond) * 1000)) };
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      c.release();
    }
  }

  /** After a 429 with Retry-After: every worker holds back until then. */
  async pause(target: string, bucket: Bucket, ms: number): Promise<void> {
    await this.ensureSchema();
    await this.pool.query(
      `INSERT INTO ${RATE_TABLE} (target, tokens) VALUES ($1, -$2::float8) ON CONFLICT (target) DO UPDATE SET tokens = LEAST(${RATE_TABLE}.tokens, 0) - $2::float8, updated_at = clock_timestamp()`,
      [target, (ms / 1000) * bucket.perSecond],
    );
  }
}
