/**
 * Rate limits that hold across any number of workers: one token bucket per target in the
 * amendctl database. A worker takes tokens in small chunks (a row lock, one short
 * transaction) and hands them out locally, so the target sees at most `perSecond` requests
 * per second from all workers together (plus at most one chunk per worker in a burst),
 * whatever the batch sizes, and Retry-After from the target pauses every worker.
 */
import type { Pool } from 'pg';
import { schemaOnce } from './schema';

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
  private readonly ensureSchema: () => Promise<void>;
  /** Targets whose row exists. */
  private readonly known = new Set<string>();

  constructor(private readonly pool: Pool) {
    this.ensureSchema = schemaOnce(pool, 'amendctl_rate_schema', SCHEMA);
  }

  /**
   * Take up to `want` tokens of the target's bucket, in one statement (the row locked for its
   * duration). Answers how many were granted and, when none were, how long until one is there.
   */
  async take(target: string, bucket: Bucket, want: number): Promise<{ granted: number; waitMs: number }> {
    await this.ensureSchema();
    if (!this.known.has(target)) {
      await this.pool.query(
        `INSERT INTO ${RATE_TABLE} (target, tokens) VALUES ($1, $2) ON CONFLICT (target) DO NOTHING`,
        [target, bucket.burst],
      );
      this.known.add(target);
    }
    const r = await this.pool.query<{ granted: number; left: number }>(
      `WITH cur AS (
         SELECT target, LEAST($2::float8, tokens + GREATEST(0, EXTRACT(EPOCH FROM clock_timestamp() - updated_at))::float8 * $3::float8) AS available
           FROM ${RATE_TABLE} WHERE target = $1 FOR UPDATE
       ), g AS (SELECT target, available, GREATEST(0, LEAST($4::int, FLOOR(available)::int)) AS granted FROM cur)
       UPDATE ${RATE_TABLE} t SET tokens = g.available - g.granted, updated_at = clock_timestamp() FROM g WHERE t.target = g.target
       RETURNING g.granted, t.tokens AS left`,
      [target, bucket.burst, bucket.perSecond, want],
    );
    const row = r.rows[0];
    if (!row) {
      this.known.delete(target); // the row went away (a dropped table): create it again next time
      return { granted: 0, waitMs: 10 };
    }
    const granted = Number(row.granted);
    return {
      granted,
      waitMs: granted > 0 ? 0 : Math.max(1, Math.ceil(((1 - Number(row.left)) / bucket.perSecond) * 1000)),
    };
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
