/**
 * The workflows the worker registers.
 *
 * Each type's module is loaded when a workflow of that type first runs (a webpack require,
 * synchronous and deterministic): the SDK evaluates the bundle's modules once per workflow (its
 * reusable V8 context gives each workflow its own module cache), so a turn keeper or a contract
 * workflow would otherwise build the amendment's and reconciliation's modules and schemas too
 * (about 9 ms of evaluation each, against under 1 ms for a keeper and 3 ms for a contract).
 */
import type * as AmendmentModule from './amendment';
import type * as ContractModule from './contract';
import type * as KeeperModule from './keeper';
import type * as ReconcileModule from './reconcile';
import type * as V1Module from './v1/amendment';

/* eslint-disable @typescript-eslint/no-require-imports -- loaded on first use, see above; local modules only */
const amendment = (): typeof AmendmentModule => require('./amendment');
const contract = (): typeof ContractModule => require('./contract');
const keeper = (): typeof KeeperModule => require('./keeper');
const reconcile = (): typeof ReconcileModule => require('./reconcile');
const v1 = (): typeof V1Module => require('./v1/amendment');
/* eslint-enable @typescript-eslint/no-require-imports */

type Input<F extends (input: never) => unknown> = Parameters<F>[0];

/** What new amendments start. */
export function amendmentV3(
  input: Input<typeof AmendmentModule.amendmentV3>,
): ReturnType<typeof AmendmentModule.amendmentV3> {
  return amendment().amendmentV3(input);
}

/** The previous type, registered for the runs started on it. */
export function amendmentV2(
  input: Input<typeof AmendmentModule.amendmentV2>,
): ReturnType<typeof AmendmentModule.amendmentV2> {
  return amendment().amendmentV2(input);
}

/** The first release's amendment workflow: kept until no amendment started on it runs (src/workflows/v1). */
export function amendmentWorkflow(
  input: Input<typeof V1Module.amendmentWorkflow>,
): ReturnType<typeof V1Module.amendmentWorkflow> {
  return v1().amendmentWorkflow(input);
}

/** Applies a contract's amendments in sequence order. */
export function contractWorkflow(
  input: Input<typeof ContractModule.contractWorkflow>,
): ReturnType<typeof ContractModule.contractWorkflow> {
  return contract().contractWorkflow(input);
}

/** The keeper of an amendment's turn: tells the contract when the amendment's run has closed, however it closed. */
export function turnKeeper(input: Input<typeof KeeperModule.turnKeeper>): ReturnType<typeof KeeperModule.turnKeeper> {
  return keeper().turnKeeper(input);
}

/** Drift reconciliation of one contract or every contract (issue 13), run by a Temporal Schedule. */
export function reconcileWorkflow(
  input?: Input<typeof ReconcileModule.reconcileWorkflow>,
): ReturnType<typeof ReconcileModule.reconcileWorkflow> {
  return reconcile().reconcileWorkflow(input);
}
