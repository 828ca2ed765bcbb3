/**
 * The amendment document (shared/REFERENCE-POLICY.md, "The amendment document").
 *
 * `AmendmentSchema` is what a running workflow validates its input with (it must not change
 * under running workflows: replay). `AmendmentDocumentSchema` is what every boundary accepts
 * from outside (the CLI, the client, webhooks, rule cases): no unknown fields anywhere, clean
 * text, bounded sizes, the contract as `ContractDocumentSchema` reads it. Every document it
 * accepts, `AmendmentSchema` accepts too, unchanged.
 * Pure: no I/O, safe to import from workflow code.
 */
import { z } from 'zod';
import { ContractDocumentSchema, ContractSchema } from './contract';
import { cleanText, documentIssues, MAX_DOCUMENT_BYTES, utf8Length } from './text';

/** Ids become parts of Temporal workflow ids and search attributes: keep them to a safe alphabet. */
export const BusinessIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, 'an id of letters, digits, ".", "_", ":" and "-" (at most 128)');

/**
 * One edit of the `changes` form, applied to the applied contract (src/domain/edits.ts). Not a
 * `Change`: that is a difference the diff finds between two contracts (src/domain/plan.ts).
 */
export const EditSchema = z.object({
  op: z.enum(['set', 'add', 'remove']),
  /** A clause path: `seats`, `modules`, `namedUsers`, `namedUsers.role`, `customer.name`, `term.end`, `custom.sla`. */
  path: z.string().min(1),
  value: z.json().optional(),
  /** Picks list items (for `namedUsers`: `{ email }`). */
  match: z.record(z.string(), z.json()).optional(),
});
export type Edit = z.infer<typeof EditSchema>;

export const ClauseTextSchema = z.object({
  ref: z.string().min(1),
  heading: z.string().default(''),
  text: z.string(),
});
export type ClauseText = z.infer<typeof ClauseTextSchema>;

/** A reversal carries no body; anything else exactly one of contract, changes or clauses. */
function oneBody(
  a: { reverses?: string | undefined; contract?: unknown; changes?: unknown; clauses?: unknown },
  ctx: z.RefinementCtx,
): void {
  const bodies = (['contract', 'changes', 'clauses'] as const).filter((k) => a[k] !== undefined);
  if (a.reverses !== undefined) {
    if (bodies.length > 0)
      ctx.addIssue({
        code: 'custom',
        path: [bodies[0]!],
        message: 'a reversal carries no contract, changes or clauses',
      });
    return;
  }
  if (bodies.length !== 1) {
    ctx.addIssue({
      code: 'custom',
      path: [],
      message: `exactly one of contract, changes or clauses is required (found ${bodies.length === 0 ? 'none' : bodies.join(', ')})`,
    });
  }
}

export const AmendmentSchema = z
  .object({
    amendmentId: BusinessIdSchema,
    contractId: BusinessIdSchema,
    sequence: z.number().int().min(1),
    effectiveAt: z.iso.datetime({ offset: true }).optional(),
    submittedBy: z.string().min(1),
    reverses: BusinessIdSchema.optional(),
    contract: ContractSchema.optional(),
    changes: z.array(EditSchema).optional(),
    clauses: z.array(ClauseTextSchema).optional(),
  })
  .strict()
  .superRefine(oneBody);
export type Amendment = z.infer<typeof AmendmentSchema>;
export type AmendmentInput = z.input<typeof AmendmentSchema>;

const unknownKey = (what: string, allowed: readonly string[]) => (iss: { code?: string }) =>
  iss.code === 'unrecognized_keys' ? `unknown ${what} (expected ${allowed.join(', ')})` : undefined;

const EditDocumentSchema = z.strictObject(
  {
    op: z.enum(['set', 'add', 'remove']),
    path: cleanText(200, { min: 1, what: 'a clause path (seats, namedUsers.role, custom.sla ...)' }),
    value: z.json().optional(),
    match: z.record(cleanText(64, { min: 1, what: 'a field' }), z.json()).optional(),
  },
  { error: unknownKey('field of an edit', ['op', 'path', 'value', 'match']) },
);

const ClauseTextDocumentSchema = z.strictObject(
  {
    ref: cleanText(64, { min: 1, what: 'a clause reference' }),
    heading: cleanText(500).default(''),
    text: cleanText(200_000, { multiline: true }),
  },
  { error: unknownKey('field of a clause', ['ref', 'heading', 'text']) },
);

const AMENDMENT_FIELDS = [
  'amendmentId',
  'contractId',
  'sequence',
  'effectiveAt',
  'submittedBy',
  'reverses',
  'contract',
  'changes',
  'clauses',
] as const;

/**
 * The amendment as a boundary accepts it from outside (see the header). Depth, size and the
 * text of every string are checked first, without recursion, so a hostile value never
 * reaches the schema's recursive parts.
 */
export const AmendmentDocumentSchema = z
  .unknown()
  .superRefine((value, ctx) => {
    const issues = documentIssues(value);
    for (const i of issues) ctx.addIssue({ code: 'custom', path: i.path, message: i.message });
    if (issues.length === 0 && value !== null && typeof value === 'object') {
      let size = 0;
      try {
        size = utf8Length(JSON.stringify(value));
      } catch {
        ctx.addIssue({ code: 'custom', path: [], message: 'not a JSON value' });
      }
      if (size > MAX_DOCUMENT_BYTES)
        ctx.addIssue({
          code: 'custom',
          path: [],
          message: `${size} bytes as JSON; an amendment is at most ${MAX_DOCUMENT_BYTES} bytes`,
        });
    }
  })
  .pipe(
    z
      .strictObject(
        {
          amendmentId: BusinessIdSchema,
          contractId: BusinessIdSchema,
          sequence: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
          effectiveAt: z.iso.datetime({ offset: true }).optional(),
          submittedBy: cleanText(256, { min: 1, what: 'the submitter' }),
          reverses: BusinessIdSchema.optional(),
          contract: ContractDocumentSchema.optional(),
          changes: z.array(EditDocumentSchema).max(10_000).optional(),
          clauses: z.array(ClauseTextDocumentSchema).max(1000).optional(),
        },
        { error: unknownKey('field', AMENDMENT_FIELDS) },
      )
      .superRefine(oneBody),
  );
