/**
 * Signed checkpoints of the durable audit log: the anchor outside its table that makes a
 * truncation visible. A hash chain alone proves that no record was edited or taken from the
 * middle; deleting the newest records leaves a shorter chain that still verifies. A checkpoint
 * (`amendctl audit checkpoint`) names each contract chain's head (its last seq and hash) at a
 * moment, signed with a key derived from the payload codec keys (HMAC-SHA256; HKDF, so the key
 * that encrypts payloads is never used to sign), and is kept where the database's writers cannot
 * reach (a compliance archive, object storage with retention). `amendctl audit verify
 * --checkpoint FILE` then fails when a head it names is missing (truncated) or differs
 * (rewritten), and when the checkpoint itself was altered.
 */
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import type { CodecKeys } from '../codec';
import { canonicalJson } from '../domain/json';
import type { AuditRow } from './store';

export const CHECKPOINT_FORMAT = 'amendctl-audit-checkpoint/1';

export const CheckpointSchema = z
  .object({
    format: z.literal(CHECKPOINT_FORMAT),
    at: z.iso.datetime({ offset: true }),
    keyId: z.string().min(1),
    // Any contract id the log holds (an invalid amendment that named none is chained under '').
    heads: z.array(
      z
        .object({
          contractId: z.string().max(10_000),
          seq: z.number().int().positive(),
          hash: z.string().regex(/^[0-9a-f]{64}$/),
        })
        .strict(),
    ),
    signature: z.string().min(1),
  })
  .strict();
export type Checkpoint = z.infer<typeof CheckpointSchema>;
export type ChainHead = Checkpoint['heads'][number];

function signingKey(keys: CodecKeys, keyId: string): Buffer | undefined {
  const key = keys.keys.get(keyId);
  return key
    ? Buffer.from(hkdfSync('sha256', key, Buffer.from('amendctl'), Buffer.from('audit-checkpoint/1'), 32))
    : undefined;
}

function mac(key: Buffer, c: Omit<Checkpoint, 'signature'>): string {
  return createHmac('sha256', key).update(canonicalJson(c)).digest('base64url');
}

/** A checkpoint of these heads, signed with the current key. */
export function signCheckpoint(heads: ChainHead[], keys: CodecKeys, at = new Date()): Checkpoint {
  const body = {
    format: CHECKPOINT_FORMAT,
    at: at.toISOString(),
    keyId: keys.current,
    heads: [...heads].sort((a, b) => a.contractId.localeCompare(b.contractId)),
  } as const;
  return { ...body, signature: mac(signingKey(keys, keys.current)!, body) };
}

export interface CheckpointProblem {
  contractId?: string;
  seq?: number;
  problem: string;
}

/**
 * Pure: the checkpoint's signature, then each head it names against the log's rows (of the
 * contracts checked; `only` limits it to one). Returns every problem found.
 */
export function checkCheckpoint(c: Checkpoint, rows: AuditRow[], keys: CodecKeys, only?: string): CheckpointProblem[] {
  const key = signingKey(keys, c.keyId);
  if (!key)
    return [
      {
        problem: `the checkpoint is signed with key "${c.keyId}", which is not among the configured codec keys (${[...keys.keys.keys()].join(', ')})`,
      },
    ];
  const { signature, ...body } = c;
  const expected = Buffer.from(mac(key, body));
  const given = Buffer.from(signature);
  if (expected.length !== given.length || !timingSafeEqual(expected, given))
    return [{ problem: 'the checkpoint does not match its signature (it was altered after it was signed)' }];
  const byContract = new Map<string, AuditRow[]>();
  for (const r of rows) byContract.set(r.contractId, [...(byContract.get(r.contractId) ?? []), r]);
  const problems: CheckpointProblem[] = [];
  for (const head of c.heads) {
    if (only !== undefined && head.contractId !== only) continue;
    const chain = byContract.get(head.contractId) ?? [];
    const row = chain.find((r) => r.seq === head.seq);
    const last = chain.reduce((m, r) => Math.max(m, r.seq), 0);
    if (!row) {
      problems.push({
        contractId: head.contractId,
        seq: head.seq,
        problem: `truncated: the checkpoint of ${c.at} names record seq ${head.seq} (hash ${head.hash.slice(0, 12)}…), the log ${last === 0 ? 'has no record of this contract' : `ends at seq ${last}`}`,
      });
    } else if (row.hash !== head.hash) {
      problems.push({
        contractId: head.contractId,
        seq: head.seq,
        problem: `rewritten: record seq ${head.seq} has hash ${row.hash.slice(0, 12)}…, the checkpoint of ${c.at} says ${head.hash.slice(0, 12)}…`,
      });
    }
  }
  return problems;
}
