/**
 * One chaos run on servers it is given (npm run chaos starts its own; the test passes the
 * harness's PostgreSQL and scim2-server with a dev server of its own):
 *
 * 1. the scenario from the seed (src/chaos/scenario.ts), and a task queue of the run's own;
 * 2. `workers` worker processes on it, the outage target reached through a proxy;
 * 3. every amendment submitted in shuffled order, while a worker is SIGKILLed every
 *    `killEvery` seconds or so (and started again); the dev server restarts once on its SQLite
 *    file when `restartAt` of the amendments have been submitted, and the target is down for
 *    `outageSeconds` from when `outageAt` have been. Tied to submission, each fault meets work
 *    still to do, however fast the amendments complete: those not yet submitted at least;
 * 4. once all are final (or at the timeout), the workers stop and both targets are read back
 *    and compared with what the contracts say (src/chaos/verify.ts).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import { referenceWorkerEnv, type StackEnv, type TemporalServer } from '../bench/e2e/stack';
import { REFERENCE_RULES, REFERENCE_TARGETS } from '../bench/e2e/docs';
import { AmendctlClient } from '../client';
import { dataConverter } from '../codec';
import { loadRuleset } from '../domain/rules';
import { RunClock, sleep } from './clock';
import { IDP, WAREHOUSE } from './expect';
import type { ChaosOptions } from './options';
import { type OutageProxy, startOutageProxy } from './outage';
import { Rng } from './rng';
import { generateScenario } from './scenario';
import { AmendmentTracker } from './tracker';
import { verifyTargets, type Verification } from './verify';
import { waitForPollers, type WorkerExit, WorkerPool } from './workers';

export type RunOptions = Omit<ChaosOptions, 'json' | 'keep'>;

export interface ChaosServers {
  env: StackEnv;
  temporal: TemporalServer;
}

/** Lists in the report stop at this many entries; the counts are whole. */
const LISTED = 20;

export interface ChaosReport {
  seed: number;
  /** In every id of the run: with the seed, generateScenario gives its amendments again. */
  tag: string;
  contracts: number;
  amendmentsPerContract: number;
  submitted: number;
  completed: number;
  /** Final amendments by status. */
  statuses: Record<string, number>;
  /** Not final (or unknown to Temporal) at the end. */
  lost: number;
  lostAmendments: Array<{ amendmentId: string; state: string }>;
  notCompleted: Array<{ amendmentId: string; status: string; reason: string }>;
  wrongAccounts: number;
  wrong: Verification['wrong'];
  duplicates: number;
  duplicateUsers: Verification['duplicates'];
  accountsChecked: Record<string, number>;
  kills: number;
  workers: number;
  workerStarts: number;
  /** Workers that ended without being killed. */
  workerExits: WorkerExit[];
  serverRestarts: number;
  serverDownMs: number;
  outage: { target: string; ms: number };
  wallMs: number;
  /** Faults asked for that did not happen (the run ended first): such a run proves less, and is not ok. */
  faultsMissed: string[];
  ok: boolean;
}

