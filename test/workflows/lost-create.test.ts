/**
 * Compensation removes what the amendment created, also when the create's answer was lost
 * (issue 10, point 3), on the real dev server, scim2-server and PostgreSQL: the identity
 * provider makes the user but the connection is cut before its answer arrives; the retry finds
 * the user, and the operation's journal in the operation store says it is this operation's own.
 * The amendment then fails for good (the provider refuses its group writes), and its rollback
 * deletes the user instead of keeping it as an account that "already existed".
 */
import { RawScim, startHttpProxy, type HttpProxy, type Seen } from '../harness/servers/scim';
import { OperationStore } from '../../src/store/operations';
import { need } from '../harness/env';
import { baseline, customer } from './fixtures';
import { pgSnapshot, startStack, type Stack } from './stack';

let proxy: HttpProxy;
let stack: Stack;
let scim: RawScim;

beforeAll(async () => {
  const url = new URL(need('AMENDCTL_TEST_SCIM_URL'));
  proxy = await startHttpProxy(url.origin);
  stack = await startStack('lost-create', {
    env: { AMENDCTL_IDP_URL: `${proxy.url}${url.pathname}`, AMENDCTL_AUDIT_PORT: need('AMENDCTL_TEST_PG_PORT') },
  });
  scim = new RawScim(need('AMENDCTL_TEST_SCIM_URL'), need('AMENDCTL_TEST_SCIM_TOKEN'));
});
afterAll(async () => {
  await stack?.stop();
  await proxy?.close();
});

test('a user whose create answer was lost is deleted when the amendment rolls back', async () => {
  const c = customer('lost');
  const lee = c.email('lee');
  let lost = 0;
  proxy.hooks.push(async (r: Seen) => {
    if (
      r.method === 'POST' &&
      r.path.endsWith('/Users') &&
      (r.body as { userName?: string }).userName === lee &&
      lost++ === 0
    )
      return { lose: true };
    // The provider refuses every group write: the amendment cannot complete and is rolled back.
    if (r.path.includes('/Groups') && r.method !== 'GET')
      return {
        status: 403,
        body: {
          schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'],
          status: '403',
          detail: 'group writes are not allowed',
        },
      };
    return undefined;
  });
  const a = baseline(c, [['lee', 'member']]);
  await stack.client.submitAmendment(a);
  const v = await stack.client.waitForResult(a.amendmentId);
  expect(v.status).toBe('rolled_back');
  expect(lost).toBe(1); // one create, its answer lost: the retry found the user and made no second one
  // Its own creation: removed, not kept.
  expect(await scim.users(lee)).toEqual([]);
  expect(Object.values(await pgSnapshot(c.domain)).filter((role) => role.login)).toEqual([]);
  const store = OperationStore.fromEnv(process.env);
  const page = await store.page(a.amendmentId).finally(() => store.close());
  expect(page?.operations.find((o) => o.op.target === 'idp' && o.op.action === 'ensureAccount')).toMatchObject({
    outcome: 'applied',
    result: { detail: expect.stringMatching(/the answer to the create was lost/) },
    compensation: { outcome: 'compensated' },
  });
}, 120_000);
