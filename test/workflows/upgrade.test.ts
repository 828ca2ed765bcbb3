/**
 * Upgrading the worker while an amendment runs (issue 9, point 7): an amendment started by
 * the previous release's worker, on the previous release's workflow code, waits for
 * approval; that worker stops and the current worker takes over; the amendment finishes on
 * its original type `amendmentWorkflow` with the targets right, and a later amendment of the
 * same contract, started as the current type, applies after it through the contract workflow.
 * And the same for the step from `amendmentV2` to `amendmentV3`: an amendmentV2 run waiting for
 * its effective date on the release before amendmentV3 finishes, on amendmentV2, on the current worker.
 * And from `amendmentV3` to `amendmentV4` (the late turn keeper): an amendmentV3 run holding its
 * contract's turn, pending approval, with the keeper it started first, finishes on amendmentV3
 * after the upgrade, and the next amendment of the contract runs as amendmentV4 after it.
 *
 * Real servers: the Temporal dev server, PostgreSQL and scim2-server.
 *
 * The previous release's workflow code is the commit before the v2 change, taken from git
 * (its src/workflows and everything they import) and bundled as that release bundled it.
 * Where that commit is not in the checkout, the frozen copy in this tree stands in
 * (test/workflows/previous-release).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { createHash } from 'node:crypto';
import { bundleWorkflowCode, type WorkerOptions } from '@temporalio/worker';
import {
  AMENDMENT_WORKFLOW_TYPE,
  AmendctlClient,
  amendmentWorkflowId,
  type AmendmentView,
  type AmendmentWorkflowInput,
  contractWorkflowId,
  SA,
  temporalTarget,
  type TemporalTarget,
} from '../../src/client';
import { AmendmentSchema } from '../../src/domain/amendment';
import { canonicalJson } from '../../src/domain/json';
import { createAmendctlWorker, type AmendctlWorker } from '../../src/worker';
import { need } from '../harness/env';
import { ROOT, runDir } from '../harness/proc';
import { RawScim } from '../harness/servers/scim';
import { baseline, changes, customer } from './fixtures';
import { pgSnapshot, REFERENCE_RULES, REFERENCE_TARGETS, referenceEnv, uniqueQueue } from './stack';

/** The last commit of the release whose only amendment type was `amendmentWorkflow`. */
const PREVIOUS_RELEASE = 'e3675d3';
/** The last commit whose client started `amendmentV2` (before amendmentV3 settled its patches). */
const V2_RELEASE = '21c9ba0';
/** The last commit whose client started `amendmentV3` (its keeper started before its turn). */
const V3_RELEASE = '78b415b';

let temporal: TemporalTarget;
let taskQueue: string;
let client: AmendctlClient;
let scim: RawScim;
let previous: { codePath: string; source: string };
const running: Array<{ w: AmendctlWorker; done: Promise<void> }> = [];

beforeAll(async () => {
  Object.assign(process.env, referenceEnv()); // connectors read credentials from the worker's environment
  temporal = temporalTarget({ address: need('AMENDCTL_TEST_TEMPORAL_ADDRESS'), namespace: 'default' });
  taskQueue = uniqueQueue('upgrade');
  client = await AmendctlClient.connect(temporal, taskQueue);
  scim = new RawScim(need('AMENDCTL_TEST_SCIM_URL'), need('AMENDCTL_TEST_SCIM_TOKEN'));
  previous = await bundlePreviousRelease(runDir('upgrade-previous-release'));
  process.stdout.write(`  upgrade: the previous release's workflow code from ${previous.source}\n`);
}, 120_000);

afterAll(async () => {
  for (const r of running) r.w.shutdown();
  await Promise.allSettled(running.map((r) => r.done));
  await client?.close();
});

