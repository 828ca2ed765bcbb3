/**
 * npm run chaos, small (issue 10, point 5): the same run (src/chaos/run.ts) in this process,
 * 3 contracts x 4 amendments in shuffled order, two worker processes on one task queue, two
 * SIGKILLs, one restart of the dev server on its SQLite file, a 4 s outage of the identity
 * provider; nothing lost, no account wrong, none duplicated. Then the checker is shown to see
 * what it must: a role revoked by hand and a second SCIM user with an existing externalId.
 *
 * PostgreSQL and scim2-server are the harness's; the dev server is this test's own, since it
 * restarts it (as test/governance/restart.test.ts does). The workers run the built CLI
 * (bin/amendctl): npm run build first.
 */
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { Client as PgClient } from 'pg';
import { REFERENCE_RULES } from '../../src/bench/e2e/docs';
import { startTemporal, type StackEnv, type TemporalServer } from '../../src/bench/e2e/stack';
import { expectedAccounts } from '../../src/chaos/expect';
import { summary } from '../../src/chaos/report';
import { runChaos, type ChaosReport, type RunOptions } from '../../src/chaos/run';
import { generateScenario } from '../../src/chaos/scenario';
import { verifyTargets, type TargetsToRead } from '../../src/chaos/verify';
import { newKeyList } from '../../src/codec';
import { loadRuleset } from '../../src/domain/rules';
import { need } from '../harness/env';
import { runDir } from '../harness/proc';
import { RawScim } from '../harness/servers/scim';

const OPTIONS: RunOptions = {
  contracts: 3,
  amendments: 4,
  seed: 7,
  killEvery: 4,
  maxKills: 2,
  workers: 2,
  outageTarget: 'idp',
  outageSeconds: 4,
  restartAt: 0.25,
  outageAt: 0.5,
  submitGapMs: 500,
  timeout: 75,
};

const dir = runDir('chaos');
let temporal: TemporalServer | undefined;
let env: StackEnv;
let report: ChaosReport;
const lines: string[] = [];

const targets = (): TargetsToRead => ({
  scim: { url: env.AMENDCTL_TEST_SCIM_URL, token: env.AMENDCTL_TEST_SCIM_TOKEN },
  postgres: {
    host: env.AMENDCTL_TEST_PG_HOST,
    port: Number(env.AMENDCTL_TEST_PG_PORT),
    password: env.AMENDCTL_TEST_PG_PASSWORD,
  },
});

beforeAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  temporal = await startTemporal(dir);
  env = {
    AMENDCTL_CODEC_KEYS: process.env.AMENDCTL_CODEC_KEYS ?? newKeyList('chaos'),
    AMENDCTL_TEST_TEMPORAL_ADDRESS: temporal.address,
    AMENDCTL_TEST_SCIM_URL: need('AMENDCTL_TEST_SCIM_URL'),
    AMENDCTL_TEST_SCIM_TOKEN: need('AMENDCTL_TEST_SCIM_TOKEN'),
    AMENDCTL_TEST_PG_HOST: need('AMENDCTL_TEST_PG_HOST'),
    AMENDCTL_TEST_PG_PORT: need('AMENDCTL_TEST_PG_PORT'),
    AMENDCTL_TEST_PG_PASSWORD: need('AMENDCTL_TEST_PG_PASSWORD'),
    ...(process.env.AMENDCTL_WORKFLOW_BUNDLE ? { workflowBundle: process.env.AMENDCTL_WORKFLOW_BUNDLE } : {}),
    dir,
  };
}, 60_000);
afterAll(async () => {
  await temporal?.stop();
});

test('3 contracts x 4 amendments under kills, a server restart and an outage: none lost, none wrong, none duplicated', async () => {
  report = await runChaos(OPTIONS, { env, temporal: temporal! }, (l) => lines.push(l));
  const text = `${lines.join('\n')}\n${summary(report)}`;
  expect({
    lost: report.lost,
    wrong: report.wrongAccounts,
    duplicates: report.duplicates,
    completed: report.completed,
    ok: report.ok,
    text,
  }).toEqual({ lost: 0, wrong: 0, duplicates: 0, completed: 12, ok: true, text });
  expect(report.submitted).toBe(12);
  expect(report.kills).toBeGreaterThanOrEqual(1);
  expect(report.serverRestarts).toBe(1);
  expect(report.outage.ms).toBeGreaterThanOrEqual(4000);
  expect(report.faultsMissed).toEqual([]);
  expect(report.accountsChecked.idp).toBeGreaterThanOrEqual(9);
  expect(report.accountsChecked.warehouse).toBe(report.accountsChecked.idp);
  expect(JSON.parse(JSON.stringify(report))).toEqual(report); // the --json file is this object
}, 100_000);

test('the checker sees a role revoked by hand and a second SCIM user with an existing externalId', async () => {
  expect(report).toBeDefined();
  const ruleset = loadRuleset(readFileSync(REFERENCE_RULES, 'utf8'), REFERENCE_RULES);
  const scenario = generateScenario(
    { contracts: OPTIONS.contracts, amendments: OPTIONS.amendments, seed: report.seed, tag: report.tag },
    ruleset,
  );
  expect((await verifyTargets(scenario, ruleset, targets())).wrong).toEqual([]); // the same seed and tag: the same amendments

  const contract = scenario.contracts[0]!;
  const want = expectedAccounts(contract, ruleset);
  const [email, account] = [...want.warehouse].find(([, a]) => a.memberOf.length > 0)!;
  const pg = new PgClient({ ...targets().postgres, user: 'amendctl', database: 'warehouse' });
  await pg.connect();
  try {
    await pg.query(`REVOKE "${account.memberOf[0]}" FROM "${email}"`);
  } finally {
    await pg.end();
  }
  const [someone, idp] = [...want.idp][0]!;
  const scim = new RawScim(env.AMENDCTL_TEST_SCIM_URL, env.AMENDCTL_TEST_SCIM_TOKEN);
  const copy = `copy-of-${someone}`;
  expect(
    (
      await scim.call('POST', '/Users', {
        schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
        userName: copy,
        externalId: idp.externalId,
        active: true,
      })
    ).status,
  ).toBe(201);

  const v = await verifyTargets(scenario, ruleset, targets());
  expect(v.wrong.map((w) => `${w.target} ${w.account}`).sort()).toEqual([`idp ${copy}`, `warehouse ${email}`]);
  expect(v.wrong.find((w) => w.target === 'warehouse')?.actual).toEqual({
    ...account,
    memberOf: account.memberOf.slice(1),
  });
  expect(v.duplicates).toEqual([expect.objectContaining({ externalId: idp.externalId })]); // the later of the two in the server's listing
  expect([copy, someone]).toContain(v.duplicates[0]!.userName);
}, 30_000);
