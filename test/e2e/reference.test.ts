/**
 * The reference policy end to end through the `amendctl` CLI (the built one), on the real
 * Temporal dev server, PostgreSQL and scim2-server: every example amendment in order, each
 * target read back after each step and compared with shared/REFERENCE-POLICY.md.
 */
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RawScim } from '../harness/servers/scim';
import { need } from '../harness/env';
import { freePort, ROOT } from '../harness/proc';
import { sampleSum } from '../harness/prometheus';
import { until } from '../harness/until';
import { type OpsServer, startOpsServer } from '../../src/observability/server';
import { pgSnapshot, referenceEnv, startStack, type Stack } from '../workflows/stack';

const EXAMPLES = join(ROOT, 'examples', 'reference', 'amendments');
let stack: Stack;
let scim: RawScim;
let ops: OpsServer;

beforeAll(async () => {
  stack = await startStack('reference');
  scim = new RawScim(need('AMENDCTL_TEST_SCIM_URL'), need('AMENDCTL_TEST_SCIM_TOKEN'));
  // The worker's health and metrics endpoint (amendctl worker --metrics-port), scraped after the story.
  ops = await startOpsServer({ port: await freePort(), host: '127.0.0.1', ready: () => stack.worker!.ready() });
});
afterAll(async () => {
  await ops?.close();
  await stack?.stop();
});

const scrape = (): Promise<string> => fetch(`${ops.url}/metrics`).then((r) => r.text());

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

function amendctl(...args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(ROOT, 'bin', 'amendctl'), ...args],
      {
        env: {
          ...process.env,
          ...referenceEnv(),
          TEMPORAL_ADDRESS: need('AMENDCTL_TEST_TEMPORAL_ADDRESS'),
          AMENDCTL_TASK_QUEUE: stack.taskQueue,
        },
      },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** Submit with --wait --json; approve with our CLI when it waits for approval. */
