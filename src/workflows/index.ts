/** The workflows the worker registers. */
export { amendmentWorkflow } from './amendment';
export { contractWorkflow } from './contract';
