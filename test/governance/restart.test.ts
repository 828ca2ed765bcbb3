/**
 * Killing the worker and restarting the Temporal dev server (same SQLite file) while
 * amendments are scheduled, queued and pending approval loses none of them: each reaches
 * the state it would have reached without the restart. This test needs a dev server of its
 * own (it restarts it), the one exception to the run's shared servers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { AmendctlClient, temporalTarget, type AmendmentView } from '../../src/client';
import { startDevServer, type DevServer } from '../../src/devserver';
import { need } from '../harness/env';
import { freePort, LOG_DIR, ROOT, runDir, stopProcess } from '../harness/proc';
import { baseline, changes, customer } from '../workflows/fixtures';
import { pgSnapshot, referenceEnv, uniqueQueue } from '../workflows/stack';

let server: DevServer;
let worker: ChildProcess | undefined;
let client: AmendctlClient | undefined;
const dir = runDir('restart-temporal');
const dbFile = join(dir, 'temporal.sqlite');
const taskQueue = uniqueQueue('restart');
let port = 0;

async function startServer(): Promise<void> {
  mkdirSync(LOG_DIR, { recursive: true });
  server = await startDevServer({
    cli: need('AMENDCTL_TEST_TEMPORAL_CLI'),
    port,
    dbFile,
    headless: true,
    logFile: join(LOG_DIR, 'temporal-restart.log'),
  });
}

function startWorker(): ChildProcess {
  return spawn(
    process.execPath,
    [join(ROOT, 'bin', 'amendctl'), 'worker', '--address', server.address, '--task-queue', taskQueue],
    {
      env: { ...process.env, ...referenceEnv() },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
}

async function until(id: string, status: AmendmentView['status']): Promise<AmendmentView> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const v = await client!.getStatus(id).catch(() => undefined);
    if (v?.status === status) return v;
    if (Date.now() > deadline) throw new Error(`${id}: ${v?.status ?? '?'} (${v?.reason ?? ''}), expected ${status}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

beforeAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  port = await freePort();
  await startServer();
});
afterAll(async () => {
  if (worker) await stopProcess(worker);
  await client?.close();
  await server?.stop();
});

test('scheduled, queued and pending-approval amendments survive a killed worker and a restarted server', async () => {
  worker = startWorker();
  client = await AmendctlClient.connect(temporalTarget({ address: server.address }), taskQueue);
  const p = customer('rsp');
  const s = customer('rss');
  await client.submitAmendment(baseline(p, [['bob', 'member']]));
  await client.submitAmendment(baseline(s, [['carl', 'member']]));
  expect((await client.waitForResult(`${p.id}-001`)).status).toBe('completed');
  expect((await client.waitForResult(`${s.id}-001`)).status).toBe('completed');

  const pending = changes(
    p,
    2,
    [{ op: 'add', path: 'namedUsers', value: { email: p.email('alice'), name: 'Alice', role: 'admin' } }],
    { submittedBy: 'sam' },
  );
  const queued = changes(p, 3, [
    { op: 'add', path: 'namedUsers', value: { email: p.email('dave'), name: 'Dave', role: 'member' } },
  ]);
  const effectiveAt = new Date(Date.now() + 25_000).toISOString();
  const scheduled = {
    ...changes(s, 2, [
      { op: 'add', path: 'namedUsers', value: { email: s.email('erin'), name: 'Erin', role: 'viewer' } },
    ]),
    effectiveAt,
  };
  await client.submitAmendment(queued);
  await client.submitAmendment(pending);
  await client.submitAmendment(scheduled);
  await until(pending.amendmentId, 'pending_approval');
  await until(queued.amendmentId, 'queued');
  await until(scheduled.amendmentId, 'scheduled');

  // Kill the worker, stop the server; start both again on the same SQLite file.
  worker.kill('SIGKILL');
  await new Promise((r) => worker!.once('exit', r));
  await client.close();
  client = undefined;
  await server.stop();
  await startServer();
  worker = startWorker();
  client = await AmendctlClient.connect(temporalTarget({ address: server.address }), taskQueue);

  expect((await until(pending.amendmentId, 'pending_approval')).reason).toMatch(/waiting for 1 more approval/);
  expect((await client.getStatus(queued.amendmentId)).status).toBe('queued');
  expect((await client.getStatus(scheduled.amendmentId)).status).toBe('scheduled');
  expect(Object.keys(await pgSnapshot(p.domain))).toEqual([p.email('bob')]);

  await client.approveNow(pending.amendmentId, { by: 'dana' });
  expect((await client.waitForResult(pending.amendmentId)).status).toBe('completed');
  expect((await client.waitForResult(queued.amendmentId)).status).toBe('completed');
  const sv = await client.waitForResult(scheduled.amendmentId);
  expect(sv.status).toBe('completed');
  expect(Date.parse(sv.finishedAt!)).toBeGreaterThanOrEqual(Date.parse(effectiveAt));
  expect(Object.keys(await pgSnapshot(p.domain)).sort()).toEqual([p.email('alice'), p.email('bob'), p.email('dave')]);
  expect(Object.keys(await pgSnapshot(s.domain)).sort()).toEqual([s.email('carl'), s.email('erin')]);
}, 180_000);
