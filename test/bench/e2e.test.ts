/**
 * Smoke test of npm run bench:e2e (src/bench/e2e.ts): the bench's own functions, in this
 * process, at tiny sizes, against the servers the harness started. It checks that figures
 * are produced and sane (counts above zero, ratios computed), never timings.
 * The worker-process cases (d, e) fork lib/bench/e2e/worker-proc.js: run `npm run build` first.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCases } from '../../src/bench/e2e';
import type { Figure } from '../../src/bench/e2e/report';
import { table } from '../../src/bench/e2e/report';
import { Bench, type Sizes } from '../../src/bench/e2e/runner';
import { ROOT, type StackEnv } from '../../src/bench/e2e/stack';
import { need } from '../harness/env';

const TINY: Sizes = {
  runs: 2,
  warmup: 0,
  many: 2,
  concurrency: 2,
  users: [3],
  floorSample: 5,
  pending: [2],
  row: 4,
  rowWindow: 2,
};

let dir: string;
let bench: Bench | undefined;
const lines: string[] = [];

function stackEnv(): StackEnv {
  return {
    AMENDCTL_CODEC_KEYS: need('AMENDCTL_CODEC_KEYS'),
    AMENDCTL_TEST_TEMPORAL_ADDRESS: need('AMENDCTL_TEST_TEMPORAL_ADDRESS'),
    AMENDCTL_TEST_SCIM_URL: need('AMENDCTL_TEST_SCIM_URL'),
    AMENDCTL_TEST_SCIM_TOKEN: need('AMENDCTL_TEST_SCIM_TOKEN'),
    AMENDCTL_TEST_PG_HOST: need('AMENDCTL_TEST_PG_HOST'),
    AMENDCTL_TEST_PG_PORT: need('AMENDCTL_TEST_PG_PORT'),
    AMENDCTL_TEST_PG_PASSWORD: need('AMENDCTL_TEST_PG_PASSWORD'),
    workflowBundle: need('AMENDCTL_WORKFLOW_BUNDLE'),
    dir,
  };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'amendctl-bench-test-'));
  bench = await Bench.create(stackEnv(), {
    sizes: TINY,
    deadline: Date.now() + 150_000,
    shared: true,
    dir,
    log: (l) => lines.push(l),
  });
});
afterAll(async () => {
  await bench?.close();
  rmSync(dir, { recursive: true, force: true });
});

const byKey = (key: string): Figure => {
  const f = bench!.figures.find((x) => x.key === key);
  if (!f)
    throw new Error(`no figure ${key}; figures: ${bench!.figures.map((x) => x.key).join(', ')}\n${lines.join('\n')}`);
  return f;
};

/** A figure amendctl produced, with a floor and the ratio between them. */
function sane(key: string): Figure {
  const f = byKey(key);
  if (f.error) throw new Error(`${key}: ${f.error}\n${lines.join('\n')}`);
  expect(f.value).toEqual(expect.any(Number));
  expect(f.value!).toBeGreaterThan(0);
  expect(f.floor!).toBeGreaterThan(0);
  expect(f.ratio).toBeCloseTo(f.value! / f.floor!, 6);
  return f;
}

test('a 3-user baseline twice, amendctl and the floor, and the history events of both (cases a, c)', async () => {
  bench!.opts.deadline = Date.now() + 100_000;
  await runCases(bench!, ['a', 'c']);
  for (const k of ['a.c1.p50', 'a.c1.p99', 'a.c10.throughput', 'a.c10.p50'])
    expect(sane(k).samples ?? 1).toBeGreaterThan(0);
  expect(byKey('a.c1.p50').samples).toBe(2);
  expect(byKey('a.c1.p50').target?.text).toContain('floor');
  const events = sane('c.events.amendment');
  expect(Number.isInteger(events.value)).toBe(true);
  expect(events.floor!).toBeGreaterThan(15 * 3); // 15 no-op activities: scheduled, started, completed each
  expect(events.target?.met).toEqual(expect.any(Boolean));
  sane('c.payload.max');
  const printed = table(bench!.figures);
  expect(printed).toContain('3-user baseline, c=1, p50');
  expect(lines.some((l) => l.startsWith('[a]'))).toBe(true);
}, 150_000);

const built = existsSync(join(ROOT, 'lib', 'bench', 'e2e', 'worker-proc.js'));
(built ? test : test.skip)(
  'a tiny big baseline and two pending amendments, each worker in its own process (cases d, e)',
  async () => {
    bench!.opts.deadline = Date.now() + 100_000;
    await runCases(bench!, ['d', 'e']);
    const wall = byKey('d.3.wall');
    expect(wall.error).toBeUndefined();
    expect(wall.floorNote).toBe('extrapolated');
    sane('d.3.wall');
    sane('d.3.events');
    sane('d.3.rss');
    const rss = sane('e.2.rss');
    expect(rss.value!).toBeGreaterThan(10); // MB: a Node worker is never smaller
    expect(bench!.raw.e).toBeDefined();
  },
  150_000,
);

test('on a shared server the bench terminates what it leaves running (contract workflows, pending amendments)', async () => {
  await bench!.terminateRunning();
  const deadline = Date.now() + 20_000;
  let left = await bench!.leftRunning();
  while (left > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 500));
    left = await bench!.leftRunning();
  }
  expect(left).toBe(0);
}, 60_000);
