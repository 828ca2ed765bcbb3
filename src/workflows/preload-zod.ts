/**
 * Preloaded into the workflow bundle (src/worker/bundle.ts, bundleWorkflowCode's preloadModules):
 * zod is then evaluated once per workflow thread instead of once per cached workflow, which is
 * most of a cached amendment's memory (measured with src/bench/heap.ts). Two things make a bare `preloadModules: ['zod']` fail:
 *  - zod's package.json says "sideEffects": false, so webpack drops the preload's unused
 *    require (it becomes `0;`) and nothing is preloaded; a module of ours that uses zod is kept;
 *  - the SDK deep-freezes every preloaded module, and zod finishes its set-up lazily, on the
 *    first schema of each kind: the default locale and memoizer go into its global config, and
 *    each schema class installs its prototype members. Frozen, those throw ("object is not
 *    extensible") in the first workflow. So this module builds one schema of every kind the
 *    workflows use before the freeze. A kind missing here fails every workflow at once (the
 *    schemas are built when the workflow's modules load), never one at random.
 * Workflow schemas themselves stay per workflow (their modules are not preloaded).
 */
import { z } from 'zod';

const warm = z
  .object({
    s: z.string().trim().toLowerCase().min(1).max(10).regex(/^x/, 'x'),
    n: z.number().int().min(0),
    e: z.enum(['a', 'b']),
    b: z.boolean(),
    a: z.array(z.string().min(1)).default([]),
    r: z.record(z.string(), z.json()).default({}),
    o: z.object({ x: z.string() }).strict().optional(),
    d: z.iso.datetime({ offset: true }).optional(),
    u: z.union([
      z.number().int().positive(),
      z
        .string()
        .trim()
        .transform((t) => t.length),
    ]),
    l: z.enum(['x']).or(z.literal('y')),
  })
  .strict()
  .superRefine((_v, _ctx) => undefined);

/** Parsed once each way (valid, invalid), so the lazy parts of parsing run before the freeze too. */
export const zodPreloaded = [
  warm.safeParse({ s: 'x', n: 1, e: 'a', b: true, u: 1, l: 'x', d: '2025-01-01T00:00:00Z' }).success,
  warm.safeParse({ s: '' }).success,
];
