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

/** The workflow `name` of the module `load()` returns, loaded when it first runs; the same signature and name. */
function onFirstRun<M, K extends keyof M & string>(load: () => M, name: K): M[K] {
  const run = (...args: unknown[]): unknown => (load()[name] as (...a: unknown[]) => unknown)(...args);
  return Object.defineProperty(run, 'name', { value: name }) as M[K];
}

/* eslint-disable @typescript-eslint/no-require-imports -- loaded on first use, see above; local modules only */
const amendment = (): typeof AmendmentModule => require('./amendment');

/** What new amendments start. */
export const amendmentV4 = onFirstRun(amendment, 'amendmentV4');
/** The previous types, registered for the runs started on them. */
export const amendmentV3 = onFirstRun(amendment, 'amendmentV3');
export const amendmentV2 = onFirstRun(amendment, 'amendmentV2');
/** The first release's amendment workflow: kept until no amendment started on it runs (src/workflows/v1). */
export const amendmentWorkflow = onFirstRun((): typeof V1Module => require('./v1/amendment'), 'amendmentWorkflow');
/** Applies a contract's amendments in sequence order. */
export const contractWorkflow = onFirstRun((): typeof ContractModule => require('./contract'), 'contractWorkflow');
/** The keeper of an amendment's turn: tells the contract when the amendment's run has closed, however it closed. */
export const turnKeeper = onFirstRun((): typeof KeeperModule => require('./keeper'), 'turnKeeper');
/** Drift reconciliation of one contract or every contract (issue 13), run by a Temporal Schedule. */
export const reconcileWorkflow = onFirstRun((): typeof ReconcileModule => require('./reconcile'), 'reconcileWorkflow');
/* eslint-enable @typescript-eslint/no-require-imports */
