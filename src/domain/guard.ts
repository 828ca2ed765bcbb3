/**
 * The mass-change guard: a plan that would deactivate many of a contract's accounts needs
 * approval, whatever the rules say (Entra quarantines a sync past its deletion threshold, Okta
 * pauses an import that would unassign more than 20% of users). It trips when the plan
 * deactivates more than `maxAccounts` accounts, or more than `maxPercent` of the contract's
 * accounts once that is at least `minAccounts` (so a small contract's suspension is not held
 * up). The reason names the numbers. Pure: workflow-safe.
 */
import type { ApprovalReason, Plan } from './plan';

export interface MassChangeGuard {
  maxAccounts: number;
  maxPercent: number;
  minAccounts: number;
}

export const DEFAULT_MASS_CHANGE_GUARD: MassChangeGuard = { maxAccounts: 100, maxPercent: 20, minAccounts: 10 };

/** The rule id its approval reason carries. */
export const MASS_CHANGE_RULE = 'mass-change-guard';

/** Why the plan needs approval by the guard, or undefined. */
export function massChangeReason(
  plan: Pick<Plan, 'operations' | 'before'>,
  g: MassChangeGuard,
): ApprovalReason | undefined {
  const deactivated = new Set(plan.operations.filter((o) => o.action === 'deactivateAccount').map((o) => o.subject))
    .size;
  if (deactivated === 0) return undefined;
  const accounts = Math.max(plan.before?.namedUsers.length ?? 0, deactivated);
  const percent = (100 * deactivated) / accounts;
  if (deactivated <= g.maxAccounts && !(deactivated >= g.minAccounts && percent > g.maxPercent)) return undefined;
  return {
    ruleId: MASS_CHANGE_RULE,
    message: `deactivates ${deactivated} of the contract's ${accounts} accounts (${Math.round(percent)}%): more than the mass-change guard allows without approval (${g.maxAccounts} accounts, or ${g.maxPercent}% of ${g.minAccounts} or more)`,
  };
}

/** The plan, needing approval when the guard trips (an invalid plan is left as it is: it changes nothing). */
export function guarded(plan: Plan, g: MassChangeGuard): Plan {
  const reason = plan.violations.length > 0 ? undefined : massChangeReason(plan, g);
  return reason ? { ...plan, approval: { required: true, reasons: [...plan.approval.reasons, reason] } } : plan;
}
