/**
 * Drift on the real servers (Temporal dev server, scim2-server, PostgreSQL): out-of-band changes
 * made directly in the targets (an extra admin membership, a re-enabled account, a deleted
 * membership, an unmanaged account in a managed group) are each reported by `amendctl drift`,
 * only reported by a reconciliation under the report policy, and repaired under the repair
 * policy, through the amendment's batches, with an audit record of the reconciliation.
 */
import { AuditStore } from '../../src/audit/store';
import { auditCommand } from '../../src/cli/commands/audit';
import { driftCommand, reconcileCommand } from '../../src/cli/commands/drift';
import type { CliIO } from '../../src/cli/io';
import { approveSignal } from '../../src/workflows/definitions';
import { registry } from '../../src/observability/metrics';
import { harnessSigner } from '../harness/approvals';
import { reconcileStatusQuery, type ReconcileView } from '../../src/workflows/reconcile-definitions';
import { need } from '../harness/env';
import { RawScim } from '../harness/servers/scim';
import { until } from '../harness/until';
import { baseline, changes, customer } from '../workflows/fixtures';
import { pgAdmin, pgSnapshot, startStack, type Stack } from '../workflows/stack';

let stack: Stack;
let scim: RawScim;
const c = customer('drift');
let customerOfGuard = '';

beforeAll(async () => {
  stack = await startStack('drift');
  scim = new RawScim(need('AMENDCTL_TEST_SCIM_URL'), need('AMENDCTL_TEST_SCIM_TOKEN'));
});
afterAll(async () => {
  await stack?.stop();
});

async function run(cmd: typeof driftCommand, args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIO = { out: (t) => void (out += `${t}\n`), err: (t) => void (err += `${t}\n`) };
  const code = await cmd(
    [...args, '--address', need('AMENDCTL_TEST_TEMPORAL_ADDRESS'), '--task-queue', stack.taskQueue],
    io,
  );
  return { code, out, err };
}

interface Found {
  total: number;
  differences: Array<{ target: string; kind: string; subject: string; group?: string; unmanaged?: boolean }>;
}
async function drift(): Promise<Found> {
  const r = await run(driftCommand, [c.contractId, '--json']);
  return JSON.parse(r.out) as Found;
}
const brief = (f: Found) =>
  f.differences
    .map((d) => `${d.target} ${d.kind} ${d.subject}${d.group ? ` ${d.group}` : ''}${d.unmanaged ? ' (unmanaged)' : ''}`)
    .sort();

const PATCH = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
async function scimUserId(subject: string): Promise<string> {
  const [u] = await scim.users(subject);
  if (!u) throw new Error(`no SCIM user ${subject}`);
  return u.id;
}
async function scimGroup(name: string): Promise<{ id: string; members: string[] }> {
  const g = (await scim.groups()).find((x) => x.displayName === name);
  if (!g) throw new Error(`no SCIM group ${name}`);
  return { id: g.id, members: (g.members ?? []).map((m) => m.value) };
}
async function setMembers(name: string, members: string[]): Promise<void> {
  const g = await scimGroup(name);
  const r = await scim.call('PATCH', `/Groups/${g.id}`, {
    schemas: [PATCH],
    Operations: [{ op: 'replace', path: 'members', value: members.map((value) => ({ value })) }],
  });
  expect([200, 204]).toContain(r.status);
}

/** A counter's value in the worker's registry (what its /metrics serves), summed over series with these labels. */
async function counted(name: string, labels: Record<string, string>): Promise<number> {
  const m = await registry.getSingleMetric(name)!.get();
  return m.values
    .filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))
    .reduce((n, v) => n + v.value, 0);
}

