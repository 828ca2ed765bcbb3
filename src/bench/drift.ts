/**
 * npm run bench:drift: how long a drift check takes for contracts of 1,000 and 10,000 accounts
 * (`--sizes 1000,10000`, the default; `--small`: 100 and 1,000), on the bench's own stack
 * (src/bench/e2e/stack.ts: PostgreSQL and scim2-server; the dev server is started too, unused).
 * Not a test: it prints figures, it asserts nothing about time.
 *
 * Per size: a contract of N named users (5% admins, 70% members, 25% viewers, one module) is
 * seeded straight into both targets exactly as the reference rules provision it (N SCIM users
 * and 4 groups, N PostgreSQL roles and their grants), then 1% of it is changed out of band (a
 * PostgreSQL account set NOLOGIN, a SCIM module membership removed). The figure is the drift
 * check of that contract: reading both targets (paged), the shares, and the comparison, as
 * `amendctl drift` and the reconciliation's check do it (the applied state given, so no
 * Temporal query).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Client as PgClient } from 'pg';
import { checkAppliedDrift } from '../activities/drift';
import { ConnectorRegistry, parseTargets } from '../connectors/registry';
import { quoteIdent } from '../connectors/postgres';
import type { Contract, Role } from '../domain/contract';
import { countDifferences, desiredState } from '../domain/drift';
import { loadRuleset } from '../domain/rules';
import { ShareStore } from '../store/shares';
import { ROOT, referenceWorkerEnv, startStack, type StackEnv } from './e2e/stack';

export interface DriftFigure {
  accounts: number;
  seedMs: number;
  checkMs: number;
  idpMs: number;
  warehouseMs: number;
  differences: number;
  counts: Record<string, Record<string, number>>;
}

const RULES = join(ROOT, 'examples', 'reference', 'rules.yaml');
const TARGETS = join(ROOT, 'examples', 'reference', 'targets.yaml');

function contractOf(customer: string, n: number): Contract {
  const role = (i: number): Role => (i % 20 === 0 ? 'admin' : i % 4 === 1 ? 'viewer' : 'member');
  return {
    customer: { id: customer, name: `Bench ${customer}` },
    status: 'active',
    tier: 'enterprise',
    seats: n,
    modules: ['analytics'],
    namedUsers: Array.from({ length: n }, (_, i) => ({
      email: `u${String(i).padStart(5, '0')}@${customer}.bench`,
      name: `User ${i}`,
      role: role(i),
    })),
    term: { start: '2026-01-01' },
    region: 'eu',
    custom: {},
  };
}

async function pool<T>(items: T[], concurrency: number, fn: (x: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

async function scimCall(
  env: StackEnv,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${env.AMENDCTL_TEST_SCIM_URL}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${env.AMENDCTL_TEST_SCIM_TOKEN}`,
      'content-type': 'application/scim+json',
      accept: 'application/scim+json',
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(120_000),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 200)}`);
  return { status: res.status, body: text ? (JSON.parse(text) as unknown) : null };
}

/** Both targets exactly as the reference rules provision the contract, then 1% changed out of band. */
async function seed(env: StackEnv, contract: Contract, rulesText: string): Promise<number> {
  const customer = contract.customer.id;
  const desired = desiredState(loadRuleset(rulesText, RULES), `${customer}-msa`, { contract, previous: null });
  const subjects = contract.namedUsers.map((u) => u.email);
  const changed = subjects.filter((_, i) => i % 100 === 7);
  // PostgreSQL: the roles and their grants, in large statements.
  const pg = new PgClient({
    host: env.AMENDCTL_TEST_PG_HOST,
    port: Number(env.AMENDCTL_TEST_PG_PORT),
    database: 'warehouse',
    user: 'amendctl',
    password: env.AMENDCTL_TEST_PG_PASSWORD,
  });
  await pg.connect();
  try {
    for (let i = 0; i < subjects.length; i += 1000)
      await pg.query(
        subjects
          .slice(i, i + 1000)
          .map((s) => `CREATE ROLE ${quoteIdent(s)} LOGIN`)
          .join(';'),
      );
    for (const [name, g] of desired.targets.get('warehouse')!.groups) {
      const members = [...g.members];
      for (let i = 0; i < members.length; i += 1000)
        await pg.query(
          `GRANT ${quoteIdent(name)} TO ${members
            .slice(i, i + 1000)
            .map(quoteIdent)
            .join(', ')}`,
        );
    }
    await pg.query(changed.map((s) => `ALTER ROLE ${quoteIdent(s)} NOLOGIN`).join(';'));
  } finally {
    await pg.end();
  }
  // scim2-server: the users, then each group with its members (by id).
  const idp = desired.targets.get('idp')!;
  const ids = new Map<string, string>();
  await pool(subjects, 16, async (s) => {
    const a = idp.accounts.get(s)!.attributes;
    const r = await scimCall(env, 'POST', '/Users', {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
      userName: s,
      externalId: a.externalId,
      displayName: a.displayName,
      emails: [{ value: a.email, primary: true }],
      active: true,
    });
    ids.set(s, (r.body as { id: string }).id);
  });
  const moduleGroup = `${customer}-mod-analytics`;
  for (const [name, g] of idp.groups) {
    const members = [...g.members].filter((s) => !(name === moduleGroup && changed.includes(s)));
    await scimCall(env, 'POST', '/Groups', {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'],
      displayName: name,
      members: members.map((s) => ({ value: ids.get(s)! })),
    });
  }
  return changed.length * 2;
}

