/**
 * npm run bench:e2e: amendctl end to end on the embedded stack, beside the bare-Temporal
 * floor measured in the same run on the same server (issue 9, point 8). Not a test: it
 * prints figures, each with its ratio to the floor and the issue's target, and writes them
 * all to a JSON file.
 *
 *   npm run bench:e2e                       every case, full sizes (an hour or more)
 *   npm run bench:e2e -- --small            a quick run (minutes)
 *   npm run bench:e2e -- --only a,c --runs 10 --json /tmp/b.json
 *
 * Cases: a (3-user baseline, c=1 and c=10), b (1-user change), c (history events),
 * d (1,000- and 10,000-user baselines), e (pending approval: worker RSS), f (in a row).
 * See src/bench/e2e/cases.ts. The bench starts its own servers (fresh dev server SQLite in
 * a temporary folder, PostgreSQL, scim2-server) and stops them at the end, on failure, on
 * Ctrl-C and at its time limit (--max-minutes).
 */
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { CASE_FUNCTIONS, CASE_ORDER } from './e2e/cases';
import { CASES, type CaseId, figure, table, writeJson } from './e2e/report';
import { Bench, FULL, SMALL, type Sizes } from './e2e/runner';
import { ROOT, startStack, type Stack } from './e2e/stack';

export interface CliOptions {
  only: CaseId[];
  sizes: Sizes;
  small: boolean;
  maxMinutes: number;
  json: string;
  keep: boolean;
  rssCapMB?: number;
}

const USAGE = `usage: npm run bench:e2e -- [--small] [--only a,b,c,d,e,f] [sizes] [--max-minutes M] [--json FILE] [--keep]
  cases   a 3-user baseline c=1 (p50, p99) and c=10 (throughput, p50)   b 1-user change (p50, p99)
          c history events of a 3-user baseline   d big baselines (wall, events, payload, RSS)
          e pending approval (worker RSS)   f amendments in a row on one contract (first/last p50)
  sizes   --runs N --warmup N --many N --concurrency N --users N,N --floor-sample N
          --pending N,N --row N --row-window N
  --rss-cap-mb MB  a worker process above this takes no more pending amendments (default: half the memory, at most 8192)
  --small    quick sizes: ${JSON.stringify(SMALL)}
  default    ${JSON.stringify(FULL)}`;

type KeysOf<T, V> = { [K in keyof T]-?: T[K] extends V ? K : never }[keyof T];

/** The options that take a number (at least `min`) or a comma-separated list of numbers, and what each sets. */
type NumericOption =
  | { kind: 'size'; key: KeysOf<Sizes, number>; min: number }
  | { kind: 'list'; key: KeysOf<Sizes, number[]> }
  | { kind: 'opt'; key: KeysOf<Required<CliOptions>, number>; min: number };

const NUMERIC_OPTIONS: ReadonlyMap<string, NumericOption> = new Map<string, NumericOption>([
  ['--runs', { kind: 'size', key: 'runs', min: 1 }],
  ['--warmup', { kind: 'size', key: 'warmup', min: 0 }],
  ['--many', { kind: 'size', key: 'many', min: 1 }],
  ['--concurrency', { kind: 'size', key: 'concurrency', min: 1 }],
  ['--users', { kind: 'list', key: 'users' }],
  ['--floor-sample', { kind: 'size', key: 'floorSample', min: 1 }],
  ['--pending', { kind: 'list', key: 'pending' }],
  ['--row', { kind: 'size', key: 'row', min: 2 }],
  ['--row-window', { kind: 'size', key: 'rowWindow', min: 1 }],
  ['--max-minutes', { kind: 'opt', key: 'maxMinutes', min: 1 }],
  ['--rss-cap-mb', { kind: 'opt', key: 'rssCapMB', min: 64 }],
]);

export function parseArgs(argv: string[]): CliOptions {
  const small = argv.includes('--small');
  const sizes: Sizes = { ...(small ? SMALL : FULL) };
  const opts: CliOptions = {
    only: [...CASES],
    sizes,
    small,
    maxMinutes: small ? 20 : 180,
    json: join(ROOT, '.cache', 'bench-e2e.json'),
    keep: false,
  };
  const num = (flag: string, v: string | undefined): number => {
    const n = Number(v);
    if (!v || !Number.isInteger(n) || n < 0) throw new Error(`${flag} needs a whole number, got ${v ?? 'nothing'}`);
    return n;
  };
  const list = (flag: string, v: string | undefined): number[] =>
    (v ?? '')
      .split(',')
      .filter(Boolean)
      .map((x) => num(flag, x));
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = (): string | undefined => argv[++i];
    switch (a) {
      case '--small':
        break;
      case '--keep':
        opts.keep = true;
        break;
      case '--only': {
        const only = (v() ?? '')
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
        const bad = only.filter((c) => !CASES.includes(c as CaseId));
        if (bad.length > 0 || only.length === 0)
          throw new Error(`--only takes cases among ${CASES.join(',')}, got ${bad.join(',') || 'nothing'}`);
        opts.only = only as CaseId[];
        break;
      }
      case '--json':
        opts.json = v() ?? opts.json;
        break;
      case '--help':
      case '-h':
        throw new UsageError(USAGE);
      default: {
        const option = NUMERIC_OPTIONS.get(a);
        if (!option) throw new Error(`unknown option ${a}\n${USAGE}`);
        const raw = v();
        if (option.kind === 'list') sizes[option.key] = list(a, raw);
        else if (option.kind === 'size') sizes[option.key] = Math.max(option.min, num(a, raw));
        else opts[option.key] = Math.max(option.min, num(a, raw));
      }
    }
  }
  return opts;
}

