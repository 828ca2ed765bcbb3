/**
 * The bench's cases (issue 9, point 8). Each measures amendctl and the bare-Temporal floor
 * in the same run, on the same server, and adds figures with their ratio to the floor.
 *
 *   a  3-user baseline: latency at concurrency 1 (p50, p99); throughput and p50 at concurrency 10
 *   b  1-user change (5 operations): latency p50, p99
 *   c  history events of a 3-user baseline (the amendment workflow, the contract workflow)
 *   d  big baselines: wall time, history events, largest payload, worker RSS peak; the floor
 *      extrapolated from a measured sample (no-op cost per activity x operations per target)
 *   e  amendments pending approval: worker RSS (own process), vs as many bare workflows waiting on a signal
 *   f  amendments in a row on one contract: p50 of the first and last window, last/first
 */
import { AmendctlClient, contractWorkflowId } from '../../client';
import type { FloorLane } from '../floor-workflows';
import { lanesText } from './docs';
import { historyStats, MB, p50, p99, type HistoryStats, sleep, type Rss, treeStats } from './measure';
import { figure, target, type CaseId } from './report';
import type { AmendmentRun, Bench, ChildWorker } from './runner';

const round = (v: number | null): number | null => (v === null ? null : Math.round(v));
const completed = (runs: AmendmentRun[]): number[] => runs.filter((r) => r.status === 'completed').map((r) => r.ms);
const firstError = (runs: AmendmentRun[]): string | undefined => runs.find((r) => r.error)?.error;
const errorsNote = (runs: AmendmentRun[]): string | undefined => {
  const bad = runs.filter((r) => r.status !== 'completed');
  return bad.length === 0
    ? undefined
    : `${bad.length} of ${runs.length} did not complete: ${bad[0]!.error ?? bad[0]!.status}`;
};

/** A latency figure: error only when nothing completed. */
function latency(
  bench: Bench,
  c: CaseId,
  key: string,
  label: string,
  floorMs: number[],
  runs: AmendmentRun[],
  q: (v: number[]) => number | null,
  tgt?: (value: number | null, ratio: number | null) => ReturnType<typeof target>,
) {
  const value = round(q(completed(runs)));
  const floor = round(q(floorMs));
  const f = figure({
    case: c,
    key,
    label,
    unit: 'ms',
    floor,
    value,
    samples: completed(runs).length,
    ...(value === null ? { error: firstError(runs) ?? 'no run completed' } : {}),
    ...(errorsNote(runs) ? { note: errorsNote(runs) } : {}),
  });
  if (tgt) f.target = tgt(f.value, f.ratio);
  bench.add(f);
  return f;
}

async function warmUp(bench: Bench, tag: string, run: (i: number) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < bench.sizes.warmup && !bench.outOfTime(); i++) await run(i);
  bench.progress(tag, bench.sizes.warmup, bench.sizes.warmup, 'warm-up done');
}

// ---- (a) ----