test('an amendment started on the previous workflow code completes after the worker is upgraded; the next one runs as the current type after it', async () => {
  const c = customer('upgrade');

  // ---- the previous release's worker: only amendmentWorkflow and contractWorkflow ----
  const old = await startWorker('amendctl-previous-release', { workflowBundle: { codePath: previous.codePath } });
  const first = baseline(
    c,
    [
      ['alice', 'admin'],
      ['bob', 'member'],
    ],
    { submittedBy: 'sam' },
  );
  await startPreviousType(first);
  let v1 = await until(
    first.amendmentId,
    (v) => v.status === 'pending_approval',
    'pending approval on the previous release',
  );
  expect(v1.approval?.reasons.map((r) => r.message).join()).toMatch(/admin/);
  expect(await pgSnapshot(c.domain)).toEqual({});
  expect(await workflowType(amendmentWorkflowId(first.amendmentId))).toBe('amendmentWorkflow');

  // ---- the upgrade: the previous worker stops, the current one (the normal bundle) starts ----
  await stopWorker(old);
  await startWorker('amendctl-current');

  // The current worker replays the previous code's history (a query is answered by a worker).
  v1 = await until(
    first.amendmentId,
    (v) => v.status === 'pending_approval' && !v.reason?.startsWith('no worker answered'),
    'answered by the current worker',
  );
  expect(v1.approval?.approvals).toEqual([]);

  // A new amendment of the same contract starts as the current type and waits for sequence 1, the old type's.
  const second = changes(c, 2, [
    { op: 'add', path: 'namedUsers', value: { email: c.email('erin'), name: 'Erin', role: 'member' } },
  ]);
  expect((await client.submitAmendment(second)).duplicate).toBe(false);
  expect(await workflowType(amendmentWorkflowId(second.amendmentId))).toBe(AMENDMENT_WORKFLOW_TYPE);
  const queued = await until(
    second.amendmentId,
    (v) => v.status === 'queued' && /sequence/.test(v.reason ?? ''),
    'queued behind sequence 1',
  );
  expect(queued.operations).toEqual([]);
  const line = await eventually(
    'the contract has sequence 2 waiting',
    async () => (await client.getContract(c.contractId)).view,
    (v) => v.waiting.length > 0,
  );
  expect(line).toMatchObject({
    appliedSequence: 0,
    holder: first.amendmentId,
    waiting: [{ amendmentId: second.amendmentId, sequence: 2 }],
  });

  // The previous code's approval rules hold on the current worker: the submitter's own approval is ignored.
  await client.approve(first.amendmentId, { by: 'sam' });
  v1 = await until(first.amendmentId, (v) => (v.approval?.ignored.length ?? 0) > 0, "the submitter's approval ignored");
  expect(v1.status).toBe('pending_approval');
  expect(v1.approval?.ignored.map((i) => i.why).join()).toMatch(/separation of duties/);
  await client.approve(first.amendmentId, { by: 'dana', comment: 'approved after the upgrade' });

  const done1 = await client.waitForResult(first.amendmentId);
  expect(done1.status).toBe('completed');
  expect(done1.approval?.approvals).toEqual([
    expect.objectContaining({ by: 'dana', comment: 'approved after the upgrade' }),
  ]);
  expect(done1.operations.length).toBeGreaterThan(0);
  expect(done1.operations.every((o) => o.outcome === 'applied' || o.outcome === 'unchanged')).toBe(true);
  expect(done1.planHash).toBeUndefined(); // the first release's view: every operation in the workflow
  const done2 = await client.waitForResult(second.amendmentId);
  expect(done2.status).toBe('completed');
  expect(done2.operationsTotal).toBeGreaterThan(0); // the bounded view (since amendmentV2)
  expect(Date.parse(done2.finishedAt!)).toBeGreaterThan(Date.parse(done1.finishedAt!));

  // Each kept its type; the old one's workflow tasks ran on both workers, the new one's on the current only.
  expect(await workflowType(amendmentWorkflowId(first.amendmentId))).toBe('amendmentWorkflow');
  expect(await workflowType(amendmentWorkflowId(second.amendmentId))).toBe(AMENDMENT_WORKFLOW_TYPE);
  expect(await taskWorkers(amendmentWorkflowId(first.amendmentId))).toEqual([
    'amendctl-current',
    'amendctl-previous-release',
  ]);
  expect(await taskWorkers(amendmentWorkflowId(second.amendmentId))).toEqual(['amendctl-current']);
  expect(await taskWorkers(contractWorkflowId(c.contractId))).toEqual([
    'amendctl-current',
    'amendctl-previous-release',
  ]);

  // The contract applied both, in order: the old type's sequence 1, then the new type's sequence 2.
  const contract = await client.getContract(c.contractId);
  expect(contract.view).toMatchObject({ appliedSequence: 2, lastAmendmentId: second.amendmentId, waiting: [] });
  expect(contract.view.holder).toBeUndefined();
  expect(contract.view.recent.map((r) => [r.amendmentId, r.sequence])).toEqual([
    [first.amendmentId, 1],
    [second.amendmentId, 2],
  ]);
  expect(contract.applied?.contract.namedUsers.map((u) => u.email).sort()).toEqual([
    c.email('alice'),
    c.email('bob'),
    c.email('erin'),
  ]);

  // The targets, read back independently of the connectors.
  expect(await pgSnapshot(c.domain)).toEqual({
    [c.email('alice')]: { login: true, memberOf: ['app_admin'] },
    [c.email('bob')]: { login: true, memberOf: ['app_write'] },
    [c.email('erin')]: { login: true, memberOf: ['app_write'] },
  });
  expect(await scim.readBack(c.email('alice'))).toMatchObject({
    active: true,
    groups: [`${c.id}-admins`, `${c.id}-mod-analytics`],
  });
  expect(await scim.readBack(c.email('bob'))).toMatchObject({
    active: true,
    groups: [`${c.id}-members`, `${c.id}-mod-analytics`],
  });
  expect(await scim.readBack(c.email('erin'))).toMatchObject({
    active: true,
    groups: [`${c.id}-members`, `${c.id}-mod-analytics`],
  });
}, 180_000);

