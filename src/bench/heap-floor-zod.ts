/**
 * src/bench/heap.ts, scenario `floor+zod`: the floor workflow in a bundle that also evaluates
 * the zod library (no schema built). Less the plain floor: what zod's module evaluation costs
 * each cached workflow (the reusable V8 context re-evaluates every non-shared module per workflow).
 */
import { z } from 'zod';

export { floorWorkflow } from './floor-workflow';

/** Keeps the import (and so zod's evaluation) in the bundle. */
export const zodVersion = typeof z.object;
