/**
 * Shares: which contracts name an account, and which of them want each of its memberships.
 *
 * An account in a target (and each group or role it has there) belongs to the set of
 * contracts whose applied state grants it. A contract's amendment takes its contract's share
 * when it grants (ensure, reactivate, join, grant) and gives it up when it takes away
 * (deactivate, leave, revoke); the target is changed only when the last share goes. So an
 * account named by two contracts stays active, with the other's groups and roles, when one
 * of them removes the person, and is deactivated when neither names them any more.
 *
 * Where it lives, and why: in the amendctl database, beside the operation store. Shares cross
 * contracts, so no contract workflow can hold them (each knows only its own state), and one
 * entity workflow per account would mean 10,000 workflows for a large contract. A table is
 * shared by every worker, survives restarts, and makes the claim exact under concurrent
 * amendments of different contracts: each change of a share and the target call it decides
 * run in one transaction under an advisory lock on (target, subject, resource), so a
 * deactivation and another contract's ensure of the same account never interleave.
 *
 * The subject (an email) is never stored: rows keep an HMAC of it under a key derived from
 * each codec key (the current one writes; every configured one reads, so rotation works).
 */
import { createHash, createHmac, hkdfSync } from 'node:crypto';
import type { Pool, PoolClient } from 'pg';
import { type CodecKeys, loadCodecKeys } from '../codec';
import { inTransaction, StoreTable, storePool } from './schema';

export const SHARES_TABLE = 'amendctl_shares';

/** What a share is of: the account itself (`''`: the contract wants it active), or one of its groups or roles. */
export interface ShareKey {
  target: string;
  subject: string;
  resource: string;
}

