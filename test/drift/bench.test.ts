/**
 * Smoke test of npm run bench:drift (src/bench/drift.ts): the bench's own functions at a small
 * size against the harness's servers. It checks the figures are produced and the drift made out
 * of band is what the check finds, never timings.
 */
import { driftTable, runDriftBench } from '../../src/bench/drift';
import type { StackEnv } from '../../src/bench/e2e/stack';
import { need } from '../harness/env';

test('the drift bench seeds a contract, changes 1% of it out of band, and the check finds exactly that', async () => {
  const env: StackEnv = {
    AMENDCTL_CODEC_KEYS: need('AMENDCTL_CODEC_KEYS'),
    AMENDCTL_TEST_TEMPORAL_ADDRESS: '',
    AMENDCTL_TEST_SCIM_URL: need('AMENDCTL_TEST_SCIM_URL'),
    AMENDCTL_TEST_SCIM_TOKEN: need('AMENDCTL_TEST_SCIM_TOKEN'),
    AMENDCTL_TEST_PG_HOST: need('AMENDCTL_TEST_PG_HOST'),
    AMENDCTL_TEST_PG_PORT: need('AMENDCTL_TEST_PG_PORT'),
    AMENDCTL_TEST_PG_PASSWORD: need('AMENDCTL_TEST_PG_PASSWORD'),
    dir: '',
  };
  const [f] = await runDriftBench(env, [200]);
  expect(f!.accounts).toBe(200);
  expect(f!.counts).toEqual({ idp: { membership_missing: 2 }, warehouse: { account_inactive: 2 } });
  expect(f!.checkMs).toBeGreaterThan(0);
  expect(driftTable([f!]).split('\n')[1]).toMatch(/^ +200 {2}\d+\.\d\d s/);
});
