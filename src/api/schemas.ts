/**
 * What the API takes and answers, as zod schemas: the OpenAPI document is generated from
 * them (src/api/openapi.ts). Requests are validated with the domain's own schemas
 * (AmendmentSchema, CancelSchema); the views document the fields a caller may rely on
 * (each view may carry more), and the compile-time checks at the end keep them true to
 * the client's types.
 */
import { z } from 'zod';
import { AmendmentSchema, BusinessIdSchema } from '../domain/amendment';
import { ActionSchema } from '../domain/plan';
import { PROOF_METHODS } from '../approvals/token';
import { AMENDMENT_STATUSES, type AmendmentView, CancelSchema, type ContractView } from '../workflows/definitions';

export const ProblemSchema = z
  .object({
    type: z.string().meta({ description: 'urn:amendctl:problem:<slug>, stable' }),
    title: z.string(),
    status: z.number().int(),
    detail: z.string().optional(),
    errors: z
      .array(
        z.object({
          path: z.string().meta({ description: 'the field: `namedUsers[2].email`; empty for the whole document' }),
          message: z.string(),
        }),
      )
      .optional(),
  })
  .meta({ description: 'RFC 9457 problem details' });

/** The submit body: an amendment document whose `submittedBy` may be left out (the credential decides who submits). */
const { submittedBy, ...documentFields } = AmendmentSchema.shape;
export const AmendmentRequestSchema = z.strictObject({ ...documentFields, submittedBy: submittedBy.optional() }).meta({
  description:
    'An amendment document (JSON or YAML): exactly one of `contract`, `changes` or `clauses`, or `reverses` alone. The submitter recorded is the caller (its API key id or token subject); a `submittedBy` naming someone else is kept as the memo `claimedBy` only.',
});

export const CancelRequestSchema = z
  .strictObject({ ...CancelSchema.shape, by: CancelSchema.shape.by.optional() })
  .omit({ at: true })
  .meta({ description: '`by` is the caller (its API key id or token subject): leave it out, or give exactly that.' });

export const IdParamsSchema = z.object({ id: BusinessIdSchema });
export const SourceParamsSchema = z.object({
  source: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'a source name'),
});

export const AcceptedSchema = z.object({
  amendmentId: z.string(),
  contractId: z.string(),
  workflowId: z.string(),
  statusUrl: z.string().meta({ description: "GET it for the amendment's view; also the Location header" }),
  duplicate: z
    .boolean()
    .meta({ description: 'true: this amendmentId was submitted before and nothing new was started' }),
});

export const CancelAcceptedSchema = z.object({ amendmentId: z.string(), statusUrl: z.string() });

export const WebhookAcceptedSchema = z.object({
  source: z.string(),
  eventId: z.string(),
  amendments: z.array(
    AcceptedSchema.extend({
      differs: z
        .boolean()
        .optional()
        .meta({ description: 'a duplicate whose earlier delivery carried other content: the first stands' }),
    }),
  ),
});

export const ReceivedSchema = z
  .object({
    amendmentId: z.string(),
    contractId: z.string(),
    workflowId: z.string(),
    status: z.literal('received'),
    source: z.string().meta({ description: 'the webhook source that delivered it' }),
    eventId: z.string(),
    receivedAt: z.string(),
    attempts: z.number().int().meta({ description: 'starts tried so far' }),
    lastError: z
      .string()
      .optional()
      .meta({ description: 'why the last start failed (Temporal unavailable, ...); it is retried' }),
  })
  .meta({
    description:
      'acknowledged and kept by the webhook intake; its workflow starts shortly (ask again after Retry-After)',
  });

export const HealthSchema = z.object({ status: z.literal('ok') });
export const ReadinessSchema = z.object({
  ready: z.boolean(),
  checks: z.array(z.object({ name: z.string(), ok: z.boolean(), detail: z.string().optional() })),
});

const OUTCOMES = [
  'pending',
  'running',
  'applied',
  'unchanged',
  'failed',
  'skipped',
  'compensated',
  'compensation_failed',
] as const;
const Outcome = z.enum(OUTCOMES);
const ProofViewSchema = z
  .object({
    via: z.enum(PROOF_METHODS),
    keyId: z.string(),
    issuedAt: z.string(),
    expiresAt: z.string(),
    tokenId: z.string(),
    verifiedAt: z.string(),
  })
  .meta({
    description:
      'how the decision was proven: the key that signed it, how the approver proved themselves to its holder, when',
  });
const DecisionSchema = z.object({
  by: z.string(),
  at: z.string(),
  comment: z.string().optional(),
  proof: ProofViewSchema.optional(),
});

export const ApproveRequestSchema = z
  .strictObject({ comment: z.string().max(2000).optional() })
  .meta({ description: 'The approver is the caller: a person proven by the credential.' });
export const RejectRequestSchema = z
  .strictObject({ reason: z.string().trim().min(1, 'a reason is required').max(2000) })
  .meta({ description: 'The approver is the caller: a person proven by the credential.' });

