/**
 * src/bench/heap.ts, scenario `floor+schemas`: the floor workflow in a bundle that also evaluates
 * the modules the amendment workflow takes its zod schemas from (src/domain/amendment.ts with
 * src/domain/contract.ts, src/workflows/definitions.ts). Less `floor+zod`: what building those
 * schemas costs each cached workflow; the amendment scenario less this: the workflow's own state.
 */
import { AmendmentSchema } from '../domain/amendment';
import { ApproveSchema, CancelSchema, RejectSchema } from '../workflows/definitions';

export { floorWorkflow } from './floor-workflow';

/** Keeps the imports (and so the schema modules' evaluation) in the bundle. */
export const schemaNames = [AmendmentSchema, ApproveSchema, RejectSchema, CancelSchema].map((s) => typeof s.safeParse);
