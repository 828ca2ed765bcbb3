/**
 * The amendment document (shared/REFERENCE-POLICY.md, "The amendment document").
 * Pure: no I/O, safe to import from workflow code.
 */
import { z } from 'zod';
import { ContractSchema } from './contract';

/** Ids become parts of Temporal workflow ids and search attributes: keep them to a safe alphabet. */
export const BusinessIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, 'an id of letters, digits, ".", "_", ":" and "-" (at most 128)');

export const ChangeOpSchema = z.object({
  op: z.enum(['set', 'add', 'remove']),
  /** A clause path: `seats`, `modules`, `namedUsers`, `namedUsers.role`, `customer.name`, `term.end`, `custom.sla`. */
  path: z.string().min(1),
  value: z.json().optional(),
  /** Picks list items (for `namedUsers`: `{ email }`). */
  match: z.record(z.string(), z.json()).optional(),
});
export type ChangeOp = z.infer<typeof ChangeOpSchema>;

export const ClauseTextSchema = z.object({
  ref: z.string().min(1),
  heading: z.string().default(''),
  text: z.string(),
});
export type ClauseText = z.infer<typeof ClauseTextSchema>;

export const AmendmentSchema = z
  .object({
    amendmentId: BusinessIdSchema,
    contractId: BusinessIdSchema,
    sequence: z.number().int().min(1),
    effectiveAt: z.iso.datetime({ offset: true }).optional(),
    submittedBy: z.string().min(1),
    reverses: BusinessIdSchema.optional(),
    contract: ContractSchema.optional(),
    changes: z.array(ChangeOpSchema).optional(),
    clauses: z.array(ClauseTextSchema).optional(),
  })
  .strict()
  .superRefine((a, ctx) => {
    const bodies = (['contract', 'changes', 'clauses'] as const).filter((k) => a[k] !== undefined);
    if (a.reverses !== undefined) {
      if (bodies.length > 0) ctx.addIssue({ code: 'custom', path: [bodies[0]!], message: 'a reversal carries no contract, changes or clauses' });
      return;
    }
    if (bodies.length !== 1) {
      ctx.addIssue({ code: 'custom', path: [], message: `exactly one of contract, changes or clauses is required (found ${bodies.length === 0 ? 'none' : bodies.join(', ')})` });
    }
  });
export type Amendment = z.infer<typeof AmendmentSchema>;
export type AmendmentInput = z.input<typeof AmendmentSchema>;