export async function caseA(bench: Bench): Promise<void> {
  const { amendctl, floorTq } = await bench.inProcess();
  const { docs, sizes } = bench;
  const { lanes, operations } = docs.plan(docs.baseline(docs.customer('ap', 0), 3));
  bench.log(
    `[a] 3-user baseline (${operations} operations: ${lanesText(lanes)}): ${sizes.runs} runs at concurrency 1 (alternating), then ${sizes.many} at concurrency ${sizes.concurrency} in rounds floor, amendctl, amendctl, floor, each side`,
  );
  await warmUp(bench, 'a warm-up', async (i) => {
    await bench.floor(floorTq, 'floorOpsWorkflow', `floor-aw-${docs.tag}-${i}`, { lanes });
    await bench.amendment(amendctl, docs.baseline(docs.customer('aw', i), 3));
  });

  const floor1: number[] = [];
  const runs1: AmendmentRun[] = [];
  for (let i = 0; i < sizes.runs && !bench.outOfTime(); i++) {
    floor1.push((await bench.floor(floorTq, 'floorOpsWorkflow', `floor-a1-${docs.tag}-${i}`, { lanes })).ms);
    runs1.push(await bench.amendment(amendctl, docs.baseline(docs.customer('a', i), 3)));
    bench.progress(
      'a c=1',
      i + 1,
      sizes.runs,
      `floor ${Math.round(floor1[i]!)} ms, amendctl ${Math.round(runs1[i]!.ms)} ms ${runs1[i]!.status}`,
    );
  }
  latency(bench, 'a', 'a.c1.p50', '3-user baseline, c=1, p50', floor1, runs1, p50, (_v, r) =>
    target('<= 1.0x floor', r === null ? null : r <= 1.0),
  );
  latency(bench, 'a', 'a.c1.p99', '3-user baseline, c=1, p99', floor1, runs1, p99, (v) =>
    target('< 1,000 ms', v === null ? null : v < 1000),
  );

  const c = sizes.concurrency;
  // Four rounds, floor, amendctl, amendctl, floor (ABBA): on this noisy machine each side then
  // sees the same conditions, a drift in the machine's speed counting for both alike. Each
  // side's throughput is its completions over the wall time of its own two rounds.
  const half = Math.ceil(sizes.many / 2);
  const round = <R>(r: 0 | 1, label: string, work: (i: number) => Promise<R>) =>
    bench.many(r === 0 ? half : sizes.many - half, c, (i) => work(r * half + i), `a c=${c} ${label}`);
  const floorRound = (r: 0 | 1) =>
    round(r, `floor, round ${r === 0 ? 1 : 4} of 4`, async (i) => {
      return (await bench.floor(floorTq, 'floorOpsWorkflow', `floor-a10-${docs.tag}-${i}`, { lanes })).ms;
    });
  const amendctlRound = (r: 0 | 1) =>
    round(r, `amendctl, round ${r === 0 ? 2 : 3} of 4`, (i) =>
      bench.amendment(amendctl, docs.baseline(docs.customer('c', i), 3)),
    );
  const rounds = [await floorRound(0), await amendctlRound(0), await amendctlRound(1), await floorRound(1)] as const;
  const fl = { wallMs: rounds[0].wallMs + rounds[3].wallMs, results: [...rounds[0].results, ...rounds[3].results] };
  const am = { wallMs: rounds[1].wallMs + rounds[2].wallMs, results: [...rounds[1].results, ...rounds[2].results] };
  const floorTput = (fl.results.length / fl.wallMs) * 1000;
  const amTput = (completed(am.results).length / am.wallMs) * 1000;
  const tput = figure({
    case: 'a',
    key: 'a.c10.throughput',
    label: `3-user baselines, c=${c}, throughput`,
    unit: '/s',
    floor: floorTput,
    value: am.results.length ? amTput : null,
    samples: am.results.length,
    ...(errorsNote(am.results) ? { note: errorsNote(am.results) } : {}),
  });
  tput.target = target('>= 0.8x floor', tput.ratio === null ? null : tput.ratio >= 0.8);
  bench.add(tput);
  latency(bench, 'a', 'a.c10.p50', `3-user baselines, c=${c}, p50`, fl.results, am.results, p50);
  bench.raw.a = {
    lanes,
    c1: { floorMs: floor1, amendctl: runs1.map(brief) },
    c10: {
      concurrency: c,
      rounds: rounds.map((r, i) => ({
        side: i === 0 || i === 3 ? 'floor' : 'amendctl',
        n: r.results.length,
        wallMs: Math.round(r.wallMs),
      })),
      floorWallMs: fl.wallMs,
      floorMs: fl.results,
      amendctlWallMs: am.wallMs,
      amendctl: am.results.map(brief),
    },
  };
}

const brief = (r: AmendmentRun) => ({
  amendmentId: r.amendmentId,
  ms: Math.round(r.ms),
  status: r.status,
  ...(r.error ? { error: r.error } : {}),
});

// ---- (b) ----