/** Seed and check one contract of each size; figures only. */
export async function runDriftBench(
  env: StackEnv,
  sizes: number[],
  log: (line: string) => void = () => undefined,
): Promise<DriftFigure[]> {
  const workerEnv = {
    ...process.env,
    ...referenceWorkerEnv(env),
    AMENDCTL_AUDIT_HOST: env.AMENDCTL_TEST_PG_HOST,
    AMENDCTL_AUDIT_PORT: env.AMENDCTL_TEST_PG_PORT,
  };
  Object.assign(process.env, referenceWorkerEnv(env)); // connectors read credentials from the process environment
  const rulesText = readFileSync(RULES, 'utf8');
  const ruleset = loadRuleset(rulesText, RULES);
  const registry = new ConnectorRegistry(
    parseTargets(readFileSync(TARGETS, 'utf8'), TARGETS, {
      ...workerEnv,
      AMENDCTL_IDP_RATE: '100000',
      AMENDCTL_WAREHOUSE_RATE: '100000',
    }),
  );
  const shares = ShareStore.fromEnv(workerEnv);
  const figures: DriftFigure[] = [];
  try {
    for (const n of sizes) {
      const customer = `bench${n}-${randomBytes(3).toString('hex')}`;
      const contract = contractOf(customer, n);
      const t0 = performance.now();
      const expected = await seed(env, contract, rulesText);
      const seedMs = performance.now() - t0;
      log(`  ${n} accounts seeded in ${(seedMs / 1000).toFixed(1)} s; checking ...`);
      const t1 = performance.now();
      const report = await checkAppliedDrift(
        { registry, ruleset: () => ruleset, shares: () => shares },
        `${customer}-msa`,
        { contract, previous: null, sequence: 1, amendmentId: `${customer}-001` },
      );
      const checkMs = performance.now() - t1;
      const ms = (t: string) => report.targets.find((x) => x.target === t)?.ms ?? 0;
      const counts = countDifferences(report.differences) as Record<string, Record<string, number>>;
      if (report.differences.length !== expected)
        log(`  note: ${report.differences.length} differences found, ${expected} made out of band`);
      figures.push({
        accounts: n,
        seedMs,
        checkMs,
        idpMs: ms('idp'),
        warehouseMs: ms('warehouse'),
        differences: report.differences.length,
        counts,
      });
    }
  } finally {
    await Promise.allSettled([registry.close(), shares.close()]);
  }
  return figures;
}

export function driftTable(figures: DriftFigure[]): string {
  const rows = [
    ['accounts', 'drift check', 'idp (scim)', 'warehouse (postgres)', 'differences found', 'seeding (not the check)'],
  ];
  for (const f of figures) {
    rows.push([
      f.accounts.toLocaleString('en-US'),
      `${(f.checkMs / 1000).toFixed(2)} s`,
      `${(f.idpMs / 1000).toFixed(2)} s`,
      `${(f.warehouseMs / 1000).toFixed(2)} s`,
      String(f.differences),
      `${(f.seedMs / 1000).toFixed(1)} s`,
    ]);
  }
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => (i === 0 ? c.padStart(w[i]!) : c.padEnd(w[i]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const at = args.indexOf('--sizes');
  const sizes = args.includes('--small')
    ? [100, 1000]
    : at >= 0
      ? args[at + 1]!.split(',').map(Number)
      : [1000, 10_000];
  if (sizes.some((n) => !Number.isInteger(n) || n < 1 || n > 100_000))
    throw new Error('--sizes: whole numbers from 1 to 100000, comma-separated');
  process.stdout.write(`bench:drift: starting the bench's servers (PostgreSQL, scim2-server, Temporal) ...\n`);
  const stack = await startStack();
  try {
    const figures = await runDriftBench(stack.env, sizes, (l) => process.stdout.write(`${l}\n`));
    process.stdout.write(
      `\ndrift check of one contract, reference policy (idp on scim2-server, warehouse on PostgreSQL), 1% of it changed out of band:\n${driftTable(figures)}\n`,
    );
  } finally {
    await stack.stop();
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`bench:drift: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  });
}