async function submit(
  file: string,
  approver?: string,
): Promise<{
  code: number;
  view: {
    status: string;
    operations: Array<{ target: string; action: string; subject: string; outcome: string }>;
    reason?: string;
  };
  stderr: string;
}> {
  const child = spawn(
    process.execPath,
    [join(ROOT, 'bin', 'amendctl'), 'submit', join(EXAMPLES, file), '--wait', '--json'],
    {
      env: {
        ...process.env,
        ...referenceEnv(),
        TEMPORAL_ADDRESS: need('AMENDCTL_TEST_TEMPORAL_ADDRESS'),
        AMENDCTL_TASK_QUEUE: stack.taskQueue,
      },
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const id = (JSON.parse(readFileSync(join(EXAMPLES, file), 'utf8')) as { amendmentId: string }).amendmentId;
  if (approver) {
    await until(
      `${id} pending approval (amendctl status)`,
      async () => {
        const s = await amendctl('status', id, '--json');
        const status = s.stdout
          ? (JSON.parse(s.stdout) as { status: string }).status
          : `exit ${s.code}: ${s.stderr.trim()}`;
        if (status !== 'pending_approval') throw new Error(`status ${status}`);
        return status;
      },
      60_000,
    );
    const a = await amendctl('approve', id, '--by', approver, '--comment', 'matches the signed order form');
    expect(a.code).toBe(0);
  }
  const code = await new Promise<number>((r) => child.once('exit', (c) => r(c ?? 1)));
  return { code, view: JSON.parse(stdout), stderr };
}

const E = (u: string) => `${u}@acme.com`;
async function idp(user: string) {
  const a = await scim.readBack(E(user));
  return (
    a && {
      active: a.active,
      groups: a.groups,
      displayName: a.attributes.displayName,
      externalId: a.attributes.externalId,
    }
  );
}

test('the reference story, amendment by amendment, leaves both targets as the policy says, and /metrics counts it', async () => {
  const metricsBefore = await scrape(); // this process's counters may already hold earlier test files' amendments
  const views: Array<Awaited<ReturnType<typeof submit>>['view']> = [];
  const story = async (file: string, approver?: string) => {
    const out = await submit(file, approver);
    views.push(out.view);
    return out;
  };
  // 1. Baseline: grants admin, so it waits for approval.
  let r = await story('01-baseline.json', 'dana');
  expect(r.code).toBe(0);
  expect(r.view.status).toBe('completed');
  expect(r.view.operations.length).toBeGreaterThan(0);
  expect(r.view.operations.every((o) => ['target', 'action', 'subject', 'outcome'].every((k) => k in o))).toBe(true);
  expect(await pgSnapshot('acme.com')).toEqual({
    [E('alice')]: { login: true, memberOf: ['app_admin'] },
    [E('bob')]: { login: true, memberOf: ['app_write'] },
    [E('carol')]: { login: true, memberOf: ['app_read'] },
  });
  expect(await idp('alice')).toEqual({
    active: true,
    groups: ['acme-admins', 'acme-mod-analytics'],
    displayName: 'Alice Adams',
    externalId: 'acme:alice@acme.com',
  });
  expect((await idp('carol'))?.groups).toEqual(['acme-mod-analytics', 'acme-viewers']);

  // 2. Dave joins as a member; module billing added for everyone.
  r = await story('02-add-dave-and-billing.json');
  expect(r.view.status).toBe('completed');
  expect((await pgSnapshot('acme.com'))[E('dave')]).toEqual({ login: true, memberOf: ['app_write'] });
  for (const u of ['alice', 'bob', 'carol', 'dave']) expect((await idp(u))?.groups).toContain('acme-mod-billing');

  // 3. Carol becomes a member; Bob's name changes.
  r = await story('03-role-and-name.json');
  expect(r.view.status).toBe('completed');
  expect((await pgSnapshot('acme.com'))[E('carol')]).toEqual({ login: true, memberOf: ['app_write'] });
  expect((await idp('carol'))?.groups).toEqual(['acme-members', 'acme-mod-analytics', 'acme-mod-billing']);
  expect((await idp('bob'))?.displayName).toBe('Robert Brown');

  // 4. Suspended: everyone deactivated, memberships kept.
  r = await story('04-suspend.json');
  expect(r.view.status).toBe('completed');
  let pg = await pgSnapshot('acme.com');
  expect(Object.values(pg).map((x) => x.login)).toEqual([false, false, false, false]);
  expect(pg[E('alice')]!.memberOf).toEqual(['app_admin']);
  expect(await idp('alice')).toMatchObject({
    active: false,
    groups: ['acme-admins', 'acme-mod-analytics', 'acme-mod-billing'],
  });

  // 5. Back to active.
  r = await story('05-reactivate.json');
  expect(r.view.status).toBe('completed');
  expect(Object.values(await pgSnapshot('acme.com')).map((x) => x.login)).toEqual([true, true, true, true]);
  expect((await idp('dave'))?.active).toBe(true);

  // 6. Too many named users for the seats: refused before anything changes, naming both numbers.
  const before = await pgSnapshot('acme.com');
  r = await story('06-too-many-users.invalid.json');
  expect(r.code).toBe(1);
  expect(r.view.status).toBe('invalid');
  expect(r.stderr).toMatch(/6.*5|5.*6/);
  expect(await pgSnapshot('acme.com')).toEqual(before);
  expect(await idp('erin')).toBeNull();

  // 7. Reverses 05: suspended again.
  r = await story('07-reverse-05.json');
  expect(r.view.status).toBe('completed');
  pg = await pgSnapshot('acme.com');
  expect(Object.values(pg).map((x) => x.login)).toEqual([false, false, false, false]);
  expect((await idp('bob'))?.active).toBe(false);

  // 8. Terminated (needs approval): deactivated and out of every group and role.
  r = await story('08-terminate.json', 'dana');
  expect(r.view.status).toBe('completed');
  expect(await pgSnapshot('acme.com')).toEqual({
    [E('alice')]: { login: false, memberOf: [] },
    [E('bob')]: { login: false, memberOf: [] },
    [E('carol')]: { login: false, memberOf: [] },
    [E('dave')]: { login: false, memberOf: [] },
  });
  for (const u of ['alice', 'bob', 'carol', 'dave']) expect(await idp(u)).toMatchObject({ active: false, groups: [] });

  // /metrics (issue 14): seven amendments completed, one invalid; the operations applied per target as the views say.
  const after = await scrape();
  const delta = (name: string, labels: Record<string, string>) =>
    sampleSum(after, name, labels) - sampleSum(metricsBefore, name, labels);
  expect(views.map((v) => v.status)).toEqual([
    'completed',
    'completed',
    'completed',
    'completed',
    'completed',
    'invalid',
    'completed',
    'completed',
  ]);
  expect(delta('amendctl_amendments_total', { status: 'completed' })).toBe(7);
  expect(delta('amendctl_amendments_total', { status: 'invalid' })).toBe(1);
  for (const target of ['idp', 'warehouse']) {
    const applied = views
      .flatMap((v) => v.operations)
      .filter((o) => o.target === target && o.outcome === 'applied').length;
    expect(applied).toBeGreaterThan(10);
    expect({ target, applied: delta('amendctl_operations_total', { target, outcome: 'applied' }) }).toEqual({
      target,
      applied,
    });
  }
  expect(delta('amendctl_operations_total', { outcome: 'failed' })).toBe(0);
}, 240_000);

test('bad input is refused with the file, the path and what was expected', async () => {
  const r = await amendctl('submit', join(ROOT, 'package.json'));
  expect(r.code).toBe(2);
  expect(r.stderr).toContain('package.json');
  expect(r.stderr).toMatch(/amendmentId/);
  expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
});
