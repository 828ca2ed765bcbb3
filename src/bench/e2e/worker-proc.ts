/**
 * A bench worker in its own process, so its RSS is the worker's own (forked by
 * src/bench/e2e/runner.ts, never run by hand). BENCH_WORKER_MODE=amendctl runs the amendctl
 * worker (createAmendctlWorker, the reference policy); =floor runs the floor's worker
 * (src/bench/floor-workflows, bundled by the parent) with the same settings. Tells the
 * parent over IPC when it polls, and (floor) how many bare workflows wait for a signal.
 * SIGTERM or the parent going away: shut down.
 */
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { temporalTarget } from '../../client/connection';
import { dataConverter, loadCodecKeys } from '../../codec';
import { createAmendctlWorker } from '../../worker';
import { createFloorWorker } from './floor';

const send = (m: object): void => {
  if (process.connected) process.send?.(m);
};

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const env = process.env;
  const need = (k: string): string => {
    const v = env[k];
    if (!v) throw new Error(`${k} is not set`);
    return v;
  };
  const mode = need('BENCH_WORKER_MODE');
  const taskQueue = need('BENCH_TASK_QUEUE');
  const address = need('BENCH_TEMPORAL_ADDRESS');
  const namespace = env.BENCH_NAMESPACE ?? 'default';
  let waiting = 0;
  let reported = 0;
  const worker =
    mode === 'amendctl'
      ? await createAmendctlWorker({
          temporal: temporalTarget({ address, namespace }),
          env,
          files: {
            taskQueue,
            targetsFile: need('BENCH_TARGETS'),
            rulesFile: need('BENCH_RULES'),
            approvalsFile: undefined,
          },
          worker: { shutdownGraceTime: '2s' },
        })
      : await createFloorWorker({
          address,
          namespace,
          taskQueue,
          dataConverter: dataConverter(env, loadCodecKeys(env)),
          bundle: { codePath: need('BENCH_FLOOR_BUNDLE') },
          onWaiting: () => void waiting++,
        });
  let ticks = 0;
  const timer = setInterval(() => {
    if (waiting !== reported) send({ type: 'waiting', count: (reported = waiting) });
    if (++ticks % 4 === 0) {
      const m = process.memoryUsage();
      const mb = (b: number): number => Math.round((b / 1024 / 1024) * 10) / 10;
      send({
        type: 'memory',
        memory: {
          rss: mb(m.rss),
          mainHeapTotal: mb(m.heapTotal),
          mainHeapUsed: mb(m.heapUsed),
          external: mb(m.external),
          arrayBuffers: mb(m.arrayBuffers),
        },
      });
    }
  }, 250);
  const stop = (): void => worker.shutdown();
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  process.once('disconnect', stop);
  const running = worker.run();
  send({ type: 'ready' });
  try {
    await running;
  } finally {
    clearInterval(timer);
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    send({ type: 'error', message: (err as Error)?.message ?? String(err) });
    process.stderr.write(`bench worker: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  },
);
