/**
 * Delivery and failure classification at the activity: a real local receiver, the activity run
 * in a MockActivityEnvironment (its Temporal context), the failure it throws inspected.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApplicationFailure, type Logger } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { notifyActivities } from '../../src/activities/notify';
import { type NotificationsConfig } from '../../src/notify/config';
import type { ApprovalNotice } from '../../src/notify/notice';
import { config, endpoint, sampleNotice, secretVar } from './fixtures';
import { type Answer, newSecret, type Receiver, startReceiver } from './receiver';

const secret = newSecret();
const env = { [secretVar('ops')]: secret };
const receivers: Receiver[] = [];
afterEach(async () => {
  await Promise.all(receivers.splice(0).map((r) => r.close()));
});

async function receiver(answer?: (n: number) => Answer, withSecret = secret): Promise<Receiver> {
  const r = await startReceiver(withSecret, answer);
  receivers.push(r);
  return r;
}

/** Everything the activity (and the SDK around it) logs. */
const logged: string[] = [];
const capture = (level: string) => (message: string, meta?: Record<string, unknown>) =>
  void logged.push(
    `${level} ${message} ${JSON.stringify(meta ?? {}, (_k, v: unknown) => (v instanceof Error ? `${v.message}` : v))}`,
  );
const logger: Logger = {
  log: (level, message, meta) => capture(level)(message, meta),
  trace: capture('TRACE'),
  debug: capture('DEBUG'),
  info: capture('INFO'),
  warn: capture('WARN'),
  error: capture('ERROR'),
};

function run(
  cfg: NotificationsConfig,
  notice: ApprovalNotice = sampleNotice(),
  name = 'ops',
  e: NodeJS.ProcessEnv = env,
) {
  return new MockActivityEnvironment(undefined, { logger }).run(
    notifyActivities(cfg, { env: e }).notifyApproval,
    notice,
    name,
  );
}

afterAll(() => {
  // Nothing logged, in any test, shows the secret, the receiver's path (a Slack URL's credential) or the body.
  const all = logged.join('\n');
  expect(logged.some((l) => l.includes('notification delivered'))).toBe(true);
  expect(all).not.toContain(secret.slice(6));
  expect(all).not.toContain('secret-path-token');
  expect(all).not.toContain('adds 2 admin seats');
});

async function failure(p: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof ApplicationFailure)) throw new Error(`expected an ApplicationFailure, got ${String(err)}`);
  return err;
}

