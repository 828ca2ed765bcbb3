/**
 * The audit trail end to end (issue 6): a reference-like contract story (an approval with an
 * ignored self-approval, an addition, a failure rolled back), `amendctl audit` in all three
 * formats from the history, the durable log's hash chain (verify, a tampered row named, append
 * idempotent and serialised), and the record still there when a new dev server knows nothing.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client as PgClient } from 'pg';
import { startDevServer, type DevServer } from '../../src/devserver';
import { AuditStore, auditDbConfig, AUDIT_TABLE } from '../../src/audit/store';
import { recordFromView } from '../../src/audit/record';
import type { AuditRecord } from '../../src/audit/record';
import { need } from '../harness/env';
import { freePort, ROOT } from '../harness/proc';
import { until } from '../harness/until';
import { baseline, changes, customer } from '../workflows/fixtures';
import { referenceEnv, startStack, type Stack } from '../workflows/stack';

const run = promisify(execFile);
let stack: Stack;
const c = customer('audit');
const ids = { approved: `${c.id}-001`, added: `${c.id}-002`, failed: `${c.id}-003` };

function cliEnv(address = need('AMENDCTL_TEST_TEMPORAL_ADDRESS')): NodeJS.ProcessEnv {
  return { ...process.env, ...referenceEnv(), TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: 'default' };
}

async function amendctl(args: string[], env = cliEnv()): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [join(ROOT, 'bin', 'amendctl'), ...args], { env, maxBuffer: 16 << 20 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

async function superuser(database: string): Promise<PgClient> {
  const s = new PgClient({
    host: need('AMENDCTL_TEST_PG_SUPERUSER_SOCKET'),
    port: Number(need('AMENDCTL_TEST_PG_PORT')),
    user: 'postgres',
    database,
  });
  await s.connect();
  return s;
}

beforeAll(async () => {
  stack = await startStack('audit');
  // 001: grants admin, so it needs approval; the submitter's own approval is ignored, dana's counts.
  const first = baseline(
    c,
    [
      ['alice', 'admin'],
      ['bob', 'member'],
    ],
    { submittedBy: 'sam' },
  );
  await stack.client.submitAmendment(first);
  await until(
    '001 pending approval',
    () => stack.client.getStatus(ids.approved).then((v) => (v.status === 'pending_approval' ? v : undefined)),
    30_000,
  );
  await stack.client.approve(ids.approved, { by: 'sam', comment: 'my own' });
  await stack.client.approve(ids.approved, { by: 'dana', comment: 'matches the signed order form' });
  expect((await stack.client.waitForResult(ids.approved)).status).toBe('completed');
  // 002: a user and a module.
  await stack.client.submitAmendment(
    changes(c, 2, [
      { op: 'add', path: 'namedUsers', value: { email: c.email('dave'), name: 'Dave', role: 'member' } },
      { op: 'add', path: 'modules', value: 'billing' },
    ]),
  );
  expect((await stack.client.waitForResult(ids.added)).status).toBe('completed');
  // 003: carol's name is taken by a superuser role the connector may not touch: fails for good, rolled back.
  const su = await superuser('warehouse');
  await su.query(`CREATE ROLE "${c.email('carol')}" SUPERUSER NOLOGIN`);
  await su.end();
  await stack.client.submitAmendment(
    changes(c, 3, [
      { op: 'add', path: 'namedUsers', value: { email: c.email('carol'), name: 'Carol', role: 'viewer' } },
      { op: 'add', path: 'modules', value: 'api' },
    ]),
    { retryBudgetSeconds: 10 },
  );
  expect((await stack.client.waitForResult(ids.failed)).status).toBe('rolled_back');

  if (process.env.AMENDCTL_CAPTURE_AUDIT_FIXTURE) {
    // The unit test's captured histories, decoded through the codec server (so no key is stored).
    mkdirSync(join(__dirname, 'fixtures'), { recursive: true });
    for (const [name, id] of Object.entries(ids)) {
      const { stdout } = await run(
        need('AMENDCTL_TEST_TEMPORAL_CLI'),
        [
          'workflow',
          'show',
          '--address',
          need('AMENDCTL_TEST_TEMPORAL_ADDRESS'),
          '--workflow-id',
          `amendment-${id}`,
          '--output',
          'json',
          '--codec-endpoint',
          need('AMENDCTL_TEST_CODEC_URL'),
          '--codec-auth',
          `Bearer ${need('AMENDCTL_TEST_CODEC_TOKEN')}`,
        ],
        { maxBuffer: 64 << 20 },
      );
      writeFileSync(join(__dirname, 'fixtures', `history-${name}.json`), stdout);
    }
  }
}, 240_000);
afterAll(() => stack?.stop());

test('amendctl audit: md reads as a report (changes, rules, approvals with the ignored one, operations, compensations)', async () => {
  const approved = await amendctl(['audit', ids.approved, '--format', 'md']);
  expect(approved.code).toBe(0);
  const md = approved.stdout;
  expect(md).toContain(`# Audit record: amendment ${ids.approved}`);
  expect(md).toContain('**Outcome: completed**');
  expect(md).toMatch(/## 1\. What changed in the contract[\s\S]*namedUsers\[alice@/);
  expect(md).toMatch(/ruleset `[0-9a-f]{16}…`/);
  expect(md).toMatch(/Required \(1 approval needed\), because:/);
  expect(md).toMatch(/\| sam \| approved \| no — [^|]*separation of duties/);
  expect(md).toMatch(
    /\| dana \(proven by service \(key test-harness\), verified [^)]+\) \| approved \| yes \| matches the signed order form \|/,
  );
  expect(md).toMatch(
    new RegExp(
      `\\| warehouse: grant app_admin to ${c.email('alice').replace(/\./g, '\\.')} \\| [^|]+ \\| done \\| 1 \\|`,
    ),
  );
  expect(md).toContain('the workflow history (every event)');

  const failed = (await amendctl(['audit', ids.failed, '--format', 'md'])).stdout;
  expect(failed).toContain('**Outcome: rolled back**');
  expect(failed).toMatch(/\| FAILED \| \d+ \|/);
  expect(failed).toMatch(/## 5\. Compensations[\s\S]*\| compensated \|/);
  mkdirSync(join(ROOT, 'test-artifacts'), { recursive: true });
  writeFileSync(join(ROOT, 'test-artifacts', 'audit-rolled-back.md'), failed);
});

test('amendctl audit: json and csv carry the same facts', async () => {
  const j = await amendctl(['audit', ids.added, '--format', 'json']);
  expect(j.code).toBe(0);
  const r = JSON.parse(j.stdout) as AuditRecord;
  expect(r).toMatchObject({
    format: 'amendctl.audit/1',
    source: 'history',
    amendmentId: ids.added,
    contractId: c.contractId,
    sequence: 2,
    status: 'completed',
    customerId: c.id,
  });
  expect(r.changes.map((x) => x.path).sort()).toEqual([`modules[billing]`, `namedUsers[${c.email('dave')}]`]);
  expect(r.operations.length).toBeGreaterThan(0);
  for (const o of r.operations) {
    expect(o.attempts).toBeGreaterThanOrEqual(1);
    expect(Date.parse(o.finishedAt!)).toBeGreaterThanOrEqual(Date.parse(o.startedAt!));
    expect(o.ruleIds.length).toBeGreaterThan(0);
  }
  expect(r.rulesetHash).toMatch(/^[0-9a-f]{64}$/);

  const csv = (await amendctl(['audit', '--contract', c.contractId, '--format', 'csv'])).stdout.trim().split('\n');
  expect(csv[0]).toBe(
    'amendment_id,contract_id,sequence,status,kind,at,who_or_target,subject,what,outcome,attempts,duration_ms,rules,detail',
  );
  const kinds = (id: string, kind: string) => csv.filter((l) => l.startsWith(`${id},`) && l.split(',')[4] === kind);
  expect(kinds(ids.approved, 'approve')).toHaveLength(2);
  expect(kinds(ids.failed, 'compensation').length).toBeGreaterThan(0);
  expect(kinds(ids.added, 'operation')).toHaveLength(r.operations.length);
  expect(new Set(csv.slice(1).map((l) => l.split(',')[0]))).toEqual(new Set(Object.values(ids)));
});

test('durable log: every final status recorded once, chain verifies; an edited row is named', async () => {
  const store = AuditStore.fromEnv(cliEnv());
  try {
    const rows = await store.contractRows(c.contractId);
    expect(rows.map((r) => [r.seq, r.amendmentId, r.record.status])).toEqual([
      [1, ids.approved, 'completed'],
      [2, ids.added, 'completed'],
      [3, ids.failed, 'rolled_back'],
    ]);
    // Idempotent: appending the same amendment again returns the first row.
    const again = await store.append(rows[1]!.record);
    expect(again).toEqual({ seq: 2, hash: rows[1]!.hash, duplicate: true });
    expect(await store.contractRows(c.contractId)).toHaveLength(3);
  } finally {
    await store.close();
  }
  // Sealed with the codec keys: no name or email of the contract in the table, readable with the keys (above).
  const raw = await superuser('amendctl_audit');
  try {
    const texts = (
      await raw.query<{ t: string }>(`SELECT record::text AS t FROM ${AUDIT_TABLE} WHERE contract_id = $1`, [
        c.contractId,
      ])
    ).rows.map((r) => r.t);
    expect(texts).toHaveLength(3);
    for (const t of texts) {
      expect(t).toMatch(/^\{"sealed": /);
      expect(t).not.toContain(c.domain);
      expect(t).not.toContain('Alice');
    }
  } finally {
    await raw.end();
  }
  const ok = await amendctl(['audit', 'verify', '--contract', c.contractId]);
  expect(ok).toMatchObject({ code: 0 });
  expect(ok.stdout).toMatch(/audit log intact: 3 records in 1 contract chain/);

  // The writer cannot change a row (append-only triggers) ...
  const writer = new PgClient(auditDbConfig(cliEnv()));
  await writer.connect();
  await expect(
    writer.query(`UPDATE ${AUDIT_TABLE} SET record = record WHERE contract_id = $1`, [c.contractId]),
  ).rejects.toThrow(/append-only/);
  await writer.end();
  // ... and when someone with more rights does, verify names the row.
  const su = await superuser('amendctl_audit');
  try {
    await su.query(`ALTER TABLE ${AUDIT_TABLE} DISABLE TRIGGER ${AUDIT_TABLE}_no_change`);
    await su.query(
      `UPDATE ${AUDIT_TABLE} SET record = jsonb_set(record, '{status}', '"completed"') WHERE contract_id = $1 AND seq = 3`,
      [c.contractId],
    );
    await su.query(`ALTER TABLE ${AUDIT_TABLE} ENABLE TRIGGER ${AUDIT_TABLE}_no_change`);
  } finally {
    await su.end();
  }
  const broken = await amendctl(['audit', 'verify', '--contract', c.contractId]);
  expect(broken.code).toBe(1);
  expect(broken.stdout).toContain(
    `BROKEN at contract ${c.contractId}, seq 3 (amendment ${ids.failed}): the record does not match its hash`,
  );
});

test('durable log: a truncation (the newest records deleted) passes the chain alone and fails against a signed checkpoint', async () => {
  const contractId = `${c.id}-truncated`;
  const store = AuditStore.fromEnv(cliEnv());
  try {
    const base = (await store.contractRows(c.contractId))[0]!.record;
    for (let i = 1; i <= 3; i++)
      await store.append({ ...base, contractId, amendmentId: `${contractId}-${i}`, sequence: i });
  } finally {
    await store.close();
  }
  const dir = mkdtempSync(join(tmpdir(), 'amendctl-checkpoint-'));
  try {
    const file = join(dir, 'checkpoint.json');
    const made = await amendctl(['audit', 'checkpoint', '--out', file]);
    expect(made).toMatchObject({ code: 0 });
    expect(made.stderr).toMatch(/audit checkpoint: \d+ contract chain heads? signed with key \S+, written to /);
    const cp = JSON.parse(readFileSync(file, 'utf8')) as { heads: Array<{ contractId: string; seq: number }> };
    expect(cp.heads.find((h) => h.contractId === contractId)).toMatchObject({ seq: 3 });
    const fine = await amendctl(['audit', 'verify', '--contract', contractId, '--checkpoint', file]);
    expect(fine).toMatchObject({ code: 0 });
    expect(fine.stdout).toMatch(
      /audit log intact: 3 records in 1 contract chain \(contract .*\); every chain head of the checkpoint of .* is there, unchanged/,
    );

    // Someone with more rights than the writer deletes the newest record.
    const su = await superuser('amendctl_audit');
    try {
      await su.query(`ALTER TABLE ${AUDIT_TABLE} DISABLE TRIGGER USER`);
      await su.query(`DELETE FROM ${AUDIT_TABLE} WHERE contract_id = $1 AND seq = 3`, [contractId]);
      await su.query(`ALTER TABLE ${AUDIT_TABLE} ENABLE TRIGGER USER`);
    } finally {
      await su.end();
    }
    // The chain alone still verifies: that is why the anchor is outside the table.
    expect(await amendctl(['audit', 'verify', '--contract', contractId])).toMatchObject({ code: 0 });
    const caught = await amendctl(['audit', 'verify', '--contract', contractId, '--checkpoint', file]);
    expect(caught.code).toBe(1);
    expect(caught.stdout).toMatch(
      new RegExp(
        `BROKEN at contract ${contractId} against the checkpoint .*: truncated: the checkpoint of \\S+ names record seq 3 \\(hash [0-9a-f]{12}…\\), the log ends at seq 2`,
      ),
    );

    // A checkpoint edited to hide it does not match its signature; one that is not a checkpoint is named as such.
    const edited = JSON.parse(readFileSync(file, 'utf8')) as {
      heads: Array<{ contractId: string; seq: number; hash: string }>;
    };
    const head = edited.heads.find((h) => h.contractId === contractId)!;
    head.seq = 2;
    writeFileSync(join(dir, 'edited.json'), JSON.stringify(edited));
    const forged = await amendctl([
      'audit',
      'verify',
      '--contract',
      contractId,
      '--checkpoint',
      join(dir, 'edited.json'),
    ]);
    expect(forged.code).toBe(1);
    expect(forged.stdout).toContain('the checkpoint does not match its signature (it was altered after it was signed)');
    writeFileSync(join(dir, 'bad.json'), JSON.stringify({ format: 'something else' }));
    const bad = await amendctl(['audit', 'verify', '--checkpoint', join(dir, 'bad.json')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/not an audit checkpoint:\n {2}.*bad\.json: format: /);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('durable log: concurrent writers of one contract get one chain', async () => {
  const contractId = `${c.id}-concurrent`;
  const stores = [AuditStore.fromEnv(cliEnv()), AuditStore.fromEnv(cliEnv())];
  try {
    const base = (await stores[0]!.contractRows(c.contractId))[0]!.record;
    const recs = Array.from({ length: 8 }, (_, i) => ({
      ...base,
      contractId,
      amendmentId: `${contractId}-${i}`,
      sequence: i + 1,
    }));
    const results = await Promise.all(
      recs.flatMap((r, i) => [stores[i % 2]!.append(r), stores[(i + 1) % 2]!.append(r)]),
    );
    expect(results.filter((r) => !r.duplicate)).toHaveLength(8);
    const rows = await stores[0]!.contractRows(contractId);
    expect(rows.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect((await stores[0]!.verify(contractId)).ok).toBe(true);
  } finally {
    await Promise.all(stores.map((s) => s.close()));
  }
});

test('after the dev server forgets the workflows (a new server, a new database), the records are in the durable log', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'amendctl-audit-'));
  let fresh: DevServer | undefined;
  try {
    fresh = await startDevServer({
      cli: need('AMENDCTL_TEST_TEMPORAL_CLI'),
      port: await freePort(),
      headless: true,
      dbFile: join(dir, 'fresh.sqlite'),
      logFile: join(dir, 'temporal.log'),
    });
    const env = cliEnv(fresh.address);
    const status = await amendctl(['status', ids.added], env);
    expect(status.code).not.toBe(0); // this server has never heard of it
    const one = await amendctl(['audit', ids.added, '--format', 'json'], env);
    expect(one.code).toBe(0);
    expect(JSON.parse(one.stdout)).toMatchObject({ source: 'workflow', amendmentId: ids.added, status: 'completed' });
    const all = await amendctl(['audit', '--contract', c.contractId, '--format', 'md'], env);
    expect(all.code).toBe(0);
    expect(all.stdout.match(/^# Audit record: amendment /gm)).toHaveLength(3);
    expect(all.stdout).toContain("the workflow's final state (durable audit log)");
    expect(all.stdout).toMatch(
      /\| dana \(proven by service \(key test-harness\), verified [^)]+\) \| approved \| yes \|/,
    );
  } finally {
    await fresh?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the record from the final view and from history share one shape', async () => {
  const view = await stack.client.getStatus(ids.approved);
  const fromView = recordFromView(view);
  const fromHistory = JSON.parse((await amendctl(['audit', ids.approved, '--format', 'json'])).stdout) as AuditRecord;
  const keys = (o: object) =>
    Object.keys(o)
      .filter((k) => !['summary', 'runId', 'source'].includes(k))
      .sort();
  expect(keys(fromHistory)).toEqual(keys(fromView));
  expect(fromHistory.operations.map((o) => [o.id, o.outcome])).toEqual(
    fromView.operations.map((o) => [o.id, o.outcome]),
  );
  expect(fromHistory.approval.decisions.map((d) => [d.by, d.accepted])).toEqual(
    fromView.approval.decisions.map((d) => [d.by, d.accepted]),
  );
});