export async function caseB(bench: Bench): Promise<void> {
  const { amendctl, floorTq } = await bench.inProcess();
  const { docs, sizes } = bench;
  const total = sizes.runs + sizes.warmup;
  const customers = Array.from({ length: total }, (_, i) => docs.customer('b', i));
  const base = docs.plan(docs.baseline(customers[0]!, 1, ['member']));
  const { lanes, operations } = docs.plan(docs.addUser(customers[0]!, 2, 'u2'), base.applied);
  bench.log(
    `[b] 1-user change (${operations} operations: ${lanesText(lanes)}) on a 1-user contract: ${sizes.runs} runs each side (baselines first, untimed)`,
  );
  const prep = await bench.many(
    total,
    sizes.concurrency,
    (i) => bench.amendment(amendctl, docs.baseline(customers[i]!, 1, ['member'])),
    'b baselines',
  );
  const ready = customers.filter((_, i) => prep.results[i]?.status === 'completed');
  if (ready.length === 0) {
    bench.add(
      figure({
        case: 'b',
        key: 'b.p50',
        label: '1-user change, p50',
        unit: 'ms',
        floor: null,
        value: null,
        error: `no baseline completed: ${firstError(prep.results) ?? 'out of time'}`,
      }),
    );
    return;
  }
  const floorMs: number[] = [];
  const runs: AmendmentRun[] = [];
  const warm = Math.min(sizes.warmup, Math.max(0, ready.length - 1));
  for (let i = 0; i < ready.length && runs.length < sizes.runs && !bench.outOfTime(); i++) {
    const fr = await bench.floor(floorTq, 'floorOpsWorkflow', `floor-b-${docs.tag}-${i}`, { lanes });
    const ar = await bench.amendment(amendctl, docs.addUser(ready[i]!, 2, 'u2'));
    if (i < warm) continue; // warm-up: not counted
    floorMs.push(fr.ms);
    runs.push(ar);
    bench.progress(
      'b',
      runs.length,
      sizes.runs,
      `floor ${Math.round(fr.ms)} ms, amendctl ${Math.round(ar.ms)} ms ${ar.status}`,
    );
  }
  latency(bench, 'b', 'b.p50', '1-user change, p50', floorMs, runs, p50);
  latency(bench, 'b', 'b.p99', '1-user change, p99', floorMs, runs, p99);
  bench.raw.b = { lanes, floorMs, amendctl: runs.map(brief) };
}

// ---- (c) ----

export async function caseC(bench: Bench): Promise<void> {
  const { amendctl, floorTq } = await bench.inProcess();
  const { docs } = bench;
  const doc = docs.baseline(docs.customer('h', 0), 3);
  const { lanes } = docs.plan(doc);
  bench.log(`[c] history of a 3-user baseline: the amendment's workflow and its contract's, vs the floor workflow's`);
  const floorId = `floor-c-${docs.tag}`;
  await bench.floor(floorTq, 'floorOpsWorkflow', floorId, { lanes });
  const floorH = await historyStats(bench.client, floorId, bench.codec);
  const run = await bench.amendment(amendctl, doc);
  const amendH = run.workflowId
    ? await historyStats(bench.client, run.workflowId, bench.codec).catch(() => undefined)
    : undefined;
  const contractH = await historyStats(bench.client, contractWorkflowId(doc.contractId), bench.codec).catch(
    () => undefined,
  );
  const err = run.status === 'completed' ? undefined : (run.error ?? run.status);
  const events = figure({
    case: 'c',
    key: 'c.events.amendment',
    label: '3-user baseline: amendment workflow events',
    unit: 'events',
    floor: floorH.events,
    value: amendH?.events ?? null,
    ...(err ? { note: `the amendment ended ${err}` } : {}),
    ...(amendH ? {} : { error: err ?? 'no history' }),
  });
  events.target = target('<= 40 events', events.value === null ? null : events.value <= 40);
  bench.add(events);
  bench.add(
    figure({
      case: 'c',
      key: 'c.events.contract',
      label: '3-user baseline: contract workflow events',
      unit: 'events',
      floor: null,
      floorNote: 'none',
      value: contractH?.events ?? null,
      ...(contractH ? {} : { note: `no workflow ${contractWorkflowId(doc.contractId)}` }),
    }),
  );
  const tree =
    amendH && amendH.children.length > 0
      ? await treeStats(bench.client, run.workflowId, bench.codec).catch(() => undefined)
      : undefined;
  const all = tree ?? amendH;
  const total = (all?.events ?? 0) + (contractH?.events ?? 0);
  const withChildren = tree ? ` (and ${tree.workflows - 1} child workflows)` : '';
  bench.add(
    figure({
      case: 'c',
      key: 'c.events.total',
      label: '3-user baseline: events, all its workflows',
      unit: 'events',
      floor: floorH.events,
      value: amendH ? total : null,
      ...(tree ? { note: `amendment, contract${withChildren}` } : {}),
    }),
  );
  bench.add(
    figure({
      case: 'c',
      key: 'c.payload.max',
      label: '3-user baseline: largest payload',
      unit: 'bytes',
      floor: floorH.maxPayloadBytes,
      value: all ? Math.max(all.maxPayloadBytes, contractH?.maxPayloadBytes ?? 0) : null,
    }),
  );
  bench.raw.c = { floor: floorH, amendment: amendH, amendmentWithChildren: tree, contract: contractH, run: brief(run) };
}