test('out-of-band changes are reported by amendctl drift, only reported under report, repaired under repair', async () => {
  await stack.client.submitAmendment(
    baseline(c, [
      ['bob', 'member'],
      ['carol', 'viewer'],
      ['dave', 'member'],
    ]),
  );
  expect((await stack.client.waitForResult(`${c.id}-001`)).status).toBe('completed');
  await stack.client.submitAmendment(
    changes(c, 2, [{ op: 'remove', path: 'namedUsers', match: { email: c.email('carol') } }]),
  );
  expect((await stack.client.waitForResult(`${c.id}-002`)).status).toBe('completed');

  // As provisioned: no drift (exit 0), and the text says so per target.
  const clean = await run(driftCommand, [c.contractId]);
  expect(clean.code).toBe(0);
  expect(clean.out).toContain(`contract ${c.contractId} (customer ${c.id}, sequence 2): no drift`);
  expect(clean.out).toMatch(/idp: 3 accounts, \d+ groups or roles checked in \d+ ms: as it should be/);

  // Out of band, directly in scim2-server ...
  const [bob, carol, dave] = await Promise.all(['bob', 'carol', 'dave'].map((u) => scimUserId(c.email(u))));
  const admins = await scim.call('POST', '/Groups', {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'],
    displayName: `${c.id}-admins`,
    members: [{ value: bob }],
  });
  expect(admins.status).toBe(201); // an extra admin membership
  expect([200, 204]).toContain(
    (
      await scim.call('PATCH', `/Users/${carol}`, {
        schemas: [PATCH],
        Operations: [{ op: 'replace', value: { active: true } }],
      })
    ).status,
  ); // a re-enabled account
  await setMembers(
    `${c.id}-mod-analytics`,
    (await scimGroup(`${c.id}-mod-analytics`)).members.filter((m) => m !== dave),
  ); // a deleted membership
  const stranger = `mallory@elsewhere-${c.id}.test`;
  const made = await scim.call('POST', '/Users', {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
    userName: stranger,
    active: true,
  });
  expect(made.status).toBe(201);
  await setMembers(`${c.id}-members`, [
    ...(await scimGroup(`${c.id}-members`)).members,
    (made.body as { id: string }).id,
  ]); // an unmanaged account in a managed group
  // ... and in PostgreSQL.
  const pg = await pgAdmin();
  try {
    await pg.query(`GRANT app_admin TO "${c.email('bob')}"`);
    await pg.query(`ALTER ROLE "${c.email('carol')}" LOGIN`);
    await pg.query(`REVOKE app_write FROM "${c.email('dave')}"`);
  } finally {
    await pg.end();
  }

  const expected = [
    `idp account_active ${c.email('carol')}`,
    `idp membership_extra ${c.email('bob')} ${c.id}-admins`,
    `idp membership_extra ${stranger} ${c.id}-members (unmanaged)`,
    `idp membership_missing ${c.email('dave')} ${c.id}-mod-analytics`,
    `warehouse account_active ${c.email('carol')}`,
    `warehouse membership_extra ${c.email('bob')} app_admin`,
    `warehouse membership_missing ${c.email('dave')} app_write`,
  ].sort();
  const found = await drift();
  expect(brief(found)).toEqual(expected);
  const text = await run(driftCommand, [c.contractId]);
  expect(text.code).toBe(1);
  expect(text.out).toContain(
    `✗ account ${c.email('carol')} is active but should not be (the contract no longer grants it)`,
  );
  expect(text.out).toContain(
    `✗ ${stranger} is in group ${c.id}-members but should not be (an account the contract does not name)`,
  );

  // Policy report: found, recorded, nothing changed.
  const foundBefore = await counted('amendctl_drift_found_total', { target: 'idp' });
  const reported = await run(reconcileCommand, ['run', c.contractId, '--policy', 'report', '--wait', '--json']);
  const rv = JSON.parse(reported.out) as ReconcileView;
  expect(reported.code).toBe(1);
  expect(rv.status).toBe('reported');
  expect(rv.found!.total).toBe(expected.length);
  expect(rv.repair).toBeUndefined();
  expect(brief(await drift())).toEqual(expected);
  // The worker's /metrics counts what the check found (issue 14): idp's four differences.
  expect((await counted('amendctl_drift_found_total', { target: 'idp' })) - foundBefore).toBe(4);
  // Operators find it in the UI: DriftStatus and DriftCount on the reconciliation.
  const listed = await until('the reconciliation in visibility', async () => {
    for await (const w of stack.client.client.workflow.list({
      query: `DriftStatus = "reported" AND ContractId = "${c.contractId}" AND DriftCount = ${expected.length}`,
    }))
      return w.workflowId;
    return undefined;
  });
  expect(listed).toBe(rv.workflowId);

  // Policy repair on idp only, report on the warehouse: only idp is repaired.
  const partly = JSON.parse(
    (
      await run(reconcileCommand, [
        'run',
        c.contractId,
        '--policy',
        'report',
        '--target',
        'idp=repair',
        '--wait',
        '--json',
      ])
    ).out,
  ) as ReconcileView;
  expect(partly.status).toBe('repaired');
  expect(brief(await drift())).toEqual(expected.filter((x) => x.startsWith('warehouse')));

  // Policy repair: every target as the contract says again.
  const repairedBefore = await counted('amendctl_drift_repaired_total', { target: 'warehouse', outcome: 'applied' });
  const repaired = await run(reconcileCommand, ['run', c.contractId, '--policy', 'repair', '--wait', '--json']);
  const v = JSON.parse(repaired.out) as ReconcileView;
  expect(repaired.code).toBe(0);
  expect(v.status).toBe('repaired');
  expect(v.repair!.operations.map((o) => `${o.outcome} ${o.id}`).sort()).toEqual(
    [
      `applied warehouse:deactivateAccount:${c.email('carol')}`,
      `applied warehouse:revokeRole:${c.email('bob')}:app_admin`,
      `applied warehouse:grantRole:${c.email('dave')}:app_write`,
    ].sort(),
  );
  expect((await drift()).total).toBe(0);
  expect(
    (await counted('amendctl_drift_repaired_total', { target: 'warehouse', outcome: 'applied' })) - repairedBefore,
  ).toBe(3);
  expect((await scim.readBack(c.email('carol')))?.active).toBe(false);
  expect((await scimGroup(`${c.id}-members`)).members).not.toContain((made.body as { id: string }).id);
  const roles = await pgSnapshot(c.domain);
  expect(roles[c.email('bob')]).toMatchObject({ login: true, memberOf: ['app_write'] });
  expect(roles[c.email('carol')]).toMatchObject({ login: false });
  expect(roles[c.email('dave')]).toMatchObject({ login: true, memberOf: ['app_write'] });

  // The audit trail: each reconciliation in the contract's chain, with what was found and what was repaired.
  const audit = AuditStore.fromEnv(process.env);
  try {
    const rows = (await audit.contractRows(c.contractId)).filter((r) => r.amendmentId.startsWith('reconcile-'));
    expect(rows.map((r) => r.record.status)).toEqual(['completed', 'completed', 'completed']);
    const last = rows[rows.length - 1]!.record as unknown as {
      kind: string;
      reason: string;
      drift: { total: number };
      operations: Array<{ id: string; outcome: string }>;
    };
    expect(last.kind).toBe('reconciliation');
    expect(last.drift.total).toBe(3);
    expect(last.reason).toMatch(/^reconciliation repaired: 3 differences/);
    expect(last.operations.map((o) => o.outcome)).toEqual(['applied', 'applied', 'applied']);
    expect((await audit.verify(c.contractId)).ok).toBe(true);
  } finally {
    await audit.close();
  }
  // `amendctl audit --contract` shows them among the amendments.
  const md = await run(auditCommand, ['--contract', c.contractId, '--format', 'md']);
  expect(md.code).toBe(0);
  expect(md.out).toContain('reconciliation repaired: 3 differences');
  expect(md.out).toContain(`${c.email('dave')}`);
});

