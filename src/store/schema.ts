/**
 * One way for amendctl's tables to come into being: the first use in a process creates them,
 * serialised across processes by a transaction-scoped advisory lock; a failure is retried on
 * the next use.
 */
import type { Pool, PoolClient } from 'pg';

/** In one transaction on one connection; rolled back on any error. */
export async function inTransaction<T>(pool: Pool, fn: (c: PoolClient) => Promise<T>): Promise<T> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
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
