/**
 * One way for amendctl's tables to come into being: the first use in a process creates them,
 * serialised across processes by a transaction-scoped advisory lock; a failure is retried on
 * the next use.
 */
import { Pool, type PoolClient } from 'pg';
import { auditDbConfig } from '../audit/store';

/** In one transaction on one connection; rolled back on any error. */
export async function inTransaction<T>(
  pool: Pool,
  fn: (c: PoolClient) => Promise<T>,
  /** What opens it: BEGIN, or BEGIN and the transaction's first statements in the same round trip (no parameters). */
  begin = 'BEGIN',
): Promise<T> {
  const c = await pool.connect();
  try {
    await c.query(begin);
    const out = await fn(c);
    await c.query('COMMIT');
    return out;
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    c.release();
  }
}

/** `ensure()` runs `sql` once per process (until it succeeds), under the advisory lock `lock`. */
export function schemaOnce(pool: Pool, lock: string, sql: string): () => Promise<void> {
  let ready: Promise<void> | undefined;
  return () => {
    ready ??= inTransaction(pool, async (c) => {
      await c.query(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, [lock]);
      await c.query(sql);
    }).catch((err: unknown) => {
      ready = undefined;
      throw err;
    });
    return ready;
  };
}

/**
 * One of amendctl's tables in its database (the operation store, the shares, the webhook
 * intake): its pool, created on first use, and closed with it.
 */
export abstract class StoreTable {
  readonly ensureSchema: () => Promise<void>;

  protected constructor(
    readonly pool: Pool,
    lock: string,
    sql: string,
  ) {
    pool.on('error', () => undefined); // an idle connection closed by the server: the pool reconnects
    this.ensureSchema = schemaOnce(pool, lock, sql);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/** A pool on the amendctl database (`auditDbConfig`), with bounded waits: an unreachable database is an error, never a hang. */
export function storePool(env: NodeJS.ProcessEnv, o: { max: number; connectMs: number; queryMs: number }): Pool {
  return new Pool({
    ...auditDbConfig(env),
    max: o.max,
    connectionTimeoutMillis: o.connectMs,
    query_timeout: o.queryMs,
  });
}
