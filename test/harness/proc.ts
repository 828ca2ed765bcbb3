/**
 * Process helpers for the test harness: free loopback ports, start a server and wait
 * until it answers, stop it (TERM, then KILL), and a log file per server under .cache/test-logs.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { freePort, portOpen as devserverPortOpen } from '../../src/devserver';
import { mkdirSync, openSync, closeSync } from 'node:fs';
import { join } from 'node:path';

export const ROOT = join(__dirname, '..', '..');
export const CACHE = join(ROOT, '.cache');
export const LOG_DIR = join(CACHE, 'test-logs');

/** A folder of this run's own (servers' data), so runs on one machine never share state. */
export function runDir(name: string): string {
  return join(CACHE, 'test-runs', `${process.env.AMENDCTL_TEST_RUN_ID ?? process.pid}`, name);
}

export { freePort };

export function portOpen(port: number, host = '127.0.0.1'): Promise<boolean> {
  return devserverPortOpen(host, port);
}

export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 60_000,
  child?: ChildProcess,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child && child.exitCode !== null)
      throw new Error(`${what}: exited with code ${child.exitCode} before it was ready (see ${LOG_DIR})`);
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${what}: not ready after ${timeoutMs} ms (see ${LOG_DIR})`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

export interface Started {
  child: ChildProcess;
  stop(): Promise<void>;
}

/** Spawn a server with its output in .cache/test-logs/<name>.log. */
export function startProcess(name: string, cmd: string, args: string[], opts: SpawnOptions = {}): Started {
  mkdirSync(LOG_DIR, { recursive: true });
  const fd = openSync(join(LOG_DIR, `${name}.log`), 'a');
  const child = spawn(cmd, args, { stdio: ['ignore', fd, fd], ...opts });
  closeSync(fd);
  return { child, stop: () => stopProcess(child) };
}

export function stopProcess(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
