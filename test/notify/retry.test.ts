/**
 * End to end on the run's Temporal dev server: the notification activities in a real worker, a
 * tiny workflow (./workflow.ts) that notifies each endpoint with its own activity, and real
 * local receivers: a 503 (Retry-After: 3), a 503, then 200 is retried by Temporal and delivered
 * once more each time with the same webhook-id; Retry-After sets the wait; a 400 is given up at
 * once; the healthy receiver gets exactly one delivery.
 */
import { randomBytes } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { notifyActivities } from '../../src/activities/notify';
import { need } from '../harness/env';
import { config, endpoint, sampleNotice, secretVar } from './fixtures';
import { newSecret, type Receiver, startReceiver } from './receiver';
import type { NotifyOutcome, notifyTestWorkflow } from './workflow';

const secret = newSecret();
let flaky: Receiver, refusing: Receiver, healthy: Receiver;
let connection: NativeConnection, clientConnection: Connection, worker: Worker, running: Promise<void>;
let client: Client;
const taskQueue = `notify-test-${randomBytes(4).toString('hex')}`;

beforeAll(async () => {
  flaky = await startReceiver(secret, (n) =>
    n === 1 ? { status: 503, headers: { 'retry-after': '3' } } : n === 2 ? { status: 503 } : { status: 200 },
  );
  refusing = await startReceiver(secret, () => ({ status: 400, body: 'invalid_payload' }));
  healthy = await startReceiver(secret);
  const cfg = config(
    endpoint('flaky', flaky.url),
    endpoint('refusing', refusing.url),
    endpoint('healthy', healthy.url),
    endpoint('decisions', healthy.url, { events: ['decided'] }),
  );
  const env = {
    [secretVar('flaky')]: secret,
    [secretVar('refusing')]: secret,
    [secretVar('healthy')]: secret,
    [secretVar('decisions')]: secret,
  };
  const address = need('AMENDCTL_TEST_TEMPORAL_ADDRESS');
  connection = await NativeConnection.connect({ address });
  worker = await Worker.create({
    connection,
    namespace: 'default',
    taskQueue,
    workflowsPath: require.resolve('./workflow'),
    activities: notifyActivities(cfg, { env }),
    shutdownGraceTime: '1s',
  });
  running = worker.run();
  clientConnection = await Connection.connect({ address });
  client = new Client({ connection: clientConnection, namespace: 'default' });
});

afterAll(async () => {
  worker?.shutdown();
  await running;
  await Promise.allSettled([
    clientConnection?.close(),
    connection?.close(),
    flaky?.close(),
    refusing?.close(),
    healthy?.close(),
  ]);
});

test('each endpoint is retried on its own: 503, 503, 200 delivered; 400 given up at once; the healthy one sent once', async () => {
  const notice = sampleNotice({ id: `am-${taskQueue}:requested:1`, amendmentId: `am-${taskQueue}` });
  const outcomes: NotifyOutcome[] = await client.workflow.execute<typeof notifyTestWorkflow>('notifyTestWorkflow', {
    taskQueue,
    workflowId: `notify-${taskQueue}`,
    args: [notice],
    workflowExecutionTimeout: '60s',
  });

  expect(outcomes).toEqual([
    { endpoint: 'flaky', status: 200 },
    {
      endpoint: 'refusing',
      failed: expect.stringMatching(
        /^notification endpoint refusing \(http:\/\/127\.0\.0\.1:\d+\): POST answered 400 \(invalid_payload\)$/,
      ),
      type: 'NotificationRejected',
      nonRetryable: true,
    },
    { endpoint: 'healthy', status: 200 },
  ]);

  // Three attempts at the flaky receiver, each signed afresh and verified, all with the notice's id.
  expect(flaky.deliveries).toHaveLength(3);
  for (const d of flaky.deliveries)
    expect(d).toMatchObject({
      verified: true,
      hmacOk: true,
      headers: expect.objectContaining({ 'webhook-id': notice.id }),
    });
  expect(new Set(flaky.deliveries.map((d) => d.body)).size).toBe(1);
  const [first, second, third] = flaky.deliveries.map((d) => d.receivedAt) as [number, number, number];
  // Retry-After: 3 made the first wait 3 s; the next is the policy's (50 ms, which the server rounds up to about a second).
  expect(second - first).toBeGreaterThanOrEqual(2900);
  expect(third - second).toBeLessThan(2500);

  expect(refusing.deliveries).toHaveLength(1);
  expect(healthy.deliveries).toHaveLength(1);
  expect(healthy.deliveries[0]).toMatchObject({ verified: true, hmacOk: true });

  // History holds names and the notice: no secret, no receiver address.
  const history = await client.workflow.getHandle(`notify-${taskQueue}`).fetchHistory();
  const decoded = (k: string, v: unknown): unknown =>
    v instanceof Uint8Array
      ? Buffer.from(v).toString('utf8')
      : k === 'data' && typeof v === 'string'
        ? Buffer.from(v, 'base64').toString('utf8')
        : v;
  const text = JSON.stringify(history, decoded);
  expect(text).toContain(notice.id);
  expect(text).toContain('refusing');
  expect(text).not.toContain(secret.slice('whsec_'.length));
  expect(text).not.toContain('secret-path-token');
});