// ---- (d) ----

async function peakDuring<T>(w: ChildWorker, work: () => Promise<T>): Promise<{ result: T; peak: number | null }> {
  let peak = 0;
  const sample = (): void => {
    const r: Rss | undefined = w.rss();
    if (r) peak = Math.max(peak, r.peak, r.rss);
  };
  const timer = setInterval(sample, 500);
  try {
    const result = await work();
    sample();
    return { result, peak: peak || null };
  } finally {
    clearInterval(timer);
  }
}

export async function caseD(bench: Bench): Promise<void> {
  const { docs, sizes } = bench;
  const S = sizes.floorSample;
  bench.log(
    `[d] big baselines (${sizes.users.map((u) => u.toLocaleString('en-US')).join(', ')} users): wall time, history, largest payload, worker RSS peak; floor extrapolated from ${S} sequential no-op activities per target`,
  );
  // The floor sample: one floor workflow, S no-ops on each of the two targets, in a worker of its own.
  const sampleLanes: FloorLane[] = [
    { target: 'idp', n: S },
    { target: 'warehouse', n: S },
  ];
  const fTq = bench.taskQueue('d', 'floor');
  const fw = await bench.spawnWorker('floor', fTq);
  let sample: { wallMs: number; perActivityMs: number; history: HistoryStats; peak: number | null } | undefined;
  try {
    const id = `floor-d-${docs.tag}`;
    const { result, peak } = await peakDuring(fw, () =>
      bench.floor(fTq, 'floorOpsWorkflow', id, { lanes: sampleLanes }, Math.max(60_000, S * 1000)),
    );
    const history = await historyStats(bench.client, id, bench.codec);
    sample = { wallMs: result.ms, perActivityMs: result.ms / S, history, peak };
    bench.log(
      `  [d floor sample] ${2 * S} no-ops (${S} per target, concurrently) in ${Math.round(result.ms)} ms: ${sample.perActivityMs.toFixed(1)} ms per activity, ${history.events} events`,
    );
  } catch (err) {
    bench.log(`  [d floor sample] failed: ${(err as Error).message}`);
  } finally {
    await fw.stop();
  }
  const runs: Record<string, unknown> = {};
  for (const users of sizes.users) {
    if (bench.outOfTime()) break;
    const c = docs.customer('d', users);
    const doc = docs.baseline(c, users);
    const { lanes, operations } = docs.plan(doc);
    const maxLane = Math.max(...lanes.map((l) => l.n));
    const label = `${users.toLocaleString('en-US')}-user baseline`;
    bench.log(`  [d ${users}] ${operations.toLocaleString('en-US')} operations (${lanesText(lanes)}): submitting`);
    const tq = bench.taskQueue(`d${users}`, 'amendctl');
    let run: AmendmentRun | undefined;
    let peak: number | null = null;
    let amendH: (HistoryStats & { workflows?: number }) | undefined;
    let contractH: HistoryStats | undefined;
    let spawnError: string | undefined;
    try {
      const w = await bench.spawnWorker('amendctl', tq);
      try {
        const amendctl = new AmendctlClient(bench.client, tq);
        const timeout = Math.max(60_000, Math.min(bench.timeLeft(), Math.max(10 * 60_000, users * 150)));
        const heartbeat = setInterval(
          () => void progressLine(amendctl, doc.amendmentId).then((line) => bench.log(`  [d ${users}] ${line}`)),
          30_000,
        );
        try {
          ({ result: run, peak } = await peakDuring(w, () => bench.amendment(amendctl, doc, timeout, true)));
        } finally {
          clearInterval(heartbeat);
        }
        // The amendment's workflow and any child workflows it started: all the history the amendment wrote, but the contract's.
        if (run.workflowId) amendH = await treeStats(bench.client, run.workflowId, bench.codec).catch(() => undefined);
        contractH = await historyStats(bench.client, contractWorkflowId(doc.contractId), bench.codec).catch(
          () => undefined,
        );
      } finally {
        await w.stop();
      }
    } catch (err) {
      spawnError = (err as Error).message;
    }
    const error = spawnError ?? (run && run.status !== 'completed' ? (run.error ?? run.status) : undefined);
    bench.log(
      `  [d ${users}] ${error ? `FAILED after ${Math.round((run?.ms ?? 0) / 1000)} s: ${error}` : `completed in ${((run?.ms ?? 0) / 1000).toFixed(1)} s`}`,
    );
    const ext = 'extrapolated';
    const floorWall = sample ? (maxLane * sample.perActivityMs) / 1000 : null;
    const basis = sample
      ? `floor = ${maxLane.toLocaleString('en-US')} operations on the busiest target x ${sample.perActivityMs.toFixed(1)} ms per no-op activity (measured: ${S} in a row per target, both targets at once)`
      : undefined;
    const wall = figure({
      case: 'd',
      key: `d.${users}.wall`,
      label: `${label}: wall time to completion`,
      unit: 's',
      floor: floorWall,
      floorNote: ext,
      value: error ? null : (run?.ms ?? 0) / 1000,
      ...(error ? { error } : {}),
      ...(basis ? { note: basis } : {}),
    });
    if (users >= 10_000) wall.target = target('< 10 min', wall.value === null ? false : wall.value < 600);
    bench.add(wall);
    const floorEvents = sample ? Math.round((sample.history.events / (2 * S)) * operations) : null;
    // A failed amendment's history is shown as it was when it ended, without a ratio (it did not do the work).
    const failedRun = error ? { valueNote: 'failed run', ratio: null } : {};
    bench.add(
      figure({
        case: 'd',
        key: `d.${users}.events`,
        label: `${label}: amendment history events`,
        ...((amendH?.workflows ?? 1) > 1
          ? { note: `the amendment workflow and ${(amendH?.workflows ?? 1) - 1} child workflows` }
          : {}),
        unit: 'events',
        floor: floorEvents,
        floorNote: ext,
        value: amendH?.events ?? null,
        ...failedRun,
      }),
    );
    const maxPayload = amendH ? Math.max(amendH.maxPayloadBytes, contractH?.maxPayloadBytes ?? 0) : null;
    bench.add(
      figure({
        case: 'd',
        key: `d.${users}.payload`,
        label: `${label}: largest payload in history`,
        unit: 'bytes',
        floor: sample?.history.maxPayloadBytes ?? null,
        floorNote: 'sample',
        value: maxPayload,
        ...failedRun,
      }),
    );
    bench.add(
      figure({
        case: 'd',
        key: `d.${users}.rss`,
        label: `${label}: worker RSS peak`,
        unit: 'MB',
        floor: sample?.peak ? sample.peak / MB : null,
        floorNote: 'sample',
        value: peak ? peak / MB : null,
      }),
    );
    runs[users] = {
      lanes,
      operations,
      run: run ? brief(run) : undefined,
      spawnError,
      amendment: amendH && { ...amendH, failures: amendH.failures.slice(0, 5) },
      contract: contractH && { ...contractH, failures: contractH.failures.slice(0, 5) },
      rssPeakBytes: peak,
    };
  }
  bench.raw.d = {
    floorSample: sample && {
      perTarget: S,
      wallMs: sample.wallMs,
      perActivityMs: sample.perActivityMs,
      events: sample.history.events,
      maxPayloadBytes: sample.history.maxPayloadBytes,
      rssPeakBytes: sample.peak,
      extrapolation:
        'wall = largest per-target operation count x per-activity ms; events = sample events per activity x operations',
    },
    runs,
  };
}

