/**
 * Every signature scheme of examples/webhook/sources.yaml over real HTTP against the running
 * API server (issue 11), on the real dev server: a genuine delivery is acknowledged 202 once its
 * amendment's workflow has started; the same event again answers 200 with no second workflow; a
 * forged one (another key) and, where the scheme carries a timestamp, a stale one are refused with
 * their status and a problem that says why. Ironclad's thin event is followed by a fetch from the
 * loopback app that plays Ironclad. Each contract's ids are this run's own.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { buildApiServer, DEFAULT_LIMITS } from '../../src/api/server';
import { loadWebhookSources } from '../../src/api/webhooks';
import {
  EXAMPLES,
  HUBSPOT_SECRET,
  CLM_KEY,
  DOCUSIGN_KEY,
  INTERNAL_SECRET,
  IroncladApp,
  docusignSig,
  example,
  githubSig,
  hubspotHeaders,
  ironcladHeaders,
  ironcladKeys,
  sourcesEnv,
  standardHeaders,
  stranger,
} from './support/senders';
import { startStack, type Stack } from '../workflows/stack';
import { join } from 'node:path';

const app = new IroncladApp();
let stack: Stack;
let api: FastifyInstance;
let base = '';
const started: string[] = [];

beforeAll(async () => {
  await app.start();
  stack = await startStack('webhooks-http');
  api = buildApiServer({
    client: stack.client,
    sources: loadWebhookSources(join(EXAMPLES, 'sources.yaml'), sourcesEnv(app.url)),
    auth: { keys: [] },
    limits: DEFAULT_LIMITS,
    logger: () => undefined,
  });
  base = await api.listen({ port: 0, host: '127.0.0.1' });
}, 60_000);
afterAll(async () => {
  // The amendments wait for their contracts' baselines: cancel them, so nothing is left running.
  await Promise.all(
    started.map((id) =>
      stack.client.cancel(id, { by: 'webhooks-http-test', reason: 'test over' }).catch(() => undefined),
    ),
  );
  await api?.close();
  await stack?.stop();
  await app.stop();
});

/** An example payload with this run's own contract: every `acme-msa` id renamed (amendments of it wait for a baseline that never comes: nothing is applied). */
function own(name: string): { body: Buffer; contract: string } {
  const contract = `wh${randomBytes(3).toString('hex')}-msa`;
  return { body: Buffer.from(example(name).toString('utf8').replaceAll('acme-msa', contract)), contract };
}

async function post(
  source: string,
  headers: Record<string, string>,
  body: Buffer,
): Promise<{ status: number; type: string; body: Record<string, unknown> }> {
  const res = await fetch(`${base}/v1/webhooks/${source}`, { method: 'POST', headers, body });
  return {
    status: res.status,
    type: res.headers.get('content-type')?.split(';')[0] ?? '',
    body: (await res.json()) as Record<string, unknown>,
  };
}

/** 202 and the workflow started; the same event again 200, the same run; returns the amendment id. */
async function acceptedOnce(
  source: string,
  amendmentId: string,
  first: () => Record<string, string>,
  again: () => Record<string, string>,
  body: Buffer,
): Promise<void> {
  const a = await post(source, first(), body);
  expect({ status: a.status, amendments: a.body['amendments'] }).toMatchObject({
    status: 202,
    amendments: [{ amendmentId }],
  });
  started.push(amendmentId);
  const run = (await stack.client.client.workflow.getHandle(`amendment-${amendmentId}`).describe()).runId;
  const b = await post(source, again(), body);
  expect(b.status).toBe(200);
  expect((await stack.client.client.workflow.getHandle(`amendment-${amendmentId}`).describe()).runId).toBe(run);
  const runs: string[] = [];
  for await (const w of stack.client.client.workflow.list({ query: `AmendmentId = "${amendmentId}"` }))
    runs.push(w.runId);
  expect(runs.filter((r) => r !== run)).toEqual([]);
}

function refusedWith(
  r: { status: number; type: string; body: Record<string, unknown> },
  status: number,
  slug: string,
  detail: RegExp,
): void {
  expect({ status: r.status, type: r.type, problem: r.body['type'] }).toEqual({
    status,
    type: 'application/problem+json',
    problem: `urn:amendctl:problem:${slug}`,
  });
  expect(r.body['detail']).toMatch(detail);
}

const now = () => Math.floor(Date.now() / 1000);