test('an amendmentV2 run started on the release before amendmentV3 finishes on amendmentV2 after the upgrade', async () => {
  const old = await workerOnRelease(V2_RELEASE, 'v2');
  const c = customer('upgrade-v2');
  const first = baseline(c, [['carol', 'member']]);
  // Due in a few seconds: it waits in a timer on the old worker and fires on the new one.
  const effectiveAt = new Date(Date.now() + 8_000).toISOString();
  await startType('amendmentV2', { ...first, effectiveAt });
  await until(first.amendmentId, (v) => v.status === 'scheduled', 'scheduled on the v2 release');

  await stopWorker(old);
  await startWorker('amendctl-current');
  const done = await client.waitForResult(first.amendmentId);
  expect(done.status).toBe('completed');
  await expectRanOn(first.amendmentId, 'amendmentV2', 'v2');
  // It kept amendmentV2's patches (their markers), which amendmentV3 does not write.
  const markers = (
    (await client.client.workflow.getHandle(amendmentWorkflowId(first.amendmentId)).fetchHistory()).events ?? []
  )
    .map((e) => e.markerRecordedEventAttributes?.markerName)
    .filter((m) => m === 'core_patch');
  expect(markers).toHaveLength(2);
  expect(await pgSnapshot(c.domain)).toEqual({ [c.email('carol')]: { login: true, memberOf: ['app_write'] } });
}, 180_000);