// ---- (e) ----

let rssCap = Infinity;
/** The worker process is above the RSS cap: it takes no more work. */
const over = (w: ChildWorker) => (): boolean => (w.rss()?.rss ?? 0) > rssCap;

/**
 * The worker's RSS once it has settled: sampled every second until the last five samples lie within
 * 1% of each other (V8 and the allocator hand back what a burst of work left behind), at most 30 s.
 */
async function settleRss(
  w: ChildWorker,
): Promise<(Rss & { memory?: Record<string, number>; settledMs?: number }) | undefined> {
  const t0 = Date.now();
  const samples: number[] = [];
  let last: Rss | undefined;
  await sleep(2000);
  while (Date.now() - t0 < 30_000) {
    last = w.rss();
    if (!last) return undefined;
    samples.push(last.rss);
    const tail = samples.slice(-5);
    if (tail.length === 5 && Math.max(...tail) - Math.min(...tail) <= Math.max(...tail) * 0.01) break;
    await sleep(1000);
  }
  return last && { ...last, settledMs: Date.now() - t0, ...(w.memory ? { memory: w.memory } : {}) };
}

export async function caseE(bench: Bench): Promise<void> {
  const { docs, sizes } = bench;
  bench.log(
    `[e] amendments pending approval (${sizes.pending.map((n) => n.toLocaleString('en-US')).join(', ')}): worker RSS in a process of its own, vs as many bare workflows waiting on a signal`,
  );
  const raw: Record<string, unknown> = {};
  rssCap = bench.rssCapBytes;
  for (const n of sizes.pending) {
    if (bench.outOfTime()) break;
    const label = `${n.toLocaleString('en-US')} pending approval`;
    // The floor: n bare workflows waiting on a signal.
    let floor: { idle?: Rss; at?: Rss; reached: number; ms: number; error?: string } = { reached: 0, ms: 0 };
    const fTq = bench.taskQueue(`e${n}`, 'floor');
    try {
      const w = await bench.spawnWorker('floor', fTq);
      try {
        const idle = await settleRss(w);
        const t0 = Date.now();
        const started = await bench.many(
          n,
          16,
          (i) =>
            bench.client.workflow.start('floorPendingWorkflow', {
              taskQueue: fTq,
              workflowId: `floor-e-${docs.tag}-${n}-${i}`,
              args: [],
            }),
          `e ${n} floor start`,
          over(w),
        );
        while (w.waiting < started.results.length && !bench.outOfTime() && !over(w)()) {
          bench.progress(`e ${n} floor waiting`, w.waiting, n);
          await sleep(500);
        }
        bench.progress(`e ${n} floor waiting`, w.waiting, n);
        floor = { idle, reached: w.waiting, ms: Date.now() - t0, at: await settleRss(w) };
      } finally {
        await w.stop();
      }
    } catch (err) {
      floor.error = (err as Error).message;
    }
    // amendctl: n baselines with an admin (the reference policy asks for approval), each its own contract.
    let am: { idle?: Rss; at?: Rss; reached: number; submitted: number; ms: number; error?: string } = {
      reached: 0,
      submitted: 0,
      ms: 0,
    };
    const tq = bench.taskQueue(`e${n}`, 'amendctl');
    try {
      const w = await bench.spawnWorker('amendctl', tq);
      try {
        const amendctl = new AmendctlClient(bench.client, tq);
        const idle = await settleRss(w);
        const t0 = Date.now();
        let failedSubmit: string | undefined;
        const subs = await bench.many(
          n,
          16,
          (i) => {
            const c = docs.customer(`e${n}x`, i);
            return amendctl.submitAmendment(docs.baseline(c, 1, ['admin'])).then(
              () => 1,
              (err: unknown) => {
                failedSubmit ??= (err as Error).message;
                return 0;
              },
            );
          },
          `e ${n} amendctl submit`,
          over(w),
        );
        const submitted = subs.results.reduce<number>((a, b) => a + b, 0);
        let reached = 0;
        const query = `TaskQueue = "${tq}" AND AmendmentStatus = "pending_approval"`;
        while (!bench.outOfTime()) {
          reached = (await bench.client.workflow.count(query).catch(() => ({ count: -1 }))).count;
          if (reached < 0) break;
          bench.progress(`e ${n} amendctl pending`, reached, n);
          if (reached >= submitted || over(w)()) break;
          await sleep(2000);
        }
        if (reached < 0) reached = await countPendingByStatus(amendctl, docs, n);
        bench.progress(`e ${n} amendctl pending`, reached, n);
        am = {
          idle,
          reached,
          submitted,
          ms: Date.now() - t0,
          at: await settleRss(w),
          ...(failedSubmit ? { error: `submit: ${failedSubmit}` } : {}),
        };
      } finally {
        await w.stop();
      }
    } catch (err) {
      am.error = (err as Error).message;
    }
    const partial = (reached: number): string | undefined =>
      reached < n
        ? `only ${reached} of ${n} reached waiting (time limit, or the worker above the RSS cap of ${Math.round(rssCap / MB)} MB)`
        : undefined;
    const rssF = figure({
      case: 'e',
      key: `e.${n}.rss`,
      label: `${label}: worker RSS`,
      unit: 'MB',
      floor: floor.at ? floor.at.rss / MB : null,
      value: am.at ? am.at.rss / MB : null,
      ...(am.at ? {} : { error: am.error ?? 'not measured' }),
      ...(partial(am.reached) || am.error ? { note: [partial(am.reached), am.error].filter(Boolean).join('; ') } : {}),
    });
    rssF.target =
      n <= 1000
        ? target('< 400 MB (at 1,000)', rssF.value === null ? null : rssF.value < 400)
        : target('< 600 MB (at 10,000)', rssF.value === null ? null : rssF.value < 600);
    bench.add(rssF);
    const per = (s: { idle?: Rss; at?: Rss; reached: number }): number | null =>
      s.idle && s.at && s.reached > 0 ? (s.at.rss - s.idle.rss) / 1024 / s.reached : null;
    bench.add(
      figure({
        case: 'e',
        key: `e.${n}.perPending`,
        label: `${label}: RSS per pending (above idle)`,
        unit: 'KB',
        floor: per(floor),
        value: per(am),
      }),
    );
    raw[n] = {
      floor: {
        ...floor,
        idleMB: floor.idle && floor.idle.rss / MB,
        atMB: floor.at && floor.at.rss / MB,
        peakMB: floor.at && floor.at.peak / MB,
      },
      amendctl: {
        ...am,
        idleMB: am.idle && am.idle.rss / MB,
        atMB: am.at && am.at.rss / MB,
        peakMB: am.at && am.at.peak / MB,
      },
    };
  }
  bench.raw.e = raw;
}

