/** The workflows the worker registers. */
/** amendmentV3 is what new amendments start; amendmentV2 stays registered for the runs started on it. */
export { amendmentV2, amendmentV3 } from './amendment';
export { contractWorkflow } from './contract';
/** The first release's amendment workflow: kept until no amendment started on it runs (src/workflows/v1). */
export { amendmentWorkflow } from './v1/amendment';
/** The keeper of an amendment's turn: tells the contract when the amendment's run has closed, however it closed. */
export { turnKeeper } from './keeper';
/** Drift reconciliation of one contract or every contract (issue 13), run by a Temporal Schedule. */
export { reconcileWorkflow } from './reconcile';