/** `stop` (Ctrl-C) ends the run early, as the timeout does: the workers stop, the targets are read back. */
export async function runChaos(
  opts: RunOptions,
  servers: ChaosServers,
  log: (line: string) => void,
  stop?: AbortSignal,
): Promise<ChaosReport> {
  const t0 = Date.now();
  const deadline = t0 + opts.timeout * 1000;
  const elapsed = (): string => `${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s`;
  const say = (line: string): void => log(`chaos ${elapsed()}: ${line}`);
  const ruleset = loadRuleset(readFileSync(REFERENCE_RULES, 'utf8'), REFERENCE_RULES);
  const tag = randomBytes(3).toString('hex');
  const scenario = generateScenario(
    { contracts: opts.contracts, amendments: opts.amendments, seed: opts.seed, tag },
    ruleset,
  );
  const env = servers.env;
  const taskQueue = `chaos-${tag}`;
  const chaosRng = Rng.stream(opts.seed, 'chaos');
  const proxy = await startOutageProxy(outageUpstream(opts.outageTarget, env));
  const pool = new WorkerPool({
    count: opts.workers,
    address: servers.temporal.address,
    taskQueue,
    // The reference policy whatever this shell's AMENDCTL_TARGETS/_RULES/_APPROVALS say: the expectations follow it.
    env: {
      ...referenceWorkerEnv(env),
      AMENDCTL_TARGETS: REFERENCE_TARGETS,
      AMENDCTL_RULES: REFERENCE_RULES,
      AMENDCTL_APPROVALS: '',
      ...routedThrough(opts.outageTarget, proxy, env),
    },
    logDir: env.dir,
    restartDelay: () => chaosRng.int(200, 1500),
    log: say,
  });
  const connection = await Connection.connect({ address: servers.temporal.address, connectTimeout: '5s' }).catch(
    async (err: unknown) => {
      await proxy.close();
      throw err;
    },
  );
  const client = new AmendctlClient(
    new Client({
      connection,
      namespace: 'default',
      dataConverter: dataConverter({ AMENDCTL_CODEC_KEYS: env.AMENDCTL_CODEC_KEYS }),
    }),
    taskQueue,
  );
  const tracker = new AmendmentTracker(client, scenario.submissionOrder);
  const total = tracker.total;
  say(
    `seed ${opts.seed}: ${opts.contracts} contracts x ${opts.amendments} amendments (${total}), ${opts.workers} workers on task queue ${taskQueue}; a SIGKILL every ~${opts.killEvery} s; the dev server restarts at ${pct(opts.restartAt)} submitted; ${opts.outageTarget} is down ${opts.outageSeconds} s from ${pct(opts.outageAt)} submitted`,
  );

  const clock = new RunClock();
  let serverRestarts = 0;
  let serverDownMs = 0;
  let outageRun: Promise<void> | undefined;
  const restartServer = async (): Promise<void> => {
    say(
      `restarting the Temporal dev server on its SQLite file (${tracker.submitted}/${total} submitted, ${tracker.final} final)`,
    );
    const t = Date.now();
    await servers.temporal.restart();
    serverRestarts++;
    serverDownMs = Date.now() - t;
    say(`the dev server is back after ${(serverDownMs / 1000).toFixed(1)} s`);
  };
  const outage = async (): Promise<void> => {
    say(
      `${opts.outageTarget} outage: every connection reset for ${opts.outageSeconds} s (${tracker.submitted}/${total} submitted, ${tracker.final} final)`,
    );
    proxy.setDown(true);
    await clock.nap(opts.outageSeconds * 1000);
    proxy.setDown(false);
    say(`${opts.outageTarget} is back`);
  };

  const submitting = async (): Promise<void> => {
    const rng = Rng.stream(opts.seed, 'submission gaps');
    for (const [i, a] of scenario.submissionOrder.entries()) {
      if (clock.over) return;
      if (i === Math.min(Math.ceil(opts.restartAt * total), total - 1)) await restartServer(); // submitting waits for the server
      if (i === Math.min(Math.ceil(opts.outageAt * total), total - 1)) outageRun = outage();
      await tracker.submit(a, deadline);
      if (opts.submitGapMs > 0) await sleep(rng.between(0, 2 * opts.submitGapMs));
    }
    say(`all ${total} submitted`);
  };
  const killing = async (): Promise<void> => {
    for (;;) {
      await clock.nap(opts.killEvery * 1000 * chaosRng.between(0.5, 1.5));
      if (clock.over || (opts.maxKills !== undefined && pool.kills >= opts.maxKills)) return;
      const live = pool.live();
      if (live.length > 0) pool.kill(chaosRng.pick(live));
    }
  };

  let lastProgress = 0;
  try {
    pool.start();
    await waitForPollers(connection, 'default', taskQueue, opts.workers);
    say(`${opts.workers} workers poll; submitting`);
    const background = [
      submitting().catch((err: unknown) => say(`submission stopped: ${(err as Error).message}`)),
      killing(),
    ];
    while (!tracker.allFinal() && Date.now() < deadline && !stop?.aborted) {
      await sleep(1000);
      await tracker.poll();
      if (Date.now() - lastProgress >= 5000 || tracker.allFinal()) {
        lastProgress = Date.now();
        say(progress(tracker, pool, opts.workers, proxy, opts.outageTarget));
      }
    }
    clock.end();
    await Promise.all([...background, outageRun]);
  } finally {
    clock.end();
    proxy.setDown(false);
    say('stopping the workers');
    await pool.stop();
    await client.close().catch(() => undefined);
    await proxy.close();
  }

  say(`reading back ${IDP} (SCIM API) and ${WAREHOUSE} (pg_roles) ...`);
  const verification = await verifyTargets(scenario, ruleset, {
    scim: { url: env.AMENDCTL_TEST_SCIM_URL, token: env.AMENDCTL_TEST_SCIM_TOKEN },
    postgres: {
      host: env.AMENDCTL_TEST_PG_HOST,
      port: Number(env.AMENDCTL_TEST_PG_PORT),
      password: env.AMENDCTL_TEST_PG_PASSWORD,
    },
  });
  const statuses = tracker.statuses();
  const lost = tracker.notFinal();
  const report: ChaosReport = {
    seed: opts.seed,
    tag,
    contracts: opts.contracts,
    amendmentsPerContract: opts.amendments,
    submitted: tracker.submitted,
    completed: statuses['completed'] ?? 0,
    statuses,
    lost: lost.length,
    lostAmendments: lost.slice(0, LISTED),
    notCompleted: tracker.notCompleted().slice(0, LISTED),
    wrongAccounts: verification.wrong.length,
    wrong: verification.wrong.slice(0, LISTED),
    duplicates: verification.duplicates.length,
    duplicateUsers: verification.duplicates.slice(0, LISTED),
    accountsChecked: verification.checked,
    kills: pool.kills,
    workers: opts.workers,
    workerStarts: pool.starts,
    workerExits: pool.exits,
    serverRestarts,
    serverDownMs,
    outage: { target: opts.outageTarget, ms: proxy.downMs },
    wallMs: Date.now() - t0,
    faultsMissed: [],
    ok: false,
  };
  report.faultsMissed = missedFaults(report, opts);
  report.ok =
    report.lost === 0 &&
    report.wrongAccounts === 0 &&
    report.duplicates === 0 &&
    report.completed === total &&
    report.faultsMissed.length === 0;
  return report;
}