/** Where the status search attribute cannot be counted: ask each amendment (slow, only as a fallback). */
async function countPendingByStatus(amendctl: AmendctlClient, docs: Bench['docs'], n: number): Promise<number> {
  let pending = 0;
  for (let i = 0; i < n; i++) {
    const v = await amendctl.getStatus(`${docs.customer(`e${n}x`, i).id}-1`).catch(() => undefined);
    if (v?.status === 'pending_approval') pending++;
  }
  return pending;
}

// ---- (f) ----

export async function caseF(bench: Bench): Promise<void> {
  const { amendctl, floorTq } = await bench.inProcess();
  const { docs, sizes } = bench;
  const c = docs.customer('f', 0);
  const base = docs.baseline(c, 2);
  const { lanes, operations } = docs.plan(docs.setRole(c, 2, 'u1', 'viewer'), docs.plan(base).applied);
  const N = sizes.row;
  bench.log(
    `[f] ${N} amendments in a row on one contract (a role change each: ${operations} operations, ${lanesText(lanes)}), floor and amendctl alternating`,
  );
  const b = await bench.amendment(amendctl, base);
  if (b.status !== 'completed') {
    bench.add(
      figure({
        case: 'f',
        key: 'f.ratio',
        label: 'in a row: last/first p50',
        unit: 'x',
        floor: null,
        value: null,
        error: `the baseline did not complete: ${b.error ?? b.status}`,
      }),
    );
    return;
  }
  const floorMs: number[] = [];
  const runs: AmendmentRun[] = [];
  for (let i = 1; i <= N && !bench.outOfTime(); i++) {
    floorMs.push(
      (
        await bench.floor(floorTq, 'floorRowWorkflow', `floor-f-${docs.tag}-${i}`, {
          lanes,
          contractId: c.contractId,
          sequence: i + 1,
        })
      ).ms,
    );
    const r = await bench.amendment(amendctl, docs.setRole(c, i + 1, 'u1', i % 2 === 1 ? 'viewer' : 'member'));
    runs.push(r);
    bench.progress('f', i, N, `floor ${Math.round(floorMs[i - 1]!)} ms, amendctl ${Math.round(r.ms)} ms ${r.status}`);
    if (r.status !== 'completed') break; // the row is broken: later sequences would only queue
  }
  const k = Math.min(sizes.rowWindow, Math.floor(runs.length / 2));
  const ms = runs.map((r) => (r.status === 'completed' ? r.ms : NaN));
  const window = (v: number[], from: number, to: number): number[] =>
    v.slice(from, to).filter((x) => Number.isFinite(x));
  const af = p50(window(ms, 0, k));
  const al = p50(window(ms, runs.length - k, runs.length));
  const ff = p50(window(floorMs, 0, k));
  const flast = p50(window(floorMs, floorMs.length - k, floorMs.length));
  const err = errorsNote(runs);
  const partial = runs.length < N ? `${runs.length} of ${N} in a row` : undefined;
  const note = [partial, err].filter(Boolean).join('; ') || undefined;
  bench.add(
    figure({
      case: 'f',
      key: 'f.first.p50',
      label: `in a row: first ${k}, p50`,
      unit: 'ms',
      floor: round(ff),
      value: round(af),
      samples: k,
      ...(note ? { note } : {}),
      ...(k === 0 ? { error: err ?? 'too few amendments' } : {}),
    }),
  );
  bench.add(
    figure({
      case: 'f',
      key: 'f.last.p50',
      label: `in a row: last ${k}, p50`,
      unit: 'ms',
      floor: round(flast),
      value: round(al),
      samples: k,
    }),
  );
  const ratio = figure({
    case: 'f',
    key: 'f.ratio',
    label: `in a row: last ${k} / first ${k}`,
    unit: 'x',
    floor: ff && flast ? flast / ff : null,
    value: af && al ? al / af : null,
    ratio: null,
  });
  ratio.target = target('<= 1.10 (last within 10% of first)', ratio.value === null ? null : ratio.value <= 1.1);
  bench.add(ratio);
  const contractH = await historyStats(bench.client, contractWorkflowId(c.contractId), bench.codec).catch(
    () => undefined,
  );
  bench.raw.f = {
    lanes,
    window: k,
    floorMs: floorMs.map(Math.round),
    amendctl: runs.map(brief),
    contractEvents: contractH?.events,
  };
}

