/**
 * Replays captured histories (test/replay/histories, see capture.histories.ts) against the
 * current workflow code: each one with the SDK's replay API in this process, on a bundle built
 * from src/workflows for this file (never lib/, which may be older than the code), and all of
 * them through `amendctl replay` (a process of its own, as an operator runs it before a
 * deploy) on that same bundle. A change that would break a running workflow fails here, and
 * must go through `patched()` or a new workflow type.
 *
 *   histories/v1: the first release's `amendmentWorkflow` (and its contract workflow), as that
 *                 release captured them: amendments started on it finish on that code.
 *   histories/v2: `amendmentV2`, the type new amendments start, and the contract workflow,
 *                 from before the turn keeper (they replay through its `patched()`).
 *   histories/v2.1: the same with the turn keeper: a Temporal cancellation, the keeper's own
 *                 history, a contract that took a terminated holder's turn back.
 *   histories/v3: `amendmentV3` (amendmentV2 with its patches settled, the keeper started
 *                 first), the contract workflow and the keeper, on every path of v2.1.
 *   histories/v4: `amendmentV4`, the type new amendments start (the keeper started late, the
 *                 contract checking on its holder until then), on every path of v3.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Worker } from '@temporalio/worker';
import { workflowSource } from '../../src/worker';
import { buildWorkflowBundle } from '../../src/worker/bundle';
import { ROOT, runDir } from '../harness/proc';

const DIR = join(__dirname, 'histories');
const PATHS = [
  'approved',
  'cancelled',
  'completed',
  'contract',
  'queued-then-applied',
  'rejected',
  'rolled-back',
  'rollback',
  'scheduled',
];
const SETS = {
  v1: { type: 'amendmentWorkflow', paths: PATHS },
  v2: { type: 'amendmentV2', paths: [...PATHS, 'batches', 'batches-rolled-back'] },
  'v2.1': {
    type: 'amendmentV2',
    paths: [...PATHS, 'batches', 'batches-rolled-back', 'temporal-cancelled', 'keeper', 'contract-reclaimed'],
  },
  v3: {
    type: 'amendmentV3',
    paths: [...PATHS, 'batches', 'batches-rolled-back', 'temporal-cancelled', 'keeper', 'contract-reclaimed'],
  },
  v4: {
    type: 'amendmentV4',
    paths: [...PATHS, 'batches', 'batches-rolled-back', 'temporal-cancelled', 'keeper', 'contract-reclaimed'],
  },
} as const;
type Release = keyof typeof SETS;

const files = (set: Release): string[] =>
  readdirSync(join(DIR, set))
    .filter((f) => f.endsWith('.json'))
    .sort();
const all = (Object.keys(SETS) as Release[]).flatMap((set) => files(set).map((f) => join(DIR, set, f)));

interface History {
  events: Array<{
    workflowExecutionStartedEventAttributes?: { workflowType?: { name: string } };
    activityTaskScheduledEventAttributes?: { activityType?: { name: string } };
  }>;
}
const read = (file: string): History => JSON.parse(readFileSync(file, 'utf8')) as History;
const typeOf = (h: History): string | undefined =>
  h.events[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name;

/** The workflow code of this checkout, bundled as the worker bundles it (src/worker/bundle.ts). */
let bundle: string;
beforeAll(async () => {
  const dir = runDir('replay');
  mkdirSync(dir, { recursive: true });
  bundle = join(dir, 'workflow-bundle.js');
  await buildWorkflowBundle(bundle);
}, 180_000);

/** One history through the SDK's replay API, with the worker's own workflow source: resolves, or throws what diverged. */
const replayHere = (file: string, h: unknown = JSON.parse(readFileSync(file, 'utf8'))): Promise<void> =>
  Worker.runReplayHistory(
    { ...workflowSource({ AMENDCTL_WORKFLOW_BUNDLE: bundle }), replayName: relative(DIR, file) },
    h,
    `replay-${relative(DIR, file)}`,
  );

