/**
 * Applied state bookkeeping for tools (dry runs, rule cases, the benchmark): what the
 * applied state becomes once a plan has been carried out. Pure: no I/O.
 */
import type { Amendment } from './amendment';
import type { Plan } from './plan';
import { type AppliedState, planAmendment } from './planner';
import type { Ruleset } from './rules';

/** The applied state after `plan` completed; an invalid plan changes nothing (and consumes no sequence). */
export function appliedAfter(plan: Plan, applied: AppliedState | null): AppliedState | null {
  if (plan.violations.length > 0) return applied;
  return { contract: plan.after, sequence: plan.sequence, amendmentId: plan.amendmentId, previous: plan.before };
}

/** Plan and apply amendments in the given order, as if each completed. */
export function replay(amendments: readonly Amendment[], ruleset: Ruleset, start: AppliedState | null = null): { state: AppliedState | null; plans: Plan[] } {
  let state = start;
  const plans: Plan[] = [];
  for (const a of amendments) {
    const plan = planAmendment(a, state, ruleset);
    plans.push(plan);
    state = appliedAfter(plan, state);
  }
  return { state, plans };
}