test('Standard Webhooks (clm): genuine 202, redelivered 200 with no second workflow, forged 401, stale 409', async () => {
  const { body, contract } = own('standard-contract-amended.json');
  const id = `evt_${contract}`;
  await acceptedOnce(
    'clm',
    `${contract}-002`,
    () => standardHeaders([CLM_KEY], id, now(), body),
    () => standardHeaders([CLM_KEY], id, now(), body),
    body,
  );
  refusedWith(
    await post('clm', standardHeaders([randomBytes(32)], id, now(), body), body),
    401,
    'signature-invalid',
    /no v1 signature matches/,
  );
  refusedWith(
    await post('clm', standardHeaders([CLM_KEY], id, now() - 3600, body), body),
    409,
    'timestamp-stale',
    /webhook-timestamp/,
  );
});

test('HubSpot v3: genuine 202, redelivered 200, forged 401, older than 5 minutes 409', async () => {
  const { body, contract } = own('hubspot-deal.json');
  const uri = `${base}/v1/webhooks/hubspot`;
  await acceptedOnce(
    'hubspot',
    `${contract}-003`,
    () => hubspotHeaders(HUBSPOT_SECRET, 'POST', uri, body, Date.now()),
    () => hubspotHeaders(HUBSPOT_SECRET, 'POST', uri, body, Date.now()),
    body,
  );
  refusedWith(
    await post('hubspot', hubspotHeaders('another-client-secret', 'POST', uri, body, Date.now()), body),
    401,
    'signature-invalid',
    /X-HubSpot-Signature-v3/i,
  );
  refusedWith(
    await post('hubspot', hubspotHeaders(HUBSPOT_SECRET, 'POST', uri, body, Date.now() - 10 * 60_000), body),
    409,
    'timestamp-stale',
    /X-HubSpot-Request-Timestamp/i,
  );
});

test('DocuSign Connect: genuine 202, redelivered 200, forged 401 (the scheme has no timestamp: a replay is known by its event id)', async () => {
  const { body, contract } = own('docusign-envelope-completed.json');
  const headers = (key: string) => ({
    'content-type': 'application/json',
    'x-docusign-signature-1': docusignSig(key, body),
  });
  await acceptedOnce(
    'docusign',
    `${contract}-004`,
    () => headers(DOCUSIGN_KEY),
    () => headers(DOCUSIGN_KEY),
    body,
  );
  refusedWith(
    await post('docusign', headers('another-hmac-key'), body),
    401,
    'signature-invalid',
    /X-DocuSign-Signature/i,
  );
});

test('Ironclad: a genuine thin event is fetched over REST and acknowledged 202; redelivered 200; signed by another key 401', async () => {
  const { body: record, contract } = own('amendment-02.json');
  const workflowID = `wf${randomBytes(4).toString('hex')}`;
  app.serveRecord(workflowID, JSON.parse(record.toString('utf8')));
  const event = Buffer.from(
    JSON.stringify({
      companyID: 'c1',
      payload: { event: 'workflow_completed', templateID: 't1', workflowID },
      timestamp: new Date().toISOString(),
      webhookID: 'w1',
    }),
  );
  const eventId = `webhookEvent${randomBytes(6).toString('hex')}`;
  await acceptedOnce(
    'ironclad',
    `${contract}-002`,
    () => ironcladHeaders(ironcladKeys.privateKey, eventId, event),
    () => ironcladHeaders(ironcladKeys.privateKey, eventId, event),
    event,
  );
  expect(app.requests.filter((r) => r.path.endsWith(`/records/${workflowID}`)).length).toBeGreaterThanOrEqual(1);
  refusedWith(
    await post('ironclad', ironcladHeaders(stranger.privateKey, eventId, event), event),
    401,
    'signature-invalid',
    /signature/i,
  );
});

test('generic HMAC (internal): genuine 202, redelivered 200, forged 401', async () => {
  const { body, contract } = own('amendment-02.json');
  const headers = (secret: string) => ({
    'content-type': 'application/json',
    'x-hub-signature-256': githubSig(secret, body),
    'x-delivery-id': `d-${contract}`,
  });
  await acceptedOnce(
    'internal',
    `${contract}-002`,
    () => headers(INTERNAL_SECRET),
    () => headers(INTERNAL_SECRET),
    body,
  );
  refusedWith(
    await post('internal', headers('not-the-secret'), body),
    401,
    'signature-invalid',
    /x-hub-signature-256/i,
  );
});