test('amendctl reconcile schedule: a Temporal Schedule runs the reconciliation at its interval; unschedule deletes it', async () => {
  // The contract of the first test, with drift put back in the warehouse.
  const pg = await pgAdmin();
  try {
    await pg.query(`ALTER ROLE "${c.email('carol')}" LOGIN`);
  } finally {
    await pg.end();
  }
  const made = await run(reconcileCommand, ['schedule', c.contractId, '--every', '1s', '--policy', 'report']);
  expect(made.out).toBe(
    `created the schedule reconcile-${c.contractId}: contract ${c.contractId} every 1 s, policy report\n`,
  );
  try {
    const h = stack.client.client.schedule.getHandle(`reconcile-${c.contractId}`);
    const first = await until('a scheduled reconciliation', async () => {
      const d = await h.describe();
      const a = d.info.recentActions[0];
      return a ? a.action.workflow.workflowId : undefined;
    });
    expect(first.startsWith(`reconcile-${c.contractId}-`)).toBe(true);
    const v = (await stack.client.client.workflow.getHandle(first).result()) as ReconcileView;
    expect(v.status).toBe('reported');
    expect(v.found!.differences.map((d) => `${d.target} ${d.kind} ${d.subject}`)).toEqual([
      `warehouse account_active ${c.email('carol')}`,
    ]);
    // Schedules again at its interval (a second run), and the same verb updates it in place.
    await until('a second scheduled reconciliation', async () =>
      (await h.describe()).info.recentActions.length >= 2 ? true : undefined,
    );
    expect(
      (await run(reconcileCommand, ['schedule', c.contractId, '--every', '1h', '--policy', 'repair'])).out,
    ).toContain('updated the schedule');
    const d = await h.describe();
    expect(d.spec.intervals?.[0]?.every).toBe(3600_000);
  } finally {
    expect((await run(reconcileCommand, ['unschedule', c.contractId])).out).toBe(
      `deleted the schedule reconcile-${c.contractId}\n`,
    );
  }
  expect((await run(reconcileCommand, ['unschedule', c.contractId])).code).toBe(1);
});

