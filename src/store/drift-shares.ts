/**
 * Drift's read of the shares (src/store/shares.ts): which of many (target, subject, resource)
 * keys another contract holds a share of. One query per target, subjects only as their HMACs.
 */
import { SHARES_TABLE, type ShareKey, type ShareStore } from './shares';

/** Subjects per query. */
const CHUNK = 2000;

/** The keys (`target\0subject\0resource`) another contract than `contractId` holds a share of. */
export async function heldByOthers(store: ShareStore, contractId: string, keys: ShareKey[]): Promise<Set<string>> {
  await store.ensureSchema();
  const held = new Set<string>();
  const byTarget = new Map<string, ShareKey[]>();
  for (const k of keys) byTarget.set(k.target, [...(byTarget.get(k.target) ?? []), k]);
  for (const [target, list] of byTarget) {
    const subjects = [...new Set(list.map((k) => k.subject))];
    for (let i = 0; i < subjects.length; i += CHUNK) {
      const bySubjectKey = new Map<string, string>();
      for (const s of subjects.slice(i, i + CHUNK))
        for (const mac of store.subjectKeys(target, s)) bySubjectKey.set(mac.toString('hex'), s);
      const r = await store.pool.query<{ subject_key: Buffer; resource: string }>(
        `SELECT DISTINCT subject_key, resource FROM ${SHARES_TABLE} WHERE target = $1 AND contract_id <> $2 AND subject_key = ANY($3::bytea[])`,
        [target, contractId, [...bySubjectKey.keys()].map((h) => Buffer.from(h, 'hex'))],
      );
      for (const row of r.rows) {
        const subject = bySubjectKey.get(row.subject_key.toString('hex'));
        if (subject !== undefined) held.add(`${target}\u0000${subject}\u0000${row.resource}`);
      }
    }
  }
  return held;
}