function missedFaults(r: ChaosReport, opts: RunOptions): string[] {
  const missed: string[] = [];
  if (r.kills === 0 && opts.maxKills !== 0) missed.push('no worker was killed');
  if (r.serverRestarts === 0) missed.push('the dev server was not restarted');
  if (r.outage.ms === 0) missed.push(`${r.outage.target} had no outage`);
  return missed;
}

const pct = (f: number): string => `${Math.round(f * 100)}%`;

function progress(t: AmendmentTracker, pool: WorkerPool, workers: number, proxy: OutageProxy, target: string): string {
  const open = new Map<string, number>();
  for (const x of t.notFinal()) open.set(x.state, (open.get(x.state) ?? 0) + 1);
  const openText = [...open].map(([s, n]) => `${n} ${s}`).join(', ');
  return `submitted ${t.submitted}/${t.total}, final ${t.final}${openText ? ` (open: ${openText})` : ''}; kills ${pool.kills}, workers up ${pool.live().length}/${workers}${proxy.down ? `; ${target} down` : ''}`;
}

/** Where the outage target really is. */
function outageUpstream(target: 'idp' | 'warehouse', env: StackEnv): { host: string; port: number } {
  if (target === 'warehouse') return { host: env.AMENDCTL_TEST_PG_HOST, port: Number(env.AMENDCTL_TEST_PG_PORT) };
  const u = new URL(env.AMENDCTL_TEST_SCIM_URL);
  return { host: u.hostname, port: Number(u.port) };
}

/** The workers' variables that send the outage target through the proxy; amendctl's own store (the audit database) keeps the direct way. */
function routedThrough(target: 'idp' | 'warehouse', proxy: OutageProxy, env: StackEnv): Record<string, string> {
  if (target === 'warehouse')
    return {
      AMENDCTL_WAREHOUSE_HOST: '127.0.0.1',
      AMENDCTL_WAREHOUSE_PORT: String(proxy.port),
      AMENDCTL_AUDIT_HOST: env.AMENDCTL_TEST_PG_HOST,
      AMENDCTL_AUDIT_PORT: env.AMENDCTL_TEST_PG_PORT,
    };
  const u = new URL(env.AMENDCTL_TEST_SCIM_URL);
  u.host = `127.0.0.1:${proxy.port}`;
  return { AMENDCTL_IDP_URL: u.toString().replace(/\/$/, '') };
}