test('an amendmentV3 run holding its turn on the release before amendmentV4 finishes on amendmentV3 after the upgrade; the next one runs as amendmentV4', async () => {
  const old = await workerOnRelease(V3_RELEASE, 'v3');
  const c = customer('upgrade-v3');
  const first = baseline(c, [['ada', 'admin']], { submittedBy: 'sam' });
  await startType('amendmentV3', first);
  await until(first.amendmentId, (v) => v.status === 'pending_approval', 'pending approval on the v3 release');
  // amendmentV3 started its keeper before it asked for its turn.
  const keeper = client.client.workflow.getHandle(`${amendmentWorkflowId(first.amendmentId)}.keeper`);
  expect((await keeper.describe()).status.name).toBe('RUNNING');

  await stopWorker(old);
  await startWorker('amendctl-current');
  const second = changes(c, 2, [
    { op: 'add', path: 'namedUsers', value: { email: c.email('bob'), name: 'Bob', role: 'member' } },
  ]);
  await client.submitAmendment(second);
  expect(await workflowType(amendmentWorkflowId(second.amendmentId))).toBe('amendmentV4');
  await until(second.amendmentId, (v) => v.status === 'queued', 'queued behind the v3 holder');
  await client.approve(first.amendmentId, { by: 'dana' });
  const done1 = await client.waitForResult(first.amendmentId);
  expect(done1.status).toBe('completed');
  const done2 = await client.waitForResult(second.amendmentId);
  expect(done2.status).toBe('completed');
  await expectRanOn(first.amendmentId, 'amendmentV3', 'v3');
  expect(await taskWorkers(contractWorkflowId(c.contractId))).toEqual(['amendctl-current', 'amendctl-v3-release']);
  // The keeper the v3 run started reported its close; the contract applied both, in order.
  expect((await keeper.describe()).status.name).not.toBe('RUNNING');
  const contract = await client.getContract(c.contractId);
  expect(contract.view).toMatchObject({ appliedSequence: 2, lastAmendmentId: second.amendmentId, waiting: [] });
  expect(contract.view.holder).toBeUndefined();
  expect(contract.view.reclaimed ?? []).toEqual([]);
  expect(await pgSnapshot(c.domain)).toEqual({
    [c.email('ada')]: { login: true, memberOf: ['app_admin'] },
    [c.email('bob')]: { login: true, memberOf: ['app_write'] },
  });
}, 180_000);

// ---- helpers ---------------------------------------------------------------------------

async function startWorker(identity: string, worker: Partial<WorkerOptions> = {}): Promise<AmendctlWorker> {
  const w = await createAmendctlWorker({
    temporal,
    env: { ...process.env },
    files: { taskQueue, targetsFile: REFERENCE_TARGETS, rulesFile: REFERENCE_RULES },
    worker: { shutdownGraceTime: '2s', identity, ...worker },
  });
  running.push({ w, done: w.run() });
  return w;
}

/** The only worker on the queue (the test before left its current worker there): a release's, from git, as `amendctl-NAME-release`. */
async function workerOnRelease(commit: string, name: string): Promise<AmendctlWorker> {
  const release = await bundleRelease(commit, runDir(`upgrade-${name}-release`));
  expect(release).toBeDefined(); // the commit is in the checkout's history (a shallow clone has no past releases)
  for (const r of [...running]) await stopWorker(r.w);
  return startWorker(`amendctl-${name}-release`, { workflowBundle: { codePath: release!.codePath } });
}

/** The amendment kept its type, and its workflow tasks ran on the release's worker, then the current one. */
async function expectRanOn(amendmentId: string, type: string, release: string): Promise<void> {
  expect(await workflowType(amendmentWorkflowId(amendmentId))).toBe(type);
  expect(await taskWorkers(amendmentWorkflowId(amendmentId))).toEqual([
    'amendctl-current',
    `amendctl-${release}-release`,
  ]);
}

async function stopWorker(w: AmendctlWorker): Promise<void> {
  const i = running.findIndex((r) => r.w === w);
  const [r] = running.splice(i, 1);
  w.shutdown();
  await r!.done;
}

/** What the previous release's client did: start `amendmentWorkflow` (the current client starts AMENDMENT_WORKFLOW_TYPE). */
function startPreviousType(document: unknown): Promise<void> {
  return startType('amendmentWorkflow', document);
}

/** Start the amendment as a release's client started it, as `type`. */
async function startType(type: string, document: unknown): Promise<void> {
  const amendment = AmendmentSchema.parse(document);
  const input: AmendmentWorkflowInput = { amendment };
  await client.client.workflow.start(type, {
    taskQueue,
    workflowId: amendmentWorkflowId(amendment.amendmentId),
    args: [input],
    workflowIdConflictPolicy: 'FAIL',
    workflowIdReusePolicy: 'REJECT_DUPLICATE',
    typedSearchAttributes: [
      { key: SA.ContractId, value: amendment.contractId },
      { key: SA.AmendmentId, value: amendment.amendmentId },
      { key: SA.AmendmentStatus, value: 'queued' },
    ],
    memo: {
      amendmentHash: createHash('sha256').update(canonicalJson(amendment)).digest('hex'),
      sequence: amendment.sequence,
    },
    staticSummary: `Amendment ${amendment.amendmentId} of contract ${amendment.contractId}, sequence ${amendment.sequence}`,
  });
}