export class UsageError extends Error {}

/** Run the chosen cases in order; a case that throws becomes a failed figure and the next one runs. */
export async function runCases(bench: Bench, only: readonly CaseId[]): Promise<void> {
  for (const c of CASE_ORDER.filter((x) => only.includes(x))) {
    if (bench.outOfTime()) {
      bench.log(`[${c}] skipped: the time limit was reached`);
      bench.add(
        figure({
          case: c,
          key: `${c}.skipped`,
          label: 'not run',
          unit: 'ms',
          floor: null,
          value: null,
          error: 'skipped: time limit reached',
        }),
      );
      continue;
    }
    if (c === 'd' || c === 'e') await bench.stopInProcess(); // their workers run in processes of their own
    const t0 = Date.now();
    try {
      await CASE_FUNCTIONS[c](bench);
      bench.log(`[${c}] done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    } catch (err) {
      const message = (err as Error)?.message ?? String(err);
      bench.log(`[${c}] failed after ${((Date.now() - t0) / 1000).toFixed(0)} s: ${message}`);
      bench.add(
        figure({
          case: c,
          key: `${c}.failed`,
          label: 'case failed',
          unit: 'ms',
          floor: null,
          value: null,
          error: message,
        }),
      );
    }
  }
}

/** Everything the run measured, for the JSON file. */
export function report(bench: Bench, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    bench: 'amendctl e2e vs bare-Temporal floor (issue 9, point 8)',
    machine: {
      node: process.version,
      cpus: cpus().length,
      memoryMB: Math.round(totalmem() / 1024 / 1024),
      platform: process.platform,
    },
    sizes: bench.sizes,
    ...extra,
    figures: bench.figures,
    raw: bench.raw,
  };
}

async function main(): Promise<number> {
  let opts: CliOptions;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    const usage = err instanceof UsageError;
    (usage ? process.stdout : process.stderr).write(`${(err as Error).message}\n`);
    return usage ? 0 : 2;
  }
  const startedAt = new Date();
  const deadline = Date.now() + opts.maxMinutes * 60_000;
  process.stdout.write(
    `amendctl bench:e2e (${opts.small ? 'small' : 'full'} sizes; cases ${opts.only.join(',')}; at most ${opts.maxMinutes} min) on ${cpus().length} CPUs, node ${process.version}\n`,
  );
  process.stdout.write(
    `starting the servers (Temporal dev server with a fresh SQLite file, PostgreSQL, scim2-server) ...\n`,
  );
  let stack: Stack | undefined;
  let bench: Bench | undefined;
  let finishing: Promise<void> | undefined;
  const finish = (why: string): Promise<void> =>
    (finishing ??= (async () => {
      if (bench) {
        process.stdout.write(`\n${table(bench.figures)}\n`);
        writeJson(
          opts.json,
          report(bench, {
            startedAt: startedAt.toISOString(),
            finishedAt: new Date().toISOString(),
            ended: why,
            cases: opts.only,
            temporalCli: stack?.env.temporalCli,
          }),
        );
        process.stdout.write(`\nfigures: ${opts.json}${why === 'completed' ? '' : ` (${why}: partial)`}\n`);
        await bench.close().catch(() => undefined);
      }
      if (stack) {
        process.stdout.write('stopping the servers ...\n');
        await stack.stop().catch(() => undefined);
      }
    })());
  let interrupts = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (++interrupts > 1) {
      bench?.killChildrenNow();
      process.exit(130);
    }
    process.stdout.write(`\n${sig}: stopping (again to stop at once)\n`);
    void finish('interrupted').finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // The hard limit: phases stop taking work at the deadline; if one hangs past it, stop anyway.
  const hard = setTimeout(
    () => void finish('time limit').finally(() => process.exit(124)),
    opts.maxMinutes * 60_000 + 120_000,
  );
  hard.unref();
  try {
    stack = await startStack({ keepDir: opts.keep });
    process.stdout.write(
      `servers up: Temporal ${stack.env.AMENDCTL_TEST_TEMPORAL_ADDRESS}, PostgreSQL :${stack.env.AMENDCTL_TEST_PG_PORT}, SCIM ${stack.env.AMENDCTL_TEST_SCIM_URL} (folder ${stack.env.dir})\n`,
    );
    const rates = Bench.workerEnv(stack.env);
    process.stdout.write(
      `targets' rate limits: idp ${rates.AMENDCTL_IDP_RATE}/s, warehouse ${rates.AMENDCTL_WAREHOUSE_RATE}/s (AMENDCTL_IDP_RATE=50 AMENDCTL_WAREHOUSE_RATE=50 for the reference file's example)\n`,
    );
    bench = await Bench.create(stack.env, {
      sizes: opts.sizes,
      deadline,
      dir: stack.env.dir,
      ...(opts.rssCapMB ? { rssCapMB: opts.rssCapMB } : {}),
    });
    await runCases(bench, opts.only);
    await finish(bench.outOfTime() ? 'time limit' : 'completed');
    return 0;
  } catch (err) {
    process.stderr.write(`bench:e2e failed: ${(err as Error)?.stack ?? String(err)}\n`);
    await finish('failed');
    return 1;
  } finally {
    clearTimeout(hard);
  }
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`${String(err)}\n`);
      process.exit(1);
    },
  );
}