test('repair after approval: the approve policy waits for an approver; the mass-change guard holds a repair that deactivates many', async () => {
  const g = customer('dguard');
  customerOfGuard = g.id;
  const users: Array<[string, 'member']> = Array.from({ length: 10 }, (_, i) => [`u${i}`, 'member']);
  await stack.client.submitAmendment(baseline(g, users));
  expect((await stack.client.waitForResult(`${g.id}-001`)).status).toBe('completed');
  await stack.client.submitAmendment(changes(g, 2, [{ op: 'set', path: 'status', value: 'suspended' }]));
  // Suspending all 10 trips the guard for the amendment too: approved here.
  await until('the suspension pending approval', async () =>
    (await stack.client.getStatus(`${g.id}-002`)).status === 'pending_approval' ? true : undefined,
  );
  await stack.client.approveNow(`${g.id}-002`, { by: 'dana' });
  expect((await stack.client.waitForResult(`${g.id}-002`)).status).toBe('completed');

  const pg = await pgAdmin();
  try {
    // Every account of the suspended contract re-enabled in the warehouse, and one viewer grant too many.
    for (const [u] of users) await pg.query(`ALTER ROLE "${g.email(u)}" LOGIN`);
    await pg.query(`GRANT app_read TO "${g.email('u0')}"`);
  } finally {
    await pg.end();
  }
  const start = async (args: object) => {
    const h = await stack.client.client.workflow.start('reconcileWorkflow', {
      workflowId: `reconcile-${g.contractId}-${Math.random().toString(36).slice(2, 8)}`,
      taskQueue: stack.taskQueue,
      args: [args],
    });
    const pending = await until('pending approval', async () => {
      const v = await h.query(reconcileStatusQuery);
      return v.status === 'pending_approval' ? v : undefined;
    });
    return { h, pending };
  };

  // Under repair, 10 of 10 accounts deactivated: the guard asks for approval; a rejection leaves it reported.
  const guarded = await start({ contractId: g.contractId, policy: 'repair' });
  expect(guarded.pending.repair!.approval!.reasons.map((r) => r.ruleId)).toEqual(['mass-change-guard']);
  expect(guarded.pending.reason).toContain("deactivates 10 of the contract's 10 accounts (100%)");
  const rejected = await run(reconcileCommand, [
    'reject',
    guarded.h.workflowId,
    '--by',
    'dana',
    '--reason',
    'checking with the DBA first',
  ]);
  expect(rejected.code).toBe(0);
  const rv = (await guarded.h.result()) as ReconcileView;
  expect(rv.status).toBe('reported');
  expect(rv.reason).toContain('not repaired: rejected by dana: checking with the DBA first');
  expect((await pgSnapshot(g.domain))[g.email('u1')]).toMatchObject({ login: true });

  // Policy approve: waits for an approver (the reconciliation itself may not), then repairs.
  const approved = await start({ contractId: g.contractId, policy: 'report', targets: { warehouse: 'approve' } });
  expect(approved.pending.repair!.approval!.reasons.map((r) => r.ruleId)).toEqual([
    'reconcile-policy',
    'mass-change-guard',
  ]);
  // Proven (the harness vouches), and still refused: the reconciliation never approves its own repair.
  const self = {
    by: 'amendctl-reconciliation',
    proof: harnessSigner().sign({
      amendmentId: approved.pending.reconciliationId,
      planHash: approved.pending.repair!.planHash,
      decision: 'approve',
      by: 'amendctl-reconciliation',
      via: 'service',
    }).token,
  };
  await approved.h.signal(approveSignal, self);
  const selfIgnored = await until('the self-approval recorded', async () => {
    const x = await approved.h.query(reconcileStatusQuery);
    return x.repair!.approval!.ignored.length > 0 ? x.repair!.approval!.ignored : undefined;
  });
  expect(selfIgnored.map((i) => [i.by, i.why])).toEqual([
    [
      'amendctl-reconciliation',
      'amendctl-reconciliation submitted this amendment and may not approve it (separation of duties)',
    ],
  ]);
  await approved.h.signal(approveSignal, { by: 'dana' }); // no proof: ignored
  await until('the unproven approval recorded', async () =>
    (await approved.h.query(reconcileStatusQuery)).repair!.approval!.ignored.length > 1 ? true : undefined,
  );
  expect((await approved.h.query(reconcileStatusQuery)).repair!.approval!.ignored[1]!.why).toMatch(
    /^no proof of identity/,
  );
  const ok = await run(reconcileCommand, [
    'approve',
    approved.h.workflowId,
    '--by',
    'dana',
    '--comment',
    'suspended: keep them off',
  ]);
  expect(ok.code).toBe(0);
  const v = (await approved.h.result()) as ReconcileView;
  expect(v.status).toBe('repaired');
  expect(v.repair!.approval!.approvals.map((a) => a.by)).toEqual(['dana']);
  const roles = await pgSnapshot(g.domain);
  expect(users.every(([u]) => roles[g.email(u)]!.login === false)).toBe(true);
  expect(roles[g.email('u0')]!.memberOf).toEqual(['app_write']);
});

