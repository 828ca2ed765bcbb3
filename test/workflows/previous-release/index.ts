/**
 * The previous release's workflows, as this tree keeps them: the frozen `amendmentWorkflow`
 * (src/workflows/v1) and the contract workflow, and nothing of amendmentV2. The upgrade test
 * (test/workflows/upgrade.test.ts) bundles the previous release's own sources from git
 * instead, and falls back to this entry only where that commit is not in the checkout.
 */
export { amendmentWorkflow } from '../../../src/workflows/v1/amendment';
export { contractWorkflow } from '../../../src/workflows/contract';
