/**
 * The chaos run's workers: `bin/amendctl worker` child processes, several at once on one task
 * queue (so each target queue too), each in a slot that starts it again whenever it ends,
 * after a short delay: SIGKILLed by the chaos, or exited on its own (counted, with what it
 * said last: a worker started while the dev server restarts, for one, exits at once). Output
 * goes to worker-N.log.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Connection } from '@temporalio/client';
import { ROOT, stopChild } from '../bench/e2e/stack';
import { sleep } from './clock';

export interface WorkerPoolOptions {
  count: number;
  address: string;
  taskQueue: string;
  /** The workers' environment beyond this process's own (targets, credentials, codec keys). */
  env: Record<string, string>;
  logDir: string;
  /** Milliseconds before a slot starts its worker again. */
  restartDelay(): number;
  log(line: string): void;
}

export interface WorkerExit {
  slot: number;
  code: number | null;
  signal: string | null;
  at: string;
  /** What it said last: its `amendctl: ...` error line, else its last line. */
  message: string;
  lastLines: string;
}

interface Slot {
  child?: ChildProcess;
  killed: boolean;
  timer?: NodeJS.Timeout;
}

export class WorkerPool {
  kills = 0;
  starts = 0;
  readonly exits: WorkerExit[] = [];
  private readonly slots: Slot[];
  private stopping = false;

  constructor(private readonly opts: WorkerPoolOptions) {
    this.slots = Array.from({ length: opts.count }, () => ({ killed: false }));
  }

  start(): void {
    this.slots.forEach((_, i) => this.launch(i));
  }

  /** Slots whose worker is running. */
  live(): number[] {
    return this.slots.flatMap((s, i) =>
      s.child && s.child.exitCode === null && s.child.signalCode === null ? [i] : [],
    );
  }

  /** SIGKILL the worker of `slot`; it starts again after the restart delay. */
  kill(slot: number): void {
    const s = this.slots[slot];
    if (!s?.child || s.child.exitCode !== null || s.child.signalCode !== null) return;
    s.killed = true;
    this.kills++;
    s.child.kill('SIGKILL');
  }

  /** Stop every worker (SIGTERM: they drain) and start none again. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const s of this.slots) clearTimeout(s.timer);
    await Promise.all(this.slots.map((s) => (s.child ? stopChild(s.child, 10_000) : undefined)));
  }

  private logFile(slot: number): string {
    return join(this.opts.logDir, `worker-${slot + 1}.log`);
  }

  private launch(slot: number): void {
    if (this.stopping) return;
    const s = this.slots[slot]!;
    const fd = openSync(this.logFile(slot), 'a');
    const child = spawn(
      process.execPath,
      [join(ROOT, 'bin', 'amendctl'), 'worker', '--address', this.opts.address, '--task-queue', this.opts.taskQueue],
      {
        env: { ...process.env, ...this.opts.env },
        stdio: ['ignore', fd, fd],
      },
    );
    closeSync(fd);
    this.starts++;
    s.child = child;
    s.killed = false;
    child.once('exit', (code, signal) => {
      if (this.stopping) return;
      if (!s.killed) {
        const lastLines = this.tail(slot);
        const lines = lastLines.split('\n');
        const message = [...lines].reverse().find((l) => l.startsWith('amendctl:')) ?? lines[lines.length - 1] ?? '';
        this.exits.push({ slot: slot + 1, code, signal, at: new Date().toISOString(), message, lastLines });
        this.opts.log(`worker ${slot + 1} exited by itself (code ${code}, signal ${signal}): ${message}`);
      }
      s.timer = setTimeout(() => this.launch(slot), s.killed ? this.opts.restartDelay() : 1000);
    });
  }

  private tail(slot: number): string {
    try {
      return readFileSync(this.logFile(slot), 'utf8').trimEnd().split('\n').slice(-8).join('\n');
    } catch {
      return '';
    }
  }
}

/** Until `count` workers poll the workflow task queue (Temporal's own list of its pollers). */
export async function waitForPollers(
  connection: Connection,
  namespace: string,
  taskQueue: string,
  count: number,
  timeoutMs = 120_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await connection.workflowService
      .describeTaskQueue({ namespace, taskQueue: { name: taskQueue }, taskQueueType: 1 /* TASK_QUEUE_TYPE_WORKFLOW */ })
      .catch(() => undefined);
    const polling = r?.pollers?.length ?? 0;
    if (polling >= count) return;
    if (Date.now() > deadline)
      throw new Error(
        `${polling} of ${count} workers poll task queue ${taskQueue} after ${timeoutMs / 1000} s (see worker-N.log)`,
      );
    await sleep(250);
  }
}