test('reconcile run --all and drift without a contract: every contract on the task queue', async () => {
  const all = await run(driftCommand, ['--json']);
  const listed = JSON.parse(all.out) as { contracts: Array<{ contractId: string; total: number }>; failed: unknown[] };
  expect(listed.contracts.map((x) => [x.contractId, x.total]).sort()).toEqual(
    [
      [c.contractId, 1],
      [`${customerOfGuard}-msa`, 0],
    ].sort(),
  );
  expect(all.code).toBe(1);
  const r = await run(reconcileCommand, ['run', '--all', '--policy', 'report', '--wait', '--json']);
  const v = JSON.parse(r.out) as { contracts: number; byStatus: Record<string, number>; withDrift: string[] };
  // The two contracts of the tests above: the first has drift left (the schedule test's), the second none.
  expect(v.contracts).toBe(2);
  expect(v.byStatus).toEqual({ reported: 1, no_drift: 1 });
  expect(v.withDrift).toEqual([c.contractId]);
  expect(r.code).toBe(1);
});

test('an account or membership another contract holds a share of is not drift for this contract', async () => {
  const a = customer('dsha');
  const b = customer('dshb');
  const pat = `pat@shared-${a.id}.test`;
  const withPat = (doc: ReturnType<typeof baseline>, role: string) => ({
    ...doc,
    contract: {
      ...doc.contract!,
      namedUsers: [...(doc.contract!.namedUsers ?? []), { email: pat, name: 'Pat', role }],
    },
  });
  await stack.client.submitAmendment(withPat(baseline(a, [['ann', 'member']]), 'member'));
  expect((await stack.client.waitForResult(`${a.id}-001`)).status).toBe('completed');
  await stack.client.submitAmendment(withPat(baseline(b, [['ben', 'member']]), 'viewer'));
  expect((await stack.client.waitForResult(`${b.id}-001`)).status).toBe('completed');
  // A lets Pat go: the account stays active (B names Pat), with B's warehouse role.
  await stack.client.submitAmendment(changes(a, 2, [{ op: 'remove', path: 'namedUsers', match: { email: pat } }]));
  expect((await stack.client.waitForResult(`${a.id}-002`)).status).toBe('completed');
  expect((await pgSnapshot(`shared-${a.id}.test`))[pat]).toMatchObject({ login: true, memberOf: ['app_read'] });

  const forA = JSON.parse((await run(driftCommand, [a.contractId, '--json'])).out) as {
    total: number;
    sharedSkipped: number;
  };
  // For A, Pat should be inactive in both targets and hold no warehouse role; B's shares make all three right.
  expect(forA).toMatchObject({ total: 0, sharedSkipped: 3 });
  const forB = JSON.parse((await run(driftCommand, [b.contractId, '--json'])).out) as {
    total: number;
    sharedSkipped: number;
  };
  // For B, the account keeps A's externalId: linked, never taken over (as provisioning does), so not drift either.
  expect(forB).toMatchObject({ total: 0, sharedSkipped: 1 });
});
