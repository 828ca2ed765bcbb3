/**
 * The end of a chaos run: every account of every contract in both targets, read back
 * (src/chaos/readback.ts), against what the contracts say (src/chaos/expect.ts). An account
 * differing in anything compared, missing, or present without being expected is wrong; a
 * second SCIM user for one userName or one externalId is a duplicate.
 */
import { Client as PgClient } from 'pg';
import { canonicalJson } from '../domain/json';
import type { Ruleset } from '../domain/rules';
import { expectedAccounts, IDP, type PgAccount, type ScimAccount, WAREHOUSE } from './expect';
import { readPgRoles, readScim, type ScimReading } from './readback';
import type { Scenario } from './scenario';

export interface TargetsToRead {
  scim: { url: string; token: string };
  postgres: { host: string; port: number; password: string; user?: string; database?: string };
}

export interface WrongAccount {
  target: string;
  account: string;
  expected: ScimAccount | PgAccount | null;
  actual: ScimAccount | PgAccount | null;
}

export interface Verification {
  /** Accounts expected, per target. */
  checked: Record<string, number>;
  wrong: WrongAccount[];
  duplicates: ScimReading['duplicates'];
}

export async function verifyTargets(
  scenario: Scenario,
  ruleset: Ruleset,
  targets: TargetsToRead,
): Promise<Verification> {
  const domains = new Set(scenario.contracts.map((c) => c.domain));
  const scim = await readScim(targets.scim.url, targets.scim.token, (userName) =>
    domains.has(userName.slice(userName.lastIndexOf('@') + 1).toLowerCase()),
  );
  const pg = new PgClient({
    host: targets.postgres.host,
    port: targets.postgres.port,
    user: targets.postgres.user ?? 'amendctl',
    password: targets.postgres.password,
    database: targets.postgres.database ?? 'warehouse',
  });
  await pg.connect();
  const wrong: WrongAccount[] = [];
  const checked = { [IDP]: 0, [WAREHOUSE]: 0 };
  try {
    for (const c of scenario.contracts) {
      const want = expectedAccounts(c, ruleset);
      const inDomain = (email: string): boolean => email.endsWith(`@${c.domain}`);
      const scimHave = new Map(
        [...scim.accounts].filter(([name]) => inDomain(name)).map(([name, list]) => [name, list[0]!]),
      );
      compare(IDP, want.idp, scimHave, wrong);
      compare(WAREHOUSE, want.warehouse, new Map(Object.entries(await readPgRoles(pg, `%@${c.domain}`))), wrong);
      checked[IDP] += want.idp.size;
      checked[WAREHOUSE] += want.warehouse.size;
    }
  } finally {
    await pg.end();
  }
  return { checked, wrong, duplicates: scim.duplicates };
}

function compare<T extends ScimAccount | PgAccount>(
  target: string,
  expected: Map<string, T>,
  actual: Map<string, T>,
  wrong: WrongAccount[],
): void {
  for (const account of new Set([...expected.keys(), ...actual.keys()])) {
    const e = expected.get(account) ?? null;
    const a = actual.get(account) ?? null;
    if (canonicalJson(e) !== canonicalJson(a)) wrong.push({ target, account, expected: e, actual: a });
  }
}