export const CASE_FUNCTIONS: Record<CaseId, (b: Bench) => Promise<void>> = {
  a: caseA,
  b: caseB,
  c: caseC,
  d: caseD,
  e: caseE,
  f: caseF,
};
/** In-process cases first (latency), then those with a worker process of their own (RSS). */
export const CASE_ORDER: readonly CaseId[] = ['a', 'b', 'c', 'f', 'd', 'e'];

/** Where a running amendment is, for a person watching a long run: its status and the operations done (finished batches and the running ones' heartbeats). */
async function progressLine(client: AmendctlClient, amendmentId: string): Promise<string> {
  const v = await client.getStatus(amendmentId).catch(() => undefined);
  if (!v) return 'waiting for the result (no worker answered the status query)';
  const finished = Object.values(v.operationCounts ?? {}).reduce(
    (n, byOutcome) => n + Object.values(byOutcome).reduce((a, b) => a + (b ?? 0), 0),
    0,
  );
  // A finished batch's last heartbeat can still be listed beside its counts: only unfinished ones add.
  const running = (v.progress ?? []).reduce((n, p) => n + (p.done < p.total ? p.done : 0), 0);
  const total = v.operationsTotal ?? 0;
  const done = Math.min(total, finished + running);
  const pct = total > 0 ? ` (${Math.floor((done / total) * 100)}%)` : '';
  return `${v.status}: ${done.toLocaleString('en-US')} of ${total.toLocaleString('en-US')} operations done${pct}`;
}
