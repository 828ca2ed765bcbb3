/**
 * What a person or a service may send to a workflow through the client and the CLI, checked
 * before anything reaches Temporal: ids of the business-key alphabet, who (`by`) as one line of
 * clean text, bounded comments and reasons, a sane retry budget. The workflows check their
 * own messages too (src/workflows/state.ts); these checks are stricter, so a mistake is told at
 * once, with the field, instead of recorded in the workflow as an ignored signal.
 */
import { z } from 'zod';
import { BusinessIdSchema } from '../domain/amendment';
import { InputError, parseWith } from '../domain/errors';
import { cleanText, shown } from '../domain/text';

/** Who decides: a user id, one line, at most 256 characters. */
const By = cleanText(256, { min: 1, what: 'who ("by")' });
const Text = (what: string, min: number) => cleanText(2000, { min, what, multiline: true });
const At = z.iso.datetime({ offset: true, error: 'an ISO date-time with an offset (2026-03-01T09:00:00Z)' }).optional();

/** A signed approval token (src/approvals/token.ts): `amap1.` and two base64url parts. */
const Proof = z
  .string()
  .max(4096, 'the proof: at most 4096 characters')
  .regex(/^amap1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/, 'the proof: an amap1 approval token')
  .optional();
export const ApproveInputSchema = z.strictObject({
  by: By,
  comment: Text('a comment', 0).optional(),
  at: At,
  proof: Proof,
});
export const RejectInputSchema = z.strictObject({ by: By, reason: Text('a reason', 1), at: At, proof: Proof });
export const CancelInputSchema = z.strictObject({ by: By, reason: Text('a reason', 1), at: At });
export const ReleaseInputSchema = z.strictObject({
  by: By,
  reason: Text('a reason', 1),
  amendmentId: BusinessIdSchema.optional(),
  timeoutMs: z.number().int().positive().optional(),
});

/** Longest retry budget a submitter may ask for: 30 days (an operation retried longer than that is an outage to fix). */
export const MAX_RETRY_BUDGET_SECONDS = 30 * 24 * 3600;
export const RetryBudgetSchema = z
  .number()
  .int('a whole number of seconds')
  .min(1, 'at least 1 second')
  .max(MAX_RETRY_BUDGET_SECONDS, `at most ${MAX_RETRY_BUDGET_SECONDS} seconds (30 days)`);

/** The options this module knows; others pass (the client's own type says what they are). */
export const SubmitOptionsSchema = z.looseObject({
  retryBudgetSeconds: RetryBudgetSchema.optional(),
  rollback: z.strictObject({ requestedBy: By, reason: Text('a reason', 1) }).optional(),
});

/** Parse a decision, or an InputError naming the field: `invalid approval: by: ...`. */
export function checkInput<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  return parseWith(schema, value, what);
}

/** An amendment or contract id as given on the command line or to the client: the alphabet of workflow ids. */
export function checkId(kind: 'AMENDMENT_ID' | 'CONTRACT_ID', id: string): string {
  const r = BusinessIdSchema.safeParse(id);
  if (!r.success)
    throw new InputError(`invalid ${kind}`, [
      { path: kind, message: `"${shown(id, 60)}" is not ${r.error.issues[0]!.message}` },
    ]);
  return id;
}
