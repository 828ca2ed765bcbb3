/**
 * Approval notices from a real amendment (issue 12): a worker on the dev server with a
 * notifications file naming a local receiver; an amendment that grants admin is requested (a
 * signed, Slack-compatible notice naming the rule, the grants and who may decide), then approved
 * (a `decided` notice naming the approver). The receiver verifies each signature.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { until } from '../harness/until';
import { baseline, customer } from '../workflows/fixtures';
import { startStack, type Stack } from '../workflows/stack';
import { newSecret, type Receiver, startReceiver } from './receiver';

const dir = mkdtempSync(join(tmpdir(), 'amendctl-notices-'));
const secret = newSecret();
let receiver: Receiver;
let stack: Stack;

beforeAll(async () => {
  receiver = await startReceiver(secret);
  const file = join(dir, 'notifications.yaml');
  writeFileSync(
    file,
    `endpoints:\n  - name: approvers\n    url: ${receiver.url}\n    secret: env:AMENDCTL_TEST_NOTIFY_SECRET\n    inboxUrl: https://amendctl.example.com\n`,
  );
  stack = await startStack('notices', { env: { AMENDCTL_NOTIFICATIONS: file, AMENDCTL_TEST_NOTIFY_SECRET: secret } });
}, 60_000);
afterAll(async () => {
  await stack?.stop();
  await receiver?.close();
  delete process.env.AMENDCTL_NOTIFICATIONS;
  rmSync(dir, { recursive: true, force: true });
});

type Slack = {
  text: string;
  blocks: Array<{ type: string; text?: { text: string }; elements?: Array<{ text: string }> }>;
};
const textOf = (m: Slack): string =>
  [m.text, ...m.blocks.flatMap((b) => [b.text?.text ?? '', ...(b.elements ?? []).map((e) => e.text)])].join('\n');

test('requested, then decided: signed notices with the rule, the grants, who may decide, and who approved', async () => {
  const c = customer('notices');
  const a = baseline(c, [['alice', 'admin']], { submittedBy: 'sam' });
  await stack.client.submitAmendment(a);
  const requested = await until('the requested notice', async () =>
    receiver.deliveries.find((d) => d.headers['webhook-id'] === `${a.amendmentId}:requested:1`),
  );
  expect({ verified: requested.verified, hmacOk: requested.hmacOk }).toEqual({ verified: true, hmacOk: true });
  const asked = textOf(requested.json as Slack);
  expect(asked).toContain(a.amendmentId);
  expect(asked).toMatch(/admin/i); // the rule that asked
  expect(asked).toContain(c.email('alice')); // what it grants to whom
  expect(asked).toContain(`https://amendctl.example.com/inbox/amendments/${a.amendmentId}`);

  await stack.client.approve(a.amendmentId, { by: 'dana', comment: 'ok' });
  expect((await stack.client.waitForResult(a.amendmentId)).status).toBe('completed');
  const decided = await until('the decided notice', async () =>
    receiver.deliveries.find((d) => d.headers['webhook-id'] === `${a.amendmentId}:decided:1`),
  );
  expect(decided.verified).toBe(true);
  expect(textOf(decided.json as Slack)).toMatch(/approved.*dana|dana.*approved/is);
  // One delivery per notice: nothing sent twice.
  expect(
    receiver.deliveries
      .filter((d) => String(d.headers['webhook-id']).startsWith(`${a.amendmentId}:`))
      .map((d) => d.headers['webhook-id'])
      .sort(),
  ).toEqual([`${a.amendmentId}:decided:1`, `${a.amendmentId}:requested:1`]);
}, 120_000);
