/**
 * The PostgreSQL connector against the real PostgreSQL the harness started: the shared
 * conformance suite (through a TCP proxy for the outage cases) and the SQL-specific cases.
 */
import { Client } from 'pg';
import { createPostgresConnector, postgresConfigSchema, quoteIdent } from '../../src/connectors/postgres';
import { PermanentTargetError, type AccountState } from '../../src/connectors/types';
import { ACTIONS } from '../../src/domain/plan';
import { need } from '../harness/env';
import { describeConformance, startTcpProxy } from './conformance';

process.env.AMENDCTL_TEST_WAREHOUSE_PASSWORD = process.env.AMENDCTL_TEST_PG_PASSWORD ?? '';

function config(port: number, extra: Record<string, unknown> = {}) {
  return postgresConfigSchema.parse({
    type: 'postgres',
    host: '127.0.0.1',
    port,
    database: 'warehouse',
    user: 'amendctl',
    password: { env: 'AMENDCTL_TEST_WAREHOUSE_PASSWORD' },
    createMissingRoles: true,
    ...extra,
  });
}

async function sql<T>(fn: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client({
    host: '127.0.0.1',
    port: Number(need('AMENDCTL_TEST_PG_PORT')),
    database: 'warehouse',
    user: 'amendctl',
    password: need('AMENDCTL_TEST_PG_PASSWORD'),
  });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** Read a role back with plain SQL, not through the connector. */
async function readBack(subject: string): Promise<AccountState | null> {
  return sql(async (c) => {
    const r = await c.query<{ rolname: string; rolcanlogin: boolean }>(
      'SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname = $1',
      [subject],
    );
    const row = r.rows[0];
    if (!row) return null;
    const m = await c.query<{ g: string }>(
      'SELECT r.rolname::text AS g FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles u ON u.oid = a.member WHERE u.rolname = $1 ORDER BY 1',
      [subject],
    );
    return { subject, id: row.rolname, active: row.rolcanlogin, groups: m.rows.map((x) => x.g), attributes: {} };
  });
}

describeConformance('postgres', async () => {
  const proxy = await startTcpProxy({ host: '127.0.0.1', port: Number(need('AMENDCTL_TEST_PG_PORT')) });
  const connector = createPostgresConnector('warehouse', config(proxy.port));
  return {
    connector,
    readBack,
    outage: proxy.outage,
    actions: ACTIONS.filter((a) => a !== 'updateAttributes'),
    attributesFor: () => ({}),
    groupExists: (g) =>
      sql(async (c) => ((await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [g])).rowCount ?? 0) > 0),
    accountCount: (s) =>
      sql(async (c) => (await c.query('SELECT 1 FROM pg_roles WHERE lower(rolname) = lower($1)', [s])).rowCount ?? 0),
    cleanup: () => proxy.close(),
  };
});

describe('postgres specifics', () => {
  const connector = () =>
    createPostgresConnector(
      'warehouse-specific',
      config(Number(need('AMENDCTL_TEST_PG_PORT')), { createMissingRoles: false, managedRolePrefix: 'app_' }),
    );

  test('identifiers are quoted identifiers; names PostgreSQL would truncate are refused', () => {
    expect(quoteIdent('a"b')).toBe('"a""b"');
    expect(() => quoteIdent(`${'x'.repeat(60)}@acme.com`)).toThrow(PermanentTargetError);
    expect(() => quoteIdent('nul\u0000byte')).toThrow(/NUL/);
  });

  test('a role outside the managed prefix is refused; a missing managed role is a misconfiguration', async () => {
    const c = connector();
    try {
      const subject = `pg-specific-${Date.now()}@acme.test`;
      await c.apply({
        id: '1',
        target: 'warehouse-specific',
        action: 'ensureAccount',
        subject,
        params: { attributes: {} },
      });
      await expect(
        c.apply({
          id: '2',
          target: 'warehouse-specific',
          action: 'grantRole',
          subject,
          params: { role: 'pg_read_all_data' },
        }),
      ).rejects.toMatchObject({ type: 'TargetForbidden' });
      await expect(
        c.apply({
          id: '3',
          target: 'warehouse-specific',
          action: 'grantRole',
          subject,
          params: { role: 'app_missing' },
        }),
      ).rejects.toMatchObject({ type: 'TargetMisconfigured' });
      expect((await readBack(subject))?.groups).toEqual([]);
    } finally {
      await c.close();
    }
  });

  test('grants of one role to many accounts are one change: each its own result, one GRANT for those not yet members; a missing account throws', async () => {
    const c = createPostgresConnector(
      'warehouse-group',
      config(Number(need('AMENDCTL_TEST_PG_PORT')), { managedRolePrefix: 'app_' }),
    );
    try {
      const t = Date.now();
      const role = `app_grp_${t}`;
      const subjects = [1, 2, 3].map((i) => `pg-grp-${i}-${t}@acme.test`);
      for (const x of subjects)
        await c.apply({
          id: `e-${x}`,
          target: 'warehouse-group',
          action: 'ensureAccount',
          subject: x,
          params: { attributes: {} },
        });
      await c.apply({
        id: 'g0',
        target: 'warehouse-group',
        action: 'grantRole',
        subject: subjects[0]!,
        params: { role },
      }); // creates the role; already a member below
      const ops = subjects.map((x, i) => ({
        id: `g${i}`,
        target: 'warehouse-group',
        action: 'grantRole' as const,
        subject: x,
        params: { role },
      }));
      const results = await c.applyGroupChange!(ops);
      expect(results.map((r) => [r.outcome, r.prior])).toEqual([
        ['unchanged', { member: true }],
        ['applied', { member: false }],
        ['applied', { member: false }],
      ]);
      for (const x of subjects) expect((await readBack(x))?.groups).toEqual([role]);
      const gone = `pg-grp-missing-${t}@acme.test`;
      await expect(
        c.applyGroupChange!([
          ...ops,
          { id: 'gx', target: 'warehouse-group', action: 'grantRole', subject: gone, params: { role } },
        ]),
      ).rejects.toMatchObject({ type: 'AccountMissing' });
      const revoked = await c.applyGroupChange!(ops.map((o) => ({ ...o, action: 'revokeRole' as const })));
      expect(revoked.map((r) => r.outcome)).toEqual(['applied', 'applied', 'applied']);
      for (const x of subjects) expect((await readBack(x))?.groups).toEqual([]);
    } finally {
      await c.close();
    }
  });

  test('a wrong password is a permanent authentication failure, never retried', async () => {
    process.env.AMENDCTL_TEST_WRONG_PASSWORD = 'not-the-password';
    const c = createPostgresConnector(
      'warehouse-wrong',
      config(Number(need('AMENDCTL_TEST_PG_PORT')), { password: { env: 'AMENDCTL_TEST_WRONG_PASSWORD' } }),
    );
    try {
      await expect(c.readAccount('nobody@acme.test')).rejects.toMatchObject({ type: 'TargetAuthentication' });
    } finally {
      await c.close();
    }
  });
});
