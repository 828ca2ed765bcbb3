/**
 * The bench's own embedded stack, on free loopback ports, in a fresh temporary folder: the
 * Temporal dev server (a new SQLite file, headless), a private PostgreSQL cluster
 * (scripts/local-postgres.sh: the `warehouse` target and the audit database) and
 * scim2-server (the `idp` target, from .cache/venv). The same servers the test harness
 * starts (test/harness/servers), started here from src/ so the bench (and npm run chaos,
 * which restarts the dev server on its SQLite file) runs from lib/.
 * Everything started is stopped by stop(), which is safe to call twice.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { newKeyList } from '../../codec';
import { findTemporalCli, freePort, startDevServer } from '../../devserver';

const run = promisify(execFile);
export const ROOT = resolve(__dirname, '..', '..', '..');
export const SCIM_BIN = join(ROOT, '.cache', 'venv', 'bin', 'scim2-server');

/** What the bench needs to know about the servers: the test harness's variable names, so the smoke test can pass its own. */
export interface StackEnv {
  AMENDCTL_CODEC_KEYS: string;
  AMENDCTL_TEST_TEMPORAL_ADDRESS: string;
  AMENDCTL_TEST_SCIM_URL: string;
  AMENDCTL_TEST_SCIM_TOKEN: string;
  AMENDCTL_TEST_PG_HOST: string;
  AMENDCTL_TEST_PG_PORT: string;
  AMENDCTL_TEST_PG_PASSWORD: string;
  /** A prebuilt amendctl workflow bundle (default: lib/workflow-bundle.js, made by npm run build). */
  workflowBundle?: string;
  /** Where the temporal CLI is (for the report). */
  temporalCli?: string;
  /** This run's folder: logs, bundles. */
  dir: string;
}

/** The dev server on a port and SQLite file of its own; restart() stops it and starts it again on both. */
export interface TemporalServer {
  cli: string;
  address: string;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface Stack {
  env: StackEnv;
  temporal: TemporalServer;
  stop(): Promise<void>;
}

/** The worker's environment for the reference targets on these servers (credentials only via env). */
export function referenceWorkerEnv(s: StackEnv): Record<string, string> {
  return {
    AMENDCTL_CODEC_KEYS: s.AMENDCTL_CODEC_KEYS,
    AMENDCTL_IDP_URL: s.AMENDCTL_TEST_SCIM_URL,
    AMENDCTL_IDP_TOKEN: s.AMENDCTL_TEST_SCIM_TOKEN,
    AMENDCTL_WAREHOUSE_HOST: s.AMENDCTL_TEST_PG_HOST,
    AMENDCTL_WAREHOUSE_PORT: s.AMENDCTL_TEST_PG_PORT,
    AMENDCTL_WAREHOUSE_PASSWORD: s.AMENDCTL_TEST_PG_PASSWORD,
    ...(s.workflowBundle ? { AMENDCTL_WORKFLOW_BUNDLE: s.workflowBundle } : {}),
  };
}

export { freePort };

/** SIGTERM, then SIGKILL after the grace period; resolves when the process has exited. */
export function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((res) => {
    const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(t);
      res();
    });
    child.kill('SIGTERM');
  });
}

async function startScim(dir: string): Promise<{ url: string; token: string; stop(): Promise<void> }> {
  if (!existsSync(SCIM_BIN)) throw new Error(`${SCIM_BIN} is missing: run bash scripts/setup.sh all (or: python)`);
  const port = await freePort();
  const token = randomBytes(18).toString('base64url');
  const fd = openSync(join(dir, 'scim.log'), 'a');
  const child = spawn(SCIM_BIN, ['--hostname', '127.0.0.1', '--port', String(port), `--bearer-token=${token}`], {
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  const url = `http://127.0.0.1:${port}/v2`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`scim2-server exited with code ${child.exitCode} (see ${join(dir, 'scim.log')})`);
    const ok = await fetch(`${url}/ServiceProviderConfig`, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(2000),
    }).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) {
      await stopChild(child);
      throw new Error(`scim2-server not ready after 30 s (see ${join(dir, 'scim.log')})`);
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  return { url, token, stop: () => stopChild(child) };
}