const OperationViewSchema = z.object({
  id: z.string(),
  target: z.string(),
  action: ActionSchema,
  subject: z.string(),
  description: z.string(),
  ruleIds: z.array(z.string()),
  outcome: Outcome,
  detail: z.string().optional(),
  error: z.object({ type: z.string(), message: z.string() }).optional(),
  attempts: z.number().int().optional(),
  startedAt: z.string().optional(),
  finishedAt: z.string().optional(),
});

export const AmendmentViewSchema = z
  .object({
    amendmentId: z.string(),
    contractId: z.string(),
    sequence: z.number().int(),
    workflowId: z.string(),
    submittedBy: z.string(),
    status: z.enum(AMENDMENT_STATUSES),
    reason: z.string().optional(),
    customerId: z.string().optional(),
    reverses: z.string().optional(),
    effectiveAt: z.string().optional(),
    submittedAt: z.string(),
    finishedAt: z.string().optional(),
    rulesetHash: z.string().optional(),
    planHash: z.string().optional(),
    changes: z.array(
      z.object({
        kind: z.enum(['added', 'removed', 'modified']),
        clause: z.string(),
        path: z.string(),
        key: z.string().optional(),
      }),
    ),
    violations: z.array(z.object({ ruleId: z.string(), message: z.string() })),
    approval: z
      .object({
        required: z.boolean(),
        reasons: z.array(z.object({ ruleId: z.string(), message: z.string() })),
        stage: z.enum(['primary', 'escalated']),
        needed: z.number().int(),
        stillNeeded: z.number().int(),
        approvals: z.array(DecisionSchema),
        deadline: z.string().optional(),
        rejection: DecisionSchema.extend({ reason: z.string() }).optional(),
        ignored: z.array(DecisionSchema.extend({ why: z.string() })),
        eligible: z.array(z.string()),
      })
      .optional(),
    operations: z.array(OperationViewSchema).meta({ description: 'the first 50' }),
    operationsTotal: z.number().int().optional(),
    operationCounts: z
      .record(z.string(), z.partialRecord(Outcome, z.number().int()))
      .optional()
      .meta({ description: 'per target and outcome' }),
    failures: z.array(OperationViewSchema).optional(),
    cancellation: z
      .object({ by: z.string(), at: z.string(), reason: z.string(), kind: z.enum(['cancelled', 'superseded']) })
      .optional(),
    progress: z
      .array(
        z.object({
          target: z.string(),
          batch: z.number().int(),
          of: z.number().int(),
          done: z.number().int(),
          total: z.number().int(),
          failed: z.number().int(),
        }),
      )
      .optional(),
  })
  .meta({ description: 'An amendment: its status, plan, approvals and operations (amendctl status --json)' });

export const DecidedSchema = z
  .object({
    amendmentId: z.string(),
    counted: z.literal(true),
    status: z.enum(AMENDMENT_STATUSES),
    reason: z.string().optional(),
    statusUrl: z.string(),
  })
  .meta({ description: 'The decision is recorded: the amendment proceeds, waits for more approvals, or is rejected' });

const Queued = z.object({ amendmentId: z.string(), sequence: z.number().int() });
export const ContractViewSchema = z
  .object({
    contractId: z.string(),
    appliedSequence: z.number().int(),
    lastAmendmentId: z.string().optional(),
    holder: z.string().optional(),
    holding: Queued.extend({ since: z.string().optional() }).optional(),
    waiting: z.array(Queued),
    scheduled: z.array(Queued.extend({ effectiveAt: z.string() })),
    recent: z.array(Queued.extend({ at: z.string() })),
    run: z.number().int(),
    applied: Queued.nullable().meta({ description: 'the last applied amendment, or null before the first' }),
  })
  .meta({
    description: "A contract's line: the sequence applied, who holds its turn, who waits (amendctl contract --json)",
  });

/** Named in the OpenAPI document's components, in this order. */
export const NAMED_SCHEMAS = {
  Problem: ProblemSchema,
  AmendmentRequest: AmendmentRequestSchema,
  CancelRequest: CancelRequestSchema,
  ApproveRequest: ApproveRequestSchema,
  RejectRequest: RejectRequestSchema,
  Decided: DecidedSchema,
  Accepted: AcceptedSchema,
  CancelAccepted: CancelAcceptedSchema,
  WebhookAccepted: WebhookAcceptedSchema,
  Received: ReceivedSchema,
  AmendmentView: AmendmentViewSchema,
  ContractView: ContractViewSchema,
  Health: HealthSchema,
  Readiness: ReadinessSchema,
} as const;

// Compile-time: the fields the views document have the types the client returns.
type Fits<Real, Documented> = Real extends Documented ? true : never;
const _amendmentViewFits: Fits<AmendmentView, z.output<typeof AmendmentViewSchema>> = true;
const _contractViewFits: Fits<
  ContractView & { applied: { amendmentId: string; sequence: number } | null },
  z.output<typeof ContractViewSchema>
> = true;
