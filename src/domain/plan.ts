/**
 * The vocabulary shared by the domain core, the workflows and the connectors:
 * Change (what the amendment changes in the contract), Operation (one idempotent
 * step on one Target), Plan (the ordered operations and the approval they need).
 * Pure types and schemas: safe to import from workflow code.
 */
import { z } from 'zod';
import type { Contract } from './contract';
import type { JsonObject, JsonValue } from './json';

/** The clauses of the contract model; `custom` holds the rest. */
export type ClauseName =
  'customer' | 'status' | 'tier' | 'seats' | 'modules' | 'namedUsers' | 'term' | 'region' | 'custom';

export interface ChangeSource {
  /** The clause reference in the contract text (for `clauses` input). */
  ref: string;
  /** The exact text the value was read from. */
  span: string;
}

/** One field- or clause-level change between two contract versions. */
export interface Change {
  kind: 'added' | 'removed' | 'modified';
  clause: ClauseName;
  /** Dotted path with keyed collections in brackets: `seats`, `modules[api]`, `namedUsers[ann@x.com].role`, `custom.sla`. */
  path: string;
  /** The collection key (`modules` item or named user's lower-cased email), when the change is about one item. */
  key?: string;
  before?: JsonValue;
  after?: JsonValue;
  source?: ChangeSource;
}

export const ACTIONS = [
  'ensureAccount',
  'updateAttributes',
  'deactivateAccount',
  'reactivateAccount',
  'joinGroup',
  'leaveGroup',
  'grantRole',
  'revokeRole',
] as const;
export const ActionSchema = z.enum(ACTIONS);
export type Action = z.infer<typeof ActionSchema>;

export const RiskSchema = z.enum(['low', 'medium', 'high']);
export type Risk = z.infer<typeof RiskSchema>;

/**
 * One step on one target. Every action is idempotent ("ensure" semantics): applying it
 * to a target already in that state changes nothing and succeeds.
 *
 * Params by action:
 * - ensureAccount:     { attributes: { displayName?, email?, externalId?, ... } }  (account exists and is active)
 * - updateAttributes:  { attributes: { ... } }
 * - deactivateAccount, reactivateAccount: {}
 * - joinGroup, leaveGroup:  { group }
 * - grantRole, revokeRole:  { role }
 */
export const OperationSchema = z.object({
  /** Stable and unique within a plan: `${target}:${action}:${subject}[:${group|role}]`. */
  id: z.string().min(1),
  target: z.string().min(1),
  action: ActionSchema,
  /** The account the operation is about (reference policy: the lower-cased email). */
  subject: z.string().min(1),
  params: z.record(z.string(), z.json()),
  /** The inverse: what compensation runs, as the planner knows it. Connectors record the prior state they observe, so compensation is exact. */
  inverse: z.object({
    action: ActionSchema.or(z.literal('removeAccount')).or(z.literal('restoreAttributes')),
    params: z.record(z.string(), z.json()),
  }),
  risk: RiskSchema,
  /** The rules that produced it. */
  ruleIds: z.array(z.string()),
  /** What a person reads: `warehouse: grant app_admin to ann@acme.com`. */
  description: z.string(),
});
export type Operation = z.infer<typeof OperationSchema>;

export interface ApprovalReason {
  ruleId: string;
  message: string;
  /** The change paths that made the rule fire (added for the dry run's "why"). */
  changes?: string[];
  /** The contract-text clause refs of those changes, when the amendment came as clauses. */
  refs?: string[];
}

export interface Violation {
  ruleId: string;
  message: string;
}

export interface Plan {
  amendmentId: string;
  contractId: string;
  sequence: number;
  /** sha256 of the ruleset's canonical content: which policy decided. */
  rulesetHash: string;
  changes: Change[];
  operations: Operation[];
  approval: { required: boolean; reasons: ApprovalReason[] };
  /** Non-empty means the amendment is invalid and nothing may change. */
  violations: Violation[];
  /** The applied contract before the amendment (null for a baseline) and the contract it produces. */
  before: Contract | null;
  after: Contract;
}

export type OperationParams = JsonObject;

/** What a connector reports for one applied operation. */
export interface ApplyResult {
  /** `unchanged`: the target was already in the asked state (a retry, or a no-op). */
  outcome: 'applied' | 'unchanged';
  /**
   * What the connector observed before it changed anything, enough for an exact
   * compensation. JSON, never a secret.
   */
  prior: JsonValue;
  /** A short note for the audit trail ("created user 2819c223", "already a member"). */
  detail?: string;
}

export interface CompensateResult {
  outcome: 'compensated' | 'unchanged';
  detail?: string;
}