test('a delivery is signed (Standard Webhooks), verified by an independent receiver, and is Slack-shaped JSON', async () => {
  const r = await receiver();
  const notice = sampleNotice();
  await expect(run(config(endpoint('ops', r.url)), notice)).resolves.toEqual({ endpoint: 'ops', status: 200 });
  expect(r.deliveries).toHaveLength(1);
  const d = r.deliveries[0]!;
  expect(d.refusal).toBeUndefined();
  expect(d.verified).toBe(true);
  expect(d.hmacOk).toBe(true);
  expect(d.headers['webhook-id']).toBe(notice.id);
  expect(d.headers['content-type']).toBe('application/json');
  expect(Math.abs(Number(d.headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(60);
  const body = d.json as { text: string; blocks: Array<{ type: string }> };
  expect(body.text).toContain('Approval requested');
  expect(body.blocks.map((b) => b.type)).toContain('context');
  expect(d.body).not.toContain(secret.slice(6));
  expect(JSON.stringify(d.headers)).not.toContain(secret.slice(6));
});

test('a receiver holding another secret refuses the signature (the check can fail)', async () => {
  const r = await receiver(undefined, newSecret());
  await run(config(endpoint('ops', r.url)));
  expect(r.deliveries[0]).toMatchObject({ verified: false, hmacOk: false });
  expect(r.deliveries[0]!.refusal).toMatch(/no v1 signature matches/);
});

test('503 with Retry-After is retryable with nextRetryDelay; the message names the endpoint and status, not the path', async () => {
  const r = await receiver(() => ({ status: 503, headers: { 'retry-after': '7' }, body: 'maintenance' }));
  const f = await failure(run(config(endpoint('ops', r.url))));
  expect(f).toMatchObject({ type: 'NotificationUnavailable', nonRetryable: false, nextRetryDelay: 7000 });
  expect(f.message).toMatch(
    /notification endpoint ops \(http:\/\/127\.0\.0\.1:\d+\): POST answered 503 \(maintenance\)/,
  );
  expect(f.message).not.toContain('secret-path-token');
});

test('429 with an HTTP-date Retry-After, and 500 without one, are retryable', async () => {
  const at = new Date(Date.now() + 30_000).toUTCString();
  const r = await receiver((n): Answer =>
    n === 1 ? { status: 429, headers: { 'retry-after': at } } : { status: 500 },
  );
  const f429 = await failure(run(config(endpoint('ops', r.url))));
  expect(f429).toMatchObject({ type: 'NotificationUnavailable', nonRetryable: false });
  expect(Number(f429.nextRetryDelay)).toBeGreaterThan(25_000);
  expect(Number(f429.nextRetryDelay)).toBeLessThanOrEqual(30_000);
  const f500 = await failure(run(config(endpoint('ops', r.url))));
  expect(f500).toMatchObject({ type: 'NotificationUnavailable', nonRetryable: false });
  expect(f500.nextRetryDelay).toBeUndefined();
});

test('400 and a redirect are non-retryable NotificationRejected naming the endpoint and status', async () => {
  const r = await receiver((n): Answer =>
    n === 1
      ? { status: 400, body: '{"error":"invalid_blocks"}', headers: { 'content-type': 'application/json' } }
      : { status: 302, headers: { location: 'http://elsewhere.invalid/' } },
  );
  const f400 = await failure(run(config(endpoint('ops', r.url))));
  expect(f400).toMatchObject({ type: 'NotificationRejected', nonRetryable: true });
  expect(f400.message).toMatch(/notification endpoint ops .*answered 400 \(invalid_blocks\)/);
  const f302 = await failure(run(config(endpoint('ops', r.url))));
  expect(f302).toMatchObject({ type: 'NotificationRejected', nonRetryable: true });
  expect(f302.message).toMatch(/answered 302 .*: redirects are not followed/);
  expect(r.deliveries).toHaveLength(2);
});

test('a refused connection and a receiver that does not answer in time are retryable, and say so without the path', async () => {
  const r = await receiver();
  const url = r.url;
  await r.close();
  receivers.length = 0;
  const refused = await failure(run(config(endpoint('ops', url))));
  expect(refused).toMatchObject({ type: 'NotificationUnavailable', nonRetryable: false });
  expect(refused.message).toMatch(/POST failed: ECONNREFUSED/);
  expect(refused.message).not.toContain('secret-path-token');

  const held: Array<() => void> = [];
  const silent = createServer((_req, res) => held.push(() => res.end()));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  try {
    const port = (silent.address() as AddressInfo).port;
    const slow = await failure(run(config(endpoint('ops', `http://127.0.0.1:${port}/x`, { timeoutMs: 200 }))));
    expect(slow).toMatchObject({ type: 'NotificationUnavailable', nonRetryable: false });
    expect(slow.message).toMatch(/no answer within 200 ms/);
  } finally {
    held.forEach((end) => end());
    silent.closeAllConnections();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  }
});

test('a secret that is unset or not whsec_ base64 fails for good, without showing it', async () => {
  const r = await receiver();
  const unset = await failure(run(config(endpoint('ops', r.url)), sampleNotice(), 'ops', {}));
  expect(unset).toMatchObject({ type: 'NotificationMisconfigured', nonRetryable: true });
  expect(unset.message).toMatch(/environment variable NOTIFY_SECRET_OPS is not set/);
  const bad = await failure(
    run(config(endpoint('ops', r.url)), sampleNotice(), 'ops', { [secretVar('ops')]: 'hunter2!' }),
  );
  expect(bad).toMatchObject({ type: 'NotificationMisconfigured', nonRetryable: true });
  expect(bad.message).not.toContain('hunter2');
  expect(r.deliveries).toHaveLength(0);
});

test('an unknown endpoint and an invalid notice fail for good; notificationEndpoints filters by kind', async () => {
  const r = await receiver();
  const cfg = config(endpoint('ops', r.url), endpoint('audit', r.url, { events: ['decided'] }));
  expect(await failure(run(cfg, sampleNotice(), 'nope'))).toMatchObject({
    type: 'NotificationMisconfigured',
    nonRetryable: true,
    message: expect.stringMatching(/no notification endpoint "nope" in notifications.yaml \(configured: ops, audit\)/),
  });
  const invalid = await failure(
    run(cfg, { ...sampleNotice(), grants: { total: 1, first: Array.from({ length: 11 }, () => 'x') } }),
  );
  expect(invalid).toMatchObject({ type: 'InvalidNotice', nonRetryable: true });
  expect(invalid.message).toMatch(/grants\.first/);
  const acts = notifyActivities(cfg);
  await expect(acts.notificationEndpoints('requested')).resolves.toEqual(['ops']);
  await expect(acts.notificationEndpoints('decided')).resolves.toEqual(['ops', 'audit']);
  await expect(notifyActivities({ endpoints: [] }).notificationEndpoints('decided')).resolves.toEqual([]);
  expect(r.deliveries).toHaveLength(0);
});
