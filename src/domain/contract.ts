/**
 * The canonical contract model (shared/REFERENCE-POLICY.md, "The contract").
 *
 * Two readings of one model. `ContractSchema` is the model as stored and replayed (running
 * workflows validate with it: it must not change under them). `ContractDocumentSchema` is what
 * an amendment may bring in from outside, and what the planner checks every contract it
 * produces against: no unknown fields (a misspelt clause is refused, never dropped), email
 * addresses that read as they are (normal form, no Cyrillic "а" among Latin letters, no two that
 * differ only by look-alike letters), real calendar dates, a term
 * that ends after it starts, and clean text (no control, bidirectional or invisible characters).
 * Pure: no I/O, safe to import from workflow code.
 */
import { z } from 'zod';
import { cleanText, documentIssues, emailProblem, emailSkeleton } from './text';

export const CUSTOMER_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,39}$/;

export const CustomerIdSchema = z
  .string()
  .regex(
    CUSTOMER_ID_PATTERN,
    'a customer id is a slug: a-z, 0-9 and "-", starting with a letter or digit, at most 40 characters',
  );

export const ContractStatusSchema = z.enum(['active', 'suspended', 'terminated']);
export type ContractStatus = z.infer<typeof ContractStatusSchema>;

export const RoleSchema = z.enum(['admin', 'member', 'viewer']);
export type Role = z.infer<typeof RoleSchema>;

const IsoDate = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'an ISO date (YYYY-MM-DD)');

/** A date that exists: 2025-02-29 does not. */
const CalendarDate = IsoDate.refine((d) => {
  const [y, m, day] = d.split('-').map(Number) as [number, number, number];
  const t = new Date(Date.UTC(y, m - 1, day));
  return t.getUTCFullYear() === y && t.getUTCMonth() === m - 1 && t.getUTCDate() === day;
}, 'not a date of the calendar (YYYY-MM-DD)');

/** Emails are keys: always lower-cased. */
export const EmailSchema = z
  .string()
  .trim()
  .toLowerCase()
  .regex(/^[^\s@]+@[^\s@]+$/, 'an email address (local@domain)');

/** An email address as an amendment may bring it: see `emailProblem` (Unicode normal form, no mixed look-alike scripts), at most 254 characters. */
export const EmailDocumentSchema = z
  .string()
  .trim()
  .toLowerCase()
  .max(254, 'an email address is at most 254 characters')
  .regex(
    /^[^\s@"(),:;<>[\\\]]+@[^\s@"(),:;<>[\\\]]+\.[^\s@"(),:;<>[\\\].]+$/u,
    'an email address (local@domain.tld, no spaces, quotes or brackets)',
  )
  .superRefine((e, ctx) => {
    const why = emailProblem(e);
    if (why) ctx.addIssue({ code: 'custom', message: `an email address that reads as it is: ${why}` });
  });

export const NamedUserSchema = z.object({
  email: EmailSchema,
  name: z.string().trim().min(1, 'a name'),
  role: RoleSchema,
});
export type NamedUser = z.infer<typeof NamedUserSchema>;

export const TermSchema = z.object({ start: IsoDate, end: IsoDate.optional() });
export type Term = z.infer<typeof TermSchema>;

export const CONTRACT_CLAUSES = [
  'customer',
  'status',
  'tier',
  'seats',
  'modules',
  'namedUsers',
  'term',
  'region',
  'custom',
] as const;

/** Unknown keys are refused with the keys a place allows: `contract.namdUsers: unknown field (...)`. */
const unknownField = (what: string, allowed: readonly string[]) => (iss: { code?: string }) =>
  iss.code === 'unrecognized_keys' ? `unknown ${what} (expected ${allowed.join(', ')})` : undefined;

const uniqueEmails = (users: Array<{ email: string }>, ctx: z.RefinementCtx): void => {
  const seen = new Set<string>();
  users.forEach((u, i) => {
    if (seen.has(u.email))
      ctx.addIssue({ code: 'custom', path: ['namedUsers', i, 'email'], message: `duplicate named user ${u.email}` });
    seen.add(u.email);
  });
};

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
  .superRefine((c, ctx) => uniqueEmails(c.namedUsers, ctx));
export type Contract = z.infer<typeof ContractSchema>;

const NamedUserDocumentSchema = z.strictObject(
  {
    email: EmailDocumentSchema,
    name: cleanText(200, { what: 'a name' }).trim().min(1, 'a name'),
    role: RoleSchema,
  },
  { error: unknownField('field of a named user', ['email', 'name', 'role']) },
);

/** The contract as an amendment may bring it in (and as the planner checks what it produces): see the header. */
export const ContractDocumentSchema = z
  .strictObject(
    {
      customer: z.strictObject(
        { id: CustomerIdSchema, name: cleanText(200, { what: 'a name' }).trim().min(1, 'a name') },
        { error: unknownField('field of customer', ['id', 'name']) },
      ),
      status: ContractStatusSchema,
      tier: cleanText(64, { min: 1, what: 'a tier' }),
      seats: z.number().int().min(0).max(10_000_000),
      modules: z
        .array(
          z
            .string()
            .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'a module name: letters, digits, ".", "_" and "-", at most 64'),
        )
        .max(1000)
        .default([]),
      namedUsers: z.array(NamedUserDocumentSchema).default([]),
      term: z
        .strictObject(
          { start: CalendarDate, end: CalendarDate.optional() },
          { error: unknownField('field of term', ['start', 'end']) },
        )
        .refine((t) => t.end === undefined || t.end >= t.start, {
          path: ['end'],
          message: 'the term ends before it starts',
        }),
      region: cleanText(64, { min: 1, what: 'a region' }),
      // Depth and text first, without recursion: the recursive z.json() then never meets a hostile depth.
      custom: z
        .unknown()
        .superRefine((custom, ctx) => {
          for (const i of documentIssues(custom, 5)) ctx.addIssue({ code: 'custom', path: i.path, message: i.message });
        })
        .pipe(z.record(cleanText(128, { min: 1, what: 'a custom clause name' }), z.json()))
        .default({}),
    },
    { error: unknownField('clause', [...CONTRACT_CLAUSES.slice(0, -1), 'custom (other clauses go under custom)']) },
  )
  .superRefine((c, ctx) => {
    uniqueEmails(c.namedUsers, ctx);
    const bySkeleton = new Map<string, number>();
    c.namedUsers.forEach((u, i) => {
      const k = emailSkeleton(u.email);
      const first = bySkeleton.get(k);
      if (first !== undefined && c.namedUsers[first]!.email !== u.email) {
        ctx.addIssue({
          code: 'custom',
          path: ['namedUsers', i, 'email'],
          message: `${u.email} looks the same as namedUsers[${first}].email ${c.namedUsers[first]!.email} (letters of another script that look alike): one person, or an impostor`,
        });
      }
      if (first === undefined) bySkeleton.set(k, i);
    });
  });

/** Canonical form: modules sorted and unique, named users sorted by email. Equal contracts are equal as JSON. */
export function canonicalContract(c: Contract): Contract {
  return {
    ...c,
    modules: [...new Set(c.modules)].sort(),
    namedUsers: [...c.namedUsers].sort((a, b) => (a.email < b.email ? -1 : a.email > b.email ? 1 : 0)),
    custom: { ...c.custom },
  };
}