/** Poll `read` until `ok`, or fail after the deadline with what it last read. */
async function eventually<T>(
  what: string,
  read: () => Promise<T>,
  ok: (v: T) => boolean,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`not ${what} after ${timeoutMs} ms: ${JSON.stringify(v).slice(0, 500)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The amendment's view once `ok`. */
function until(amendmentId: string, ok: (v: AmendmentView) => boolean, what: string): Promise<AmendmentView> {
  return eventually(`${amendmentId} ${what}`, () => client.getStatus(amendmentId), ok);
}

async function workflowType(workflowId: string): Promise<string> {
  return (await client.client.workflow.getHandle(workflowId).describe()).type;
}

/** The identities of the workers that completed the workflow's tasks, sorted. */
async function taskWorkers(workflowId: string): Promise<string[]> {
  const history = await client.client.workflow.getHandle(workflowId).fetchHistory();
  const ids = new Set<string>();
  for (const e of history.events ?? []) {
    const id = e.workflowTaskCompletedEventAttributes?.identity;
    if (id) ids.add(id);
  }
  return [...ids].sort();
}

/**
 * The previous release's workflow bundle: its src/workflows/index.ts and every module it
 * imports, from git at PREVIOUS_RELEASE, written under `dir` (inside the project, so the
 * packages resolve from its node_modules) and bundled. Where git or the commit is missing,
 * the frozen copy of this tree (test/workflows/previous-release).
 */
async function bundlePreviousRelease(dir: string): Promise<{ codePath: string; source: string }> {
  return (
    (await bundleRelease(PREVIOUS_RELEASE, dir)) ?? {
      codePath: await bundle(require.resolve('./previous-release'), dir),
      source: 'test/workflows/previous-release (frozen copy)',
    }
  );
}

/** A release's workflow bundle from git at `commit`; undefined where the commit is not in the checkout. */
async function bundleRelease(commit: string, dir: string): Promise<{ codePath: string; source: string } | undefined> {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const entry = extractFromGit(commit, 'src/workflows/index.ts', join(dir, 'src'));
  return entry ? { codePath: await bundle(entry, dir), source: `git ${commit}` } : undefined;
}

async function bundle(entry: string, dir: string): Promise<string> {
  const quiet = () => undefined;
  const { code } = await bundleWorkflowCode({
    workflowsPath: entry,
    logger: { trace: quiet, debug: quiet, info: quiet, log: quiet, warn: console.warn, error: console.error },
  });
  const codePath = join(dir, 'workflow-bundle.js');
  writeFileSync(codePath, code);
  return codePath;
}

function extractFromGit(commit: string, entry: string, outSrc: string): string | undefined {
  let files: Set<string>;
  try {
    const listing = execFileSync('git', ['-C', ROOT, 'ls-tree', '-r', '--name-only', commit, 'src'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    files = new Set(listing.split('\n').filter(Boolean));
  } catch {
    return undefined;
  }
  if (!files.has(entry)) return undefined;
  const todo = [entry];
  const seen = new Set<string>();
  while (todo.length > 0) {
    const file = todo.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const text = execFileSync('git', ['-C', ROOT, 'show', `${commit}:${file}`], {
      encoding: 'utf8',
      maxBuffer: 16 << 20,
    });
    const out = join(outSrc, posix.relative('src', file));
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, text);
    for (const m of text.matchAll(/(?:\bfrom|\bimport)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
      const base = posix.normalize(posix.join(posix.dirname(file), m[1]!));
      const hit = [`${base}.ts`, `${base}/index.ts`, base].find((p) => files.has(p));
      if (!hit) throw new Error(`${commit}:${file} imports ${m[1]}, which is not in that commit`);
      todo.push(hit);
    }
  }
  return join(outSrc, posix.relative('src', entry));
}