async function startPostgres(dir: string): Promise<{ port: number; password: string; stop(): Promise<void> }> {
  const port = await freePort();
  const script = join(ROOT, 'scripts', 'local-postgres.sh');
  const stop = async (): Promise<void> => {
    await run('bash', [script, 'stop', dir], { timeout: 60_000 }).catch(() => undefined);
  };
  try {
    await run('bash', [script, 'start', dir, String(port)], { timeout: 120_000 });
  } catch (err) {
    await stop();
    throw new Error(
      `PostgreSQL did not start (scripts/local-postgres.sh; bash scripts/setup.sh all installs it): ${(err as Error).message}`,
    );
  }
  return { port, password: readFileSync(join(dir, 'amendctl.password'), 'utf8').trim(), stop };
}

/** The Temporal dev server (headless) on a free port with `dir`/temporal.sqlite. */
export async function startTemporal(dir: string): Promise<TemporalServer> {
  const cli = await findTemporalCli();
  const options = {
    cli,
    port: await freePort(),
    headless: true,
    dbFile: join(dir, 'temporal.sqlite'),
    logFile: join(dir, 'temporal.log'),
  };
  let server = await startDevServer(options);
  return {
    cli,
    address: server.address,
    async restart() {
      await server.stop();
      server = await startDevServer(options);
    },
    stop: () => server.stop(),
  };
}

/** Start the three servers in parallel; on any failure, stop what did start and throw. */
export async function startStack(opts: { keepDir?: boolean } = {}): Promise<Stack> {
  const dir = mkdtempSync(join(tmpdir(), 'amendctl-bench-'));
  chmodSync(dir, 0o755); // PostgreSQL runs as `postgres` when we are root: it must reach its folder
  mkdirSync(join(dir, 'postgres'), { recursive: true });
  const stops: Array<() => Promise<void>> = [];
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await Promise.allSettled(stops.map((s) => s()));
    if (!opts.keepDir) rmSync(dir, { recursive: true, force: true });
  };
  const keys = newKeyList('bench');
  const started = await Promise.allSettled([
    (async () => {
      const server = await startTemporal(dir);
      stops.push(server.stop);
      return server;
    })(),
    (async () => {
      const pg = await startPostgres(join(dir, 'postgres'));
      stops.push(pg.stop);
      return pg;
    })(),
    (async () => {
      const scim = await startScim(dir);
      stops.push(scim.stop);
      return scim;
    })(),
  ]);
  const failed = started.flatMap((r) =>
    r.status === 'rejected' ? [String((r.reason as Error)?.message ?? r.reason)] : [],
  );
  if (failed.length > 0 || started.some((r) => r.status !== 'fulfilled')) {
    await stop();
    throw new Error(`the bench's servers did not start:\n  ${failed.join('\n  ')}`);
  }
  const [t, pg, scim] = started.map((r) => (r as PromiseFulfilledResult<unknown>).value) as [
    TemporalServer,
    { port: number; password: string },
    { url: string; token: string },
  ];
  return {
    temporal: t,
    env: {
      AMENDCTL_CODEC_KEYS: keys,
      AMENDCTL_TEST_TEMPORAL_ADDRESS: t.address,
      AMENDCTL_TEST_SCIM_URL: scim.url,
      AMENDCTL_TEST_SCIM_TOKEN: scim.token,
      AMENDCTL_TEST_PG_HOST: '127.0.0.1',
      AMENDCTL_TEST_PG_PORT: String(pg.port),
      AMENDCTL_TEST_PG_PASSWORD: pg.password,
      temporalCli: t.cli,
      dir,
    },
    stop,
  };
}
