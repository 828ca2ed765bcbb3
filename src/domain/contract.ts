/**
 * The canonical contract model (shared/REFERENCE-POLICY.md, "The contract").
 * Pure: no I/O, safe to import from workflow code.
 */
import { z } from 'zod';

export const CUSTOMER_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,39}$/;

export const CustomerIdSchema = z
  .string()
  .regex(CUSTOMER_ID_PATTERN, 'a customer id is a slug: a-z, 0-9 and "-", starting with a letter or digit, at most 40 characters');

export const ContractStatusSchema = z.enum(['active', 'suspended', 'terminated']);
export type ContractStatus = z.infer<typeof ContractStatusSchema>;

export const RoleSchema = z.enum(['admin', 'member', 'viewer']);
export type Role = z.infer<typeof RoleSchema>;

const IsoDate = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'an ISO date (YYYY-MM-DD)');

/** Emails are keys: always lower-cased. */
export const EmailSchema = z
  .string()
  .trim()
  .toLowerCase()
  .regex(/^[^\s@]+@[^\s@]+$/, 'an email address (local@domain)');

export const NamedUserSchema = z.object({
  email: EmailSchema,
  name: z.string().trim().min(1, 'a name'),
  role: RoleSchema,
});
export type NamedUser = z.infer<typeof NamedUserSchema>;

export const TermSchema = z.object({ start: IsoDate, end: IsoDate.optional() });
export type Term = z.infer<typeof TermSchema>;

export const ContractSchema = z
  .object({
    customer: z.object({ id: CustomerIdSchema, name: z.string().trim().min(1) }),
    status: ContractStatusSchema,
    tier: z.string().min(1),
    seats: z.number().int().min(0),
    modules: z.array(z.string().min(1)).default([]),
    namedUsers: z.array(NamedUserSchema).default([]),
    term: TermSchema,
    region: z.string().min(1),
    custom: z.record(z.string(), z.json()).default({}),
  })
  .superRefine((c, ctx) => {
    const seen = new Set<string>();
    c.namedUsers.forEach((u, i) => {
      if (seen.has(u.email)) ctx.addIssue({ code: 'custom', path: ['namedUsers', i, 'email'], message: `duplicate named user ${u.email}` });
      seen.add(u.email);
    });
  });
export type Contract = z.infer<typeof ContractSchema>;

/** Canonical form: modules sorted and unique, named users sorted by email. Equal contracts are equal as JSON. */
export function canonicalContract(c: Contract): Contract {
  return {
    ...c,
    modules: [...new Set(c.modules)].sort(),
    namedUsers: [...c.namedUsers].sort((a, b) => (a.email < b.email ? -1 : a.email > b.email ? 1 : 0)),
    custom: { ...c.custom },
  };
}
