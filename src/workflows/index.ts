/** The workflows the worker registers. */
export { amendmentV2 } from './amendment';
export { contractWorkflow } from './contract';
/** The first release's amendment workflow: kept until no amendment started on it runs (src/workflows/v1). */
export { amendmentWorkflow } from './v1/amendment';
