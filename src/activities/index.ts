/**
 * Activities: the worker side of the amendment workflow. Connectors do the I/O; this
 * layer turns their classified errors into Temporal failures (transient: retried with
 * backoff, Retry-After honoured; permanent: non-retryable ApplicationFailure with a type).
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { Operation } from '../domain/plan';
import { type ConnectorRegistry } from '../connectors/registry';
import { type FailureType, PermanentTargetError, TransientTargetError } from '../connectors/types';
import type {
  AmendmentActivities,
  ApprovalPolicy,
  ContractWorkflowState,
  OrderingPolicy,
  PlanResult,
} from '../workflows/definitions';
import { contractWorkflowId, DEFAULT_GAP_DEADLINE_SECONDS, enqueueSignal } from '../workflows/definitions';
import type { OperationStore } from '../store/operations';
import type { ShareStore } from '../store/shares';
import type { RulesProvider } from '../worker/rules';
import type { ApprovalVerifier } from '../approvals/token';
import { createApprovalActivities } from './approvals';
import { NO_NOTIFICATIONS, type NotificationsConfig } from '../notify/config';
import { notifyActivities } from './notify';
import { createAuditActivities } from './audit';
import { createDriftActivities } from './drift';
import type { ReconcileActivities } from '../workflows/reconcile-definitions';
import { createProvisioningActivities } from './provisioning';
import { createReclaimActivities } from './reclaim';

export interface ActivityDeps {
  registry: ConnectorRegistry;
  rules: RulesProvider;
  approvalPolicy: ApprovalPolicy;
  /** Default: a gap may stay unfilled for 7 days. */
  orderingPolicy?: OrderingPolicy;
  client: Client;
  taskQueue: string;
  /** The operation store (src/store/operations.ts), opened on first use. */
  store: () => OperationStore;
  /** Which contracts share each account (src/store/shares.ts), opened on first use. */
  shares: () => ShareStore;
  /** The keys approval proofs must be signed with (AMENDCTL_APPROVAL_KEYS); none: no approval counts. */
  trust?: ApprovalVerifier;
  /** Where approval notices go (AMENDCTL_NOTIFICATIONS, src/notify/config.ts); default none. */
  notifications?: NotificationsConfig;
}

export function createActivities(deps: ActivityDeps): AmendmentActivities & ReconcileActivities {
  return {
    // Drift and reconciliation (issue 13): read-only checks; repairs run as the batches below.
    ...createDriftActivities({
      registry: deps.registry,
      ruleset: () => {
        if (!deps.rules.current)
          throw ApplicationFailure.nonRetryable(
            'this worker plans without a ruleset it can show: drift cannot be checked',
            'DriftUnsupported',
          );
        return deps.rules.current();
      },
      client: deps.client,
      shares: deps.shares,
      store: deps.store,
      approvalPolicy: deps.approvalPolicy,
      ...(deps.rules.guard ? { guard: deps.rules.guard } : {}),
      taskQueue: deps.taskQueue,
    }),
    ...createAuditActivities(deps.store), // the durable audit log (issue 6)
    ...createProvisioningActivities(deps), // amendmentV2: the plan in the operation store, batches per target
    ...createReclaimActivities(deps), // the contract takes a turn back from a holder that ended without releasing it
    ...createApprovalActivities(deps.trust), // approval proofs verified with the trusted keys (issue 12)
    ...notifyActivities(deps.notifications ?? NO_NOTIFICATIONS), // approval notices to the configured webhooks (issue 12)
    async planAmendment({ amendment, applied }): Promise<PlanResult> {
      const plan = deps.rules.plan(amendment, applied);
      for (const op of plan.operations) {
        if (!deps.registry.has(op.target)) {
          plan.violations.push({
            ruleId: op.ruleIds[0] ?? '',
            message: `the plan names target "${op.target}", which this worker has no configuration for (configured: ${deps.registry.names().join(', ') || 'none'})`,
          });
          break;
        }
      }
      return { plan, approvalPolicy: deps.approvalPolicy };
    },

    async applyOperation(op: Operation) {
      const connector = connectorFor(deps.registry, op.target);
      const attempt = Context.current().info.attempt;
      try {
        return { ...(await connector.apply(op)), attempt };
      } catch (err) {
        throw toFailure(err, op.description);
      }
    },

    async compensateOperation({ op, result }) {
      const connector = connectorFor(deps.registry, op.target);
      try {
        return await connector.compensate(op, result);
      } catch (err) {
        throw toFailure(err, `compensation of ${op.description}`);
      }
    },

    async enqueueAmendment({ contractId, ...request }) {
      const initial: ContractWorkflowState = { contractId, applied: null, waiting: [], holder: null, recent: [] };
      await deps.client.workflow.signalWithStart('contractWorkflow', {
        workflowId: contractWorkflowId(contractId),
        taskQueue: deps.taskQueue,
        args: [initial],
        signal: enqueueSignal,
        signalArgs: [request],
        staticSummary: `Contract ${contractId}: applies its amendments in sequence order`,
      });
      return deps.orderingPolicy ?? { gapDeadlineSeconds: DEFAULT_GAP_DEADLINE_SECONDS };
    },

    async orderingPolicy() {
      return deps.orderingPolicy ?? { gapDeadlineSeconds: DEFAULT_GAP_DEADLINE_SECONDS };
    },
  };
}

function connectorFor(registry: ConnectorRegistry, target: string) {
  const c = registry.get(target);
  if (!c)
    throw ApplicationFailure.nonRetryable(
      `no target "${target}" is configured in this worker`,
      'TargetMisconfigured' satisfies FailureType,
    );
  return c;
}

/** Classified connector errors to Temporal failures; anything unclassified is retried (it may be transient). */
export function toFailure(err: unknown, what: string): ApplicationFailure {
  if (err instanceof PermanentTargetError) {
    return ApplicationFailure.create({ message: err.message, type: err.type, nonRetryable: true });
  }
  if (err instanceof TransientTargetError) {
    return ApplicationFailure.create({
      message: err.message,
      type: err.type,
      nonRetryable: false,
      ...(err.retryAfterMs !== undefined ? { nextRetryDelay: Math.max(1, Math.round(err.retryAfterMs)) } : {}),
    });
  }
  if (err instanceof ApplicationFailure) return err;
  const e = err as Error;
  return ApplicationFailure.create({
    message: `${what}: ${e?.message ?? String(err)}`,
    type: 'UnclassifiedTargetError' satisfies FailureType,
    nonRetryable: false,
  });
}