/** `amendctl replay` on the current code (the bundle above, not lib/'s). */
function replay(paths: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(ROOT, 'bin', 'amendctl'), 'replay', ...paths],
      { maxBuffer: 16 << 20, env: { ...process.env, AMENDCTL_WORKFLOW_BUNDLE: bundle, AMENDCTL_WORKFLOW_SOURCES: '' } },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

function tampered(name: string, h: History): string {
  const dir = runDir('replay');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, name);
  writeFileSync(file, JSON.stringify(h));
  return file;
}

test.each(Object.keys(SETS) as Release[])(
  'there are captured %s histories of every path, of their own workflow type',
  (set) => {
    expect(files(set)).toEqual(expect.arrayContaining(SETS[set].paths.map((p) => `${p}.json`)));
    const expected = (f: string): string =>
      f.startsWith('contract') ? 'contractWorkflow' : f.startsWith('keeper') ? 'turnKeeper' : SETS[set].type;
    for (const f of files(set)) expect([f, typeOf(read(join(DIR, set, f)))]).toEqual([f, expected(f)]);
  },
);

test('the histories folder is not empty: at least one history per path of every set', () => {
  expect(all.length).toBeGreaterThanOrEqual(Object.values(SETS).reduce((n, s) => n + s.paths.length, 0));
});

// One test per file, so a divergence names its history; an empty folder fails above and here (jest refuses an empty table).
test.each(all.map((f) => [relative(DIR, f), f]))(
  '%s replays against the current workflow code (SDK replay API)',
  async (_name, file) => {
    await replayHere(file);
  },
  60_000,
);

test.each(Object.keys(SETS) as Release[])(
  'a %s history the code does not produce fails the SDK replay with a nondeterminism error',
  async (set) => {
    const h = read(join(DIR, set, 'completed.json'));
    h.events.find(
      (e) => e.activityTaskScheduledEventAttributes,
    )!.activityTaskScheduledEventAttributes!.activityType!.name = 'somethingElse';
    await expect(replayHere(join(DIR, set, 'completed.json'), h)).rejects.toMatchObject({
      name: 'DeterminismViolationError',
    });
  },
  60_000,
);

test('every captured history, of both types, replays through `amendctl replay`, which names each one', async () => {
  const r = await replay(all);
  expect(r.stderr).toBe('');
  for (const file of all) expect(r.stdout).toContain(`✓ ${file}`);
  expect(r.stdout).toContain(`${all.length} replayed, 0 diverged`);
  expect(r.code).toBe(0);
}, 180_000);

test.each(Object.keys(SETS) as Release[])(
  'a %s history the code does not produce is named as diverging',
  async (set) => {
    // The completed run with its first activity renamed: the code schedules another one.
    const h = read(join(DIR, set, 'completed.json'));
    const scheduled = h.events.find((e) => e.activityTaskScheduledEventAttributes)!;
    scheduled.activityTaskScheduledEventAttributes!.activityType!.name = 'somethingElse';
    const r = await replay([tampered(`tampered-${set}.json`, h)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`tampered-${set}\\.json: .*nondeterminism`, 'i'));
    expect(r.stdout).toContain('0 replayed, 1 diverged');
  },
  120_000,
);

// Why the older types stay registered: the newer code cannot continue their runs (amendmentV2's
// cannot the first release's; amendmentV3 never asks the patches amendmentV2's runs recorded;
// amendmentV4 starts no keeper before its turn, where amendmentV3's runs started one).
test.each([
  ['v1', 'approved.json', 'amendmentV2'],
  ['v2.1', 'completed.json', 'amendmentV3'],
  ['v3', 'completed.json', 'amendmentV4'],
])(
  '%s histories need their own type: %s run as %s diverges',
  async (set, file, as) => {
    const h = read(join(DIR, set, file));
    h.events[0]!.workflowExecutionStartedEventAttributes!.workflowType!.name = as;
    const name = `${set}-as-${as}.json`;
    const r = await replay([tampered(name, h)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`${name.replace(/\./g, '\\.')}: .*nondeterminism`, 'i'));
    expect(r.stdout).toContain('0 replayed, 1 diverged');
  },
  120_000,
);
