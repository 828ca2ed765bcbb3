/**
 * The embedded default: Temporal's dev server (from the Temporal CLI) with a SQLite file,
 * so workflows survive a restart, the Web UI, and our search attributes registered.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, closeSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { connect, createServer } from 'node:net';
import { promisify } from 'node:util';
import { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTES } from '../workflows/definitions';
import { DRIFT_SEARCH_ATTRIBUTES } from '../workflows/reconcile-definitions';

const ROOT = resolve(__dirname, '..', '..');

/** The Temporal CLI: $TEMPORAL_CLI, `temporal` on PATH, .cache/bin, or built with `go install` (scripts/temporal-cli.sh). */
export async function findTemporalCli(): Promise<string> {
  const { stdout } = await promisify(execFile)('bash', [resolve(ROOT, 'scripts', 'temporal-cli.sh')], {
    maxBuffer: 1 << 20,
    timeout: 20 * 60_000,
  });
  return stdout.trim();
}

export interface DevServerOptions {
  cli?: string;
  dbFile?: string;
  ip?: string;
  port?: number;
  uiPort?: number;
  /** Omit the Web UI. */
  headless?: boolean;
  uiCodecEndpoint?: string;
  logFile?: string;
}

export interface DevServer {
  address: string;
  uiUrl: string | undefined;
  process: ChildProcess;
  stop(): Promise<void>;
}

export async function startDevServer(opts: DevServerOptions = {}): Promise<DevServer> {
  const cli = opts.cli ?? (await findTemporalCli());
  const ip = opts.ip ?? '127.0.0.1';
  const port = opts.port ?? 7233;
  const uiPort = opts.uiPort ?? 8233;
  const dbFile = opts.dbFile ?? resolve(ROOT, '.data', 'temporal.sqlite');
  mkdirSync(dirname(dbFile), { recursive: true });
  const args = [
    'server',
    'start-dev',
    '--ip',
    ip,
    '--port',
    String(port),
    '--db-filename',
    dbFile,
    '--log-level',
    'warn',
  ];
  if (opts.headless) args.push('--headless');
  else args.push('--ui-port', String(uiPort), '--ui-ip', ip);
  if (opts.uiCodecEndpoint) args.push('--ui-codec-endpoint', opts.uiCodecEndpoint);
  for (const [name, type] of Object.entries({ ...SEARCH_ATTRIBUTES, ...DRIFT_SEARCH_ATTRIBUTES }))
    args.push('--search-attribute', `${name}=${type}`);
  const logFile = opts.logFile ?? resolve(dirname(dbFile), 'temporal.log');
  const fd = openSync(logFile, 'a');
  const child = spawn(cli, args, { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const stop = (): Promise<void> =>
    new Promise((res) => {
      if (child.exitCode !== null || child.signalCode !== null) return res();
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      child.once('exit', () => {
        clearTimeout(t);
        res();
      });
      child.kill('SIGTERM');
    });
  const deadline = Date.now() + 60_000;
  while (!(await portOpen(ip, port))) {
    if (child.exitCode !== null)
      throw new Error(`the Temporal dev server exited with code ${child.exitCode}; see ${logFile}`);
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`the Temporal dev server did not open ${ip}:${port} within 60 s; see ${logFile}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  await waitForNamespace(`${ip}:${port}`, 'default', deadline, child, logFile);
  return {
    address: `${ip}:${port}`,
    uiUrl: opts.headless ? undefined : `http://${ip === '0.0.0.0' ? 'localhost' : ip}:${uiPort}`,
    process: child,
    stop,
  };
}

/** The port opens before the namespace is ready: wait until the frontend answers for it. */
async function waitForNamespace(
  address: string,
  namespace: string,
  deadline: number,
  child: ChildProcess,
  logFile: string,
): Promise<void> {
  const connection = await Connection.connect({ address, connectTimeout: '5s' });
  try {
    for (;;) {
      try {
        await connection.workflowService.describeNamespace({ namespace });
        return;
      } catch (err) {
        if (child.exitCode !== null)
          throw new Error(`the Temporal dev server exited with code ${child.exitCode}; see ${logFile}`);
        if (Date.now() > deadline) throw new Error(`namespace ${namespace} not ready: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  } finally {
    await connection.close();
  }
}

/** Whether something accepts TCP connections on host:port. */
/** A loopback port free at the time of asking (for a server started next). */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => res(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

export function portOpen(host: string, port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      res(true);
    });
    s.once('error', () => res(false));
  });
}