/** One contract's share as it stood: the amendment that took it. */
export interface Share {
  contractId: string;
  amendmentId: string;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS ${SHARES_TABLE} (
  target       text        NOT NULL,
  subject_key  bytea       NOT NULL,
  resource     text        NOT NULL,
  contract_id  text        NOT NULL,
  amendment_id text        NOT NULL,
  key_id       text        NOT NULL,
  since        timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (target, subject_key, resource, contract_id)
);
CREATE INDEX IF NOT EXISTS ${SHARES_TABLE}_contract ON ${SHARES_TABLE} (contract_id);
`;

/** The lock id of a key: unkeyed, never stored, the same in every worker whatever its codec keys. */
function lockId(k: ShareKey): bigint {
  return createHash('sha256').update(`${k.target}\u0000${k.subject}\u0000${k.resource}`).digest().readBigInt64BE(0);
}

export class ShareStore extends StoreTable {
  private readonly macKeys: Array<{ id: string; key: Buffer }>;

  constructor(pool: Pool, keys: CodecKeys) {
    super(pool, 'amendctl_shares_schema', SCHEMA);
    const derive = (key: Buffer) =>
      Buffer.from(hkdfSync('sha256', key, Buffer.from('amendctl'), Buffer.from('share-subject/1'), 32));
    this.macKeys = [
      { id: keys.current, key: derive(keys.keys.get(keys.current)!) },
      ...[...keys.keys].filter(([id]) => id !== keys.current).map(([id, key]) => ({ id, key: derive(key) })),
    ];
  }

  static fromEnv(env: NodeJS.ProcessEnv = process.env): ShareStore {
    // One connection per share change in flight (each held while its target call runs).
    return new ShareStore(storePool(env, { max: 24, connectMs: 5_000, queryMs: 60_000 }), loadCodecKeys(env));
  }

  /** The subject's stored form under each configured key, the current key's first. */
  subjectKeys(target: string, subject: string): Buffer[] {
    return this.macKeys.map((k) => createHmac('sha256', k.key).update(`${target}\u0000${subject}`).digest());
  }

  /**
   * `fn` with the keys locked (in a fixed order, so two callers never deadlock) in one
   * transaction: what it changes in the shares commits only if it returns, together.
   */
  async locked<T>(keys: ShareKey[], fn: (tx: ShareTx) => Promise<T>): Promise<T> {
    await this.ensureSchema();
    const ids = [...new Set(keys.map(lockId))].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    // The locks go with the BEGIN, in one round trip: their ids are numbers of our own (a hash), never input.
    return inTransaction(
      this.pool,
      (c) => fn(new ShareTx(c, this)),
      `BEGIN; SELECT pg_advisory_xact_lock(id) FROM unnest('{${ids.join(',')}}'::bigint[]) WITH ORDINALITY AS l(id, n) ORDER BY n`,
    );
  }

  /** Every share of one contract (for tests and operators): target, resource, amendment; subjects only as their keys. */
  async ofContract(
    contractId: string,
  ): Promise<Array<{ target: string; resource: string; amendmentId: string; subjectKey: Buffer }>> {
    await this.ensureSchema();
    const r = await this.pool.query(
      `SELECT target, resource, amendment_id, subject_key FROM ${SHARES_TABLE} WHERE contract_id = $1 ORDER BY target, resource`,
      [contractId],
    );
    return r.rows.map((x) => ({
      target: x.target,
      resource: x.resource,
      amendmentId: x.amendment_id,
      subjectKey: x.subject_key,
    }));
  }

  /** The id of the codec key new rows are keyed with. */
  currentKeyId(): string {
    return this.macKeys[0]!.id;
  }
}

/** A key's shares ($1 target, $2 the subject's stored forms, $3 resource), as a statement sees them before it writes. */
const CURRENT = `SELECT contract_id, amendment_id, since FROM ${SHARES_TABLE} WHERE target = $1 AND subject_key = ANY($2::bytea[]) AND resource = $3`;

/** The shares of locked keys, inside their transaction. */
export class ShareTx {
  /** Each subject's stored forms, computed once per transaction (a take reads, then writes, the same key). */
  private readonly keyed = new Map<string, Buffer[]>();

  constructor(
    private readonly c: PoolClient,
    private readonly store: ShareStore,
  ) {}

  private subjectKeys(k: ShareKey): Buffer[] {
    const id = `${k.target}\u0000${k.subject}`;
    let keys = this.keyed.get(id);
    if (!keys) this.keyed.set(id, (keys = this.store.subjectKeys(k.target, k.subject)));
    return keys;
  }

  /** Every contract's share of the key. */
  async shares(k: ShareKey): Promise<Share[]> {
    return this.rows(
      await this.c.query<{ contract_id: string; amendment_id: string }>(`${CURRENT} ORDER BY since`, [
        k.target,
        this.subjectKeys(k),
        k.resource,
      ]),
    );
  }

  /** Every contract's share of the key as it was, and the contract's taken by `s.amendmentId` if it had none: one statement. */
  async sharesThenTake(k: ShareKey, s: Share): Promise<Share[]> {
    const keys = this.subjectKeys(k);
    return this.rows(
      await this.c.query<{ contract_id: string; amendment_id: string }>(
        `WITH cur AS (${CURRENT}),
              taken AS (INSERT INTO ${SHARES_TABLE} (target, subject_key, resource, contract_id, amendment_id, key_id)
                        SELECT $1, $4, $3, $5, $6, $7 WHERE NOT EXISTS (SELECT 1 FROM cur WHERE contract_id = $5))
         SELECT contract_id, amendment_id FROM cur ORDER BY since`,
        [k.target, keys, k.resource, keys[0], s.contractId, s.amendmentId, this.store.currentKeyId()],
      ),
    );
  }

  /** Every contract's share of the key as it was, and the contract's given up: one statement. */
  async sharesThenDrop(k: ShareKey, contractId: string): Promise<Share[]> {
    return this.rows(
      await this.c.query<{ contract_id: string; amendment_id: string }>(
        `WITH cur AS (${CURRENT}),
              dropped AS (DELETE FROM ${SHARES_TABLE} WHERE target = $1 AND subject_key = ANY($2::bytea[]) AND resource = $3 AND contract_id = $4)
         SELECT contract_id, amendment_id FROM cur ORDER BY since`,
        [k.target, this.subjectKeys(k), k.resource, contractId],
      ),
    );
  }

  private rows(r: { rows: Array<{ contract_id: string; amendment_id: string }> }): Share[] {
    return r.rows.map((x) => ({ contractId: x.contract_id, amendmentId: x.amendment_id }));
  }

  /** The contract's share, taken by `amendmentId` (kept as it is when the contract holds it already). */
  async take(k: ShareKey, s: Share): Promise<void> {
    await this.sharesThenTake(k, s);
  }

  /** The contract gives its share up. */
  async drop(k: ShareKey, contractId: string): Promise<void> {
    await this.sharesThenDrop(k, contractId);
  }
}
