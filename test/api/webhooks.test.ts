/**
 * The webhook sources of examples/webhook/sources.yaml, scheme by scheme: a genuine delivery
 * is verified; forged (wrong key, tampered body or header), stale and malformed ones are
 * refused with their status and a detail that says why; rotated keys all verify; each
 * example payload maps to its amendment, and one that does not map is refused naming the
 * field. Ironclad's thin events are tested against a loopback app that plays Ironclad: it
 * signs with an RSA key pair made here and serves records over REST with bearer auth.
 *
 * The signatures are made here with node:crypto, independently of the code under test.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { InputError } from '../../src/domain/errors';
import { hubspotUri } from '../../src/api/webhooks/hubspot';
import {
  CLM_KEY,
  CLM_KEY_NEXT,
  DOCUSIGN_KEY,
  DOCUSIGN_KEY_PREVIOUS,
  docusignSig,
  example,
  exampleJson,
  githubSig,
  HUBSPOT_SECRET,
  HUBSPOT_SECRET_NEXT,
  hubspotHeaders,
  INTERNAL_SECRET,
  INTERNAL_SECRET_NEXT,
  IroncladApp,
  ironcladKeys,
  ironcladNext,
  IRONCLAD_TOKEN,
  pem,
  sourcesEnv,
  standardHeaders,
  stranger,
  whsec,
} from './support/senders';
import {
  httpFetcher,
  loadWebhookSources,
  parseWebhookSources,
  SourceUnavailableError,
  type Refusal,
  type Verified,
  type WebhookRequest,
  type WebhookSource,
} from '../../src/api/webhooks';

const ROOT = resolve(__dirname, '..', '..');
const EXAMPLES = join(ROOT, 'examples', 'webhook');
const SOURCES_FILE = join(EXAMPLES, 'sources.yaml');
/** Inline sources files are read as if they sat next to the examples (for their relative mapping paths). */
const INLINE_FILE = join(EXAMPLES, 'inline-test-sources.yaml');
const NOW = new Date('2025-06-03T10:00:30.000Z');
const NOW_S = Math.floor(NOW.getTime() / 1000);

// ---- a delivery and what it got ------------------------------------------------------------

function delivery(
  source: string,
  headers: Record<string, string>,
  body: Buffer,
  more: Partial<WebhookRequest> = {},
): WebhookRequest {
  const url = more.url ?? `/v1/webhooks/${source}`;
  return {
    method: 'POST',
    url,
    publicUrl: `https://amendctl.example.com${url}`,
    headers,
    body,
    receivedAt: NOW,
    ...more,
  };
}

function accepted(r: Verified | Refusal): Verified {
  if (!r.ok) throw new Error(`expected the delivery to be accepted, got ${r.status} ${r.type}: ${r.detail}`);
  return r;
}

function refused(r: Verified | Refusal | unknown, status: number, type: string, detail: RegExp): Refusal {
  const x = r as Verified | Refusal;
  if (x.ok !== false) throw new Error(`expected a ${status} ${type} refusal, got ${JSON.stringify(r)}`);
  expect({ status: x.status, type: x.type }).toEqual({ status, type });
  expect(x.detail).toMatch(detail);
  expect(x.title.length).toBeGreaterThan(0);
  return x;
}

/** No refusal detail may carry a configured secret (or its base64). */
const SECRETS = [CLM_KEY.toString('base64'), HUBSPOT_SECRET, DOCUSIGN_KEY, INTERNAL_SECRET, IRONCLAD_TOKEN];
function noSecrets(r: Refusal): void {
  for (const s of SECRETS) expect(r.detail).not.toContain(s);
}

const app = new IroncladApp();
let env: NodeJS.ProcessEnv;
let sources: Map<string, WebhookSource>;
const source = (name: string): WebhookSource => {
  const s = sources.get(name);
  if (!s) throw new Error(`no source ${name}`);
  return s;
};

beforeAll(async () => {
  await app.start();
  env = sourcesEnv(app.url);
  sources = loadWebhookSources(SOURCES_FILE, env);
});

afterAll(() => app.stop());

it('the example sources file loads every source with its scheme', () => {
  expect([...sources.values()].map((s) => [s.name, s.scheme])).toEqual([
    ['ironclad', 'ironclad'],
    ['hubspot', 'hubspot-v3'],
    ['docusign', 'docusign'],
    ['clm', 'standard-webhooks'],
    ['internal', 'hmac'],
  ]);
});

// ---- Standard Webhooks ------------------------------------------------------------------------

describe('Standard Webhooks', () => {
  const body = example('standard-contract-amended.json');
  const hook = (headers: Record<string, string>, b = body): WebhookRequest => delivery('clm', headers, b);
  const verify = (headers: Record<string, string>, b = body): Promise<Verified | Refusal> =>
    source('clm').verify(hook(headers, b));

  it('accepts a genuine delivery: the event id is webhook-id, sentAt its timestamp', async () => {
    const v = accepted(await verify(standardHeaders([CLM_KEY], 'msg_2ZC9', NOW_S - 10, body)));
    expect(v).toEqual({ ok: true, eventId: 'msg_2ZC9', sentAt: new Date((NOW_S - 10) * 1000) });
  });

  it('refuses a signature made with another key, a tampered body, a tampered id or timestamp (401)', async () => {
    noSecrets(
      refused(
        await verify(standardHeaders([randomBytes(32)], 'msg_1', NOW_S, body)),
        401,
        'signature-invalid',
        /no v1 signature matches/,
      ),
    );
    const h = standardHeaders([CLM_KEY], 'msg_1', NOW_S, body);
    refused(
      await verify(h, Buffer.from(body.toString().replace('"value": 8', '"value": 80'))),
      401,
      'signature-invalid',
      /webhook-signature/,
    );
    refused(await verify({ ...h, 'webhook-id': 'msg_2' }), 401, 'signature-invalid', /id, timestamp and body/);
    refused(
      await verify({ ...h, 'webhook-timestamp': String(NOW_S + 1) }),
      401,
      'signature-invalid',
      /id, timestamp and body/,
    );
  });

  it('refuses a timestamp more than 5 minutes old or ahead (409), accepts one just inside', async () => {
    refused(
      await verify(standardHeaders([CLM_KEY], 'msg_1', NOW_S - 301, body)),
      409,
      'timestamp-stale',
      /webhook-timestamp is 301 s old; at most 300 s/,
    );
    refused(
      await verify(standardHeaders([CLM_KEY], 'msg_1', NOW_S + 301, body)),
      409,
      'timestamp-stale',
      /301 s in the future/,
    );
    accepted(await verify(standardHeaders([CLM_KEY], 'msg_1', NOW_S - 299, body)));
    accepted(await verify(standardHeaders([CLM_KEY], 'msg_1', NOW_S + 299, body)));
  });

  it('refuses malformed deliveries: missing headers, bad base64, no v1 entry, a timestamp that is not seconds', async () => {
    const h = standardHeaders([CLM_KEY], 'msg_1', NOW_S, body);
    const without = (name: string): Record<string, string> =>
      Object.fromEntries(Object.entries(h).filter(([k]) => k !== name));
    refused(
      await verify(without('webhook-signature')),
      401,
      'signature-missing',
      /webhook-signature header is missing/,
    );
    refused(await verify(without('webhook-id')), 400, 'header-missing', /webhook-id header is missing/);
    refused(await verify(without('webhook-timestamp')), 400, 'header-missing', /webhook-timestamp header is missing/);
    refused(
      await verify({ ...h, 'webhook-signature': 'v1,not*base64!' }),
      400,
      'signature-malformed',
      /not valid base64|is valid base64/,
    );
    refused(
      await verify({ ...h, 'webhook-signature': 'v1a,c2lnbmF0dXJl' }),
      400,
      'signature-malformed',
      /no "v1,<base64>" entry/,
    );
    refused(
      await verify({ ...h, 'webhook-timestamp': '2025-06-03T10:00:00Z' }),
      400,
      'timestamp-malformed',
      /unix seconds, got "2025-06-03T10:00:00Z"/,
    );
    refused(
      await source('clm').verify(
        delivery('clm', { ...h, 'webhook-id': ['a', 'b'] } as unknown as Record<string, string>, body),
      ),
      400,
      'header-repeated',
      /webhook-id header is given 2 times/,
    );
  });

  it('rotation: with two configured secrets either one signs, and a list with one good signature passes', async () => {
    const two = parseWebhookSources(
      'sources:\n  clm:\n    scheme: standard-webhooks\n    secrets: [{ env: OLD }, { env: NEW }]\n    record: { at: data }\n    mapping: mapping.yaml\n',
      INLINE_FILE,
      { OLD: whsec(CLM_KEY), NEW: whsec(CLM_KEY_NEXT) },
    ).get('clm')!;
    accepted(await two.verify(hook(standardHeaders([CLM_KEY], 'msg_1', NOW_S, body))));
    accepted(await two.verify(hook(standardHeaders([CLM_KEY_NEXT], 'msg_1', NOW_S, body))));
    refused(
      await two.verify(hook(standardHeaders([randomBytes(32)], 'msg_1', NOW_S, body))),
      401,
      'signature-invalid',
      /any configured key/,
    );
    // The sender signs with its old and new key at once; we hold only the new one.
    accepted(await source('clm').verify(hook(standardHeaders([randomBytes(32), CLM_KEY], 'msg_1', NOW_S, body))));
  });

  it("maps the event's data through mapping.yaml; an event type not listed carries no amendment", async () => {
    const req = hook(standardHeaders([CLM_KEY], 'msg_1', NOW_S, body));
    const v = accepted(await source('clm').verify(req));
    expect(await source('clm').amendments(req, v)).toEqual([
      {
        amendmentId: 'acme-msa-002',
        contractId: 'acme-msa',
        sequence: 2,
        submittedBy: 'ironclad',
        changes: [{ op: 'set', path: 'seats', value: 8 }],
      },
    ]);
    const other = Buffer.from(body.toString().replace('contract.amended', 'contract.viewed'));
    expect(await source('clm').amendments(hook({}, other), v)).toEqual([]);
  });

  it('a record that does not map is refused (422) naming the field under data', async () => {
    const bad = Buffer.from(
      body
        .toString()
        .replace(
          '"licensedSeats": { "type": "number", "value": 8 }',
          '"licensedSeats": { "type": "string", "value": "eight" }',
        ),
    );
    expect(bad.equals(body)).toBe(false);
    const r = refused(
      await source('clm').amendments(hook({}, bad), { ok: true, eventId: 'x' }),
      422,
      'payload-unmappable',
      /^data\.properties\.licensedSeats\.type: expected a number property for seats, got string$/,
    );
    noSecrets(r);
    refused(
      await source('clm').amendments(hook({}, Buffer.from('{"data": {}}')), { ok: true, eventId: 'x' }),
      422,
      'payload-unmappable',
      /^type: expected the event's type$/,
    );
    refused(
      await source('clm').amendments(hook({}, Buffer.from('type=contract.amended')), { ok: true, eventId: 'x' }),
      400,
      'body-malformed',
      /not JSON/,
    );
  });
});

// ---- HubSpot v3 -------------------------------------------------------------------------------

describe('HubSpot v3', () => {
  const body = example('hubspot-deal.json');
  const url = '/v1/webhooks/hubspot?portal=62515&note=a%3Ab%20c';
  const signedUri = 'https://amendctl.example.com/v1/webhooks/hubspot?portal=62515&note=a:b%20c';
  const tsMs = NOW.getTime() - 20_000;
  const hook = (headers: Record<string, string>, b = body, more: Partial<WebhookRequest> = {}): WebhookRequest =>
    delivery('hubspot', headers, b, { url, ...more });

  it('decodes exactly the characters HubSpot lists before signing the URL', () => {
    expect(hubspotUri('https://x.test/p%3a%2F%3F%40%21%24%27%28%29%2A%2C%3B?q=%20%26%3D%2B')).toBe(
      "https://x.test/p:/?@!$'()*,;?q=%20%26%3D%2B",
    );
  });

  it('accepts a genuine delivery; a redelivery of the same body with a new timestamp has the same event id', async () => {
    const v = accepted(
      await source('hubspot').verify(hook(hubspotHeaders(HUBSPOT_SECRET, 'POST', signedUri, body, tsMs))),
    );
    expect(v.sentAt).toEqual(new Date(tsMs));
    expect(v.eventId).toBe(`sha256:${createHash('sha256').update(body).digest('hex')}`);
    const again = accepted(
      await source('hubspot').verify(hook(hubspotHeaders(HUBSPOT_SECRET, 'POST', signedUri, body, tsMs + 60_000))),
    );
    expect(again.eventId).toBe(v.eventId);
  });

  it('identifies a batch of subscription events by their eventIds, whatever the attempt number', async () => {
    const batch = (attempt: number): Buffer =>
      Buffer.from(
        JSON.stringify([
          { eventId: 4001, subscriptionType: 'deal.propertyChange', attemptNumber: attempt, objectId: 18340091234 },
        ]),
      );
    const one = accepted(
      await source('hubspot').verify(hook(hubspotHeaders(HUBSPOT_SECRET, 'POST', signedUri, batch(0), tsMs), batch(0))),
    );
    const retry = accepted(
      await source('hubspot').verify(hook(hubspotHeaders(HUBSPOT_SECRET, 'POST', signedUri, batch(1), tsMs), batch(1))),
    );
    expect([one.eventId, retry.eventId]).toEqual(['4001', '4001']);
    refused(
      await source('hubspot').amendments(hook({}, batch(0)), one),
      422,
      'payload-unmappable',
      /subscription events \(an array\) carry no record/,
    );
  });

  it('refuses a wrong client secret, a tampered body, timestamp, URL or method (401)', async () => {
    const h = hubspotHeaders(HUBSPOT_SECRET, 'POST', signedUri, body, tsMs);
    noSecrets(
      refused(
        await source('hubspot').verify(hook(hubspotHeaders('another-secret', 'POST', signedUri, body, tsMs))),
        401,
        'signature-invalid',
        /method, URL, body and timestamp/,
      ),
    );
    refused(
      await source('hubspot').verify(hook(h, Buffer.from(body.toString().replace('"12"', '"120"')))),
      401,
      'signature-invalid',
      /X-HubSpot-Signature-v3 does not match/,
    );
    refused(
      await source('hubspot').verify(hook({ ...h, 'x-hubspot-request-timestamp': String(tsMs + 1) })),
      401,
      'signature-invalid',
      /does not match/,
    );
    refused(
      await source('hubspot').verify(hook(h, body, { url: '/v1/webhooks/hubspot?portal=62516&note=a%3Ab%20c' })),
      401,
      'signature-invalid',
      /does not match/,
    );
    refused(
      await source('hubspot').verify(hook(h, body, { method: 'PUT' })),
      401,
      'signature-invalid',
      /does not match/,
    );
  });

  it('refuses a timestamp older than 5 minutes (409)', async () => {
    const old = NOW.getTime() - 300_001;
    refused(
      await source('hubspot').verify(hook(hubspotHeaders(HUBSPOT_SECRET, 'POST', signedUri, body, old))),
      409,
      'timestamp-stale',
      /^X-HubSpot-Request-Timestamp is 301 s old; at most 300 s are accepted/,
    );
    accepted(
      await source('hubspot').verify(
        hook(hubspotHeaders(HUBSPOT_SECRET, 'POST', signedUri, body, NOW.getTime() - 299_000)),
      ),
    );
  });

  it('refuses malformed deliveries: missing signature or timestamp, bad base64, a timestamp that is not milliseconds', async () => {
    const h = hubspotHeaders(HUBSPOT_SECRET, 'POST', signedUri, body, tsMs);
    refused(
      await source('hubspot').verify(hook({ 'x-hubspot-request-timestamp': String(tsMs) })),
      401,
      'signature-missing',
      /X-HubSpot-Signature-v3 header is missing/,
    );
    refused(
      await source('hubspot').verify(hook({ 'x-hubspot-signature-v3': h['x-hubspot-signature-v3']! })),
      400,
      'header-missing',
      /X-HubSpot-Request-Timestamp header is missing/,
    );
    refused(
      await source('hubspot').verify(hook({ ...h, 'x-hubspot-signature-v3': 'abc$def' })),
      400,
      'signature-malformed',
      /not valid base64/,
    );
    refused(
      await source('hubspot').verify(hook({ ...h, 'x-hubspot-request-timestamp': 'yesterday' })),
      400,
      'timestamp-malformed',
      /unix milliseconds, got "yesterday"/,
    );
  });

  it('rotation: with two configured client secrets either one signs', async () => {
    const two = parseWebhookSources(
      'sources:\n  hubspot:\n    scheme: hubspot-v3\n    secrets: [{ env: A }, { env: B }]\n    mapping: hubspot.mapping.yaml\n',
      INLINE_FILE,
      { A: HUBSPOT_SECRET, B: HUBSPOT_SECRET_NEXT },
    ).get('hubspot')!;
    accepted(await two.verify(hook(hubspotHeaders(HUBSPOT_SECRET, 'POST', signedUri, body, tsMs))));
    accepted(await two.verify(hook(hubspotHeaders(HUBSPOT_SECRET_NEXT, 'POST', signedUri, body, tsMs))));
    refused(
      await two.verify(hook(hubspotHeaders('neither', 'POST', signedUri, body, tsMs))),
      401,
      'signature-invalid',
      /any configured client secret/,
    );
  });

  it('maps the example deal (text properties read as their mapped types)', async () => {
    expect(await source('hubspot').amendments(hook({}), { ok: true, eventId: 'x' })).toEqual([
      {
        amendmentId: 'acme-msa-003',
        contractId: 'acme-msa',
        sequence: 3,
        submittedBy: 'hubspot',
        changes: [
          { op: 'set', path: 'seats', value: 12 },
          { op: 'set', path: 'modules', value: ['analytics', 'billing'] },
          { op: 'set', path: 'tier', value: 'enterprise' },
          { op: 'set', path: 'term.end', value: '2027-12-31' },
        ],
      },
    ]);
  });

  it('a deal that does not map is refused (422) naming the property', async () => {
    const bad = Buffer.from(
      body
        .toString()
        .replace('"licensed_seats": "12"', '"licensed_seats": "twelve"')
        .replace('"subscription_tier": "enterprise"', '"subscription_tier": "platinum"'),
    );
    refused(
      await source('hubspot').amendments(hook({}, bad), { ok: true, eventId: 'x' }),
      422,
      'payload-unmappable',
      /^properties\.licensed_seats\.type: expected a number property for seats, got string; properties\.subscription_tier\.value: expected one of standard, professional, enterprise for tier, got "platinum"$/,
    );
    const noId = Buffer.from(body.toString().replace('"amendctl_amendment_id": "acme-msa-003",', ''));
    refused(
      await source('hubspot').amendments(hook({}, noId), { ok: true, eventId: 'x' }),
      422,
      'payload-unmappable',
      /^properties\.amendctl_amendment_id: expected a property "amendctl_amendment_id" for amendmentId$/,
    );
  });
});

// ---- DocuSign Connect -------------------------------------------------------------------------

describe('DocuSign Connect HMAC', () => {
  const body = example('docusign-envelope-completed.json');
  const hook = (headers: Record<string, string>, b = body): WebhookRequest =>
    delivery('docusign', { 'content-type': 'application/json', ...headers }, b);
  const EVENT_ID = '93be49ab-5b2f-4f2c-8a5e-0f4e1c3d2b1a:envelope-completed:2025-06-03T09:12:43.4013018Z';

  it('accepts a genuine delivery: the event id is envelope, event and generation time', async () => {
    const v = accepted(
      await source('docusign').verify(hook({ 'x-docusign-signature-1': docusignSig(DOCUSIGN_KEY, body) })),
    );
    expect(v).toEqual({ ok: true, eventId: EVENT_ID, sentAt: new Date('2025-06-03T09:12:43.401Z') });
  });

  it('a retry (retryCount grows, signed again) keeps the event id', async () => {
    const retry = Buffer.from(body.toString().replace('"retryCount": 0', '"retryCount": 3'));
    expect(retry.equals(body)).toBe(false);
    expect(
      accepted(
        await source('docusign').verify(hook({ 'x-docusign-signature-1': docusignSig(DOCUSIGN_KEY, retry) }, retry)),
      ).eventId,
    ).toBe(EVENT_ID);
  });

  it('rotation: a header from either configured key passes, in any position', async () => {
    accepted(
      await source('docusign').verify(hook({ 'x-docusign-signature-1': docusignSig(DOCUSIGN_KEY_PREVIOUS, body) })),
    );
    accepted(
      await source('docusign').verify(
        hook({
          'x-docusign-signature-1': docusignSig('a key we do not hold', body),
          'x-docusign-signature-2': docusignSig(DOCUSIGN_KEY, body),
        }),
      ),
    );
    accepted(
      await source('docusign').verify(
        hook({
          'x-docusign-signature-1': docusignSig(DOCUSIGN_KEY, body),
          'x-docusign-signature-2': docusignSig(DOCUSIGN_KEY_PREVIOUS, body),
        }),
      ),
    );
  });

  it('refuses a wrong key, a tampered body or a tampered header (401)', async () => {
    noSecrets(
      refused(
        await source('docusign').verify(hook({ 'x-docusign-signature-1': docusignSig('not ours', body) })),
        401,
        'signature-invalid',
        /does not match the body under any configured Connect key/,
      ),
    );
    refused(
      await source('docusign').verify(
        hook(
          { 'x-docusign-signature-1': docusignSig(DOCUSIGN_KEY, body) },
          Buffer.from(body.toString().replace('"20"', '"200"')),
        ),
      ),
      401,
      'signature-invalid',
      /does not match/,
    );
    const sig = docusignSig(DOCUSIGN_KEY, body);
    const flipped = `${sig[0] === 'A' ? 'B' : 'A'}${sig.slice(1)}`;
    refused(
      await source('docusign').verify(
        hook({ 'x-docusign-signature-1': flipped, 'x-docusign-signature-2': docusignSig('old', body) }),
      ),
      401,
      'signature-invalid',
      /none of the 2 X-DocuSign-Signature headers does/,
    );
  });

  it('refuses malformed deliveries: no signature header, bad base64, a body that is not Connect JSON (the scheme has no timestamp)', async () => {
    refused(
      await source('docusign').verify(hook({})),
      401,
      'signature-missing',
      /no X-DocuSign-Signature-1\.\.N header/,
    );
    refused(
      await source('docusign').verify(hook({ 'x-docusign-signature-1': '%%%' })),
      400,
      'signature-malformed',
      /X-DocuSign-Signature-1 is valid base64/,
    );
    const xml = Buffer.from('<DocuSignEnvelopeInformation/>');
    refused(
      await source('docusign').verify(hook({ 'x-docusign-signature-1': docusignSig(DOCUSIGN_KEY, xml) }, xml)),
      400,
      'body-malformed',
      /not a JSON object/,
    );
    const noEnvelope = Buffer.from(
      JSON.stringify({ event: 'envelope-completed', generatedDateTime: '2025-06-03T09:12:43Z', data: {} }),
    );
    refused(
      await source('docusign').verify(
        hook({ 'x-docusign-signature-1': docusignSig(DOCUSIGN_KEY, noEnvelope) }, noEnvelope),
      ),
      400,
      'body-malformed',
      /"data\.envelopeId"/,
    );
  });

  it('maps a completed envelope (custom fields and tabs); an envelope still in progress carries none', async () => {
    expect(await source('docusign').amendments(hook({}), { ok: true, eventId: EVENT_ID })).toEqual([
      {
        amendmentId: 'acme-msa-004',
        contractId: 'acme-msa',
        sequence: 4,
        submittedBy: 'docusign',
        changes: [
          { op: 'set', path: 'seats', value: 20 },
          { op: 'set', path: 'tier', value: 'enterprise' },
          { op: 'set', path: 'term.end', value: '2027-06-30' },
        ],
      },
    ]);
    const sent = Buffer.from(body.toString().replace('"event": "envelope-completed"', '"event": "envelope-sent"'));
    expect(await source('docusign').amendments(hook({}, sent), { ok: true, eventId: 'x' })).toEqual([]);
  });

  it('an envelope that does not map is refused (422) naming the field', async () => {
    const noContract = Buffer.from(body.toString().replace('"name": "contractId"', '"name": "contractRef"'));
    refused(
      await source('docusign').amendments(hook({}, noContract), { ok: true, eventId: 'x' }),
      422,
      'payload-unmappable',
      /^properties\.contractId: expected a property "contractId" for contractId$/,
    );
    const noSummary = Buffer.from(JSON.stringify({ event: 'envelope-completed', data: { envelopeId: 'e1' } }));
    refused(
      await source('docusign').amendments(hook({}, noSummary), { ok: true, eventId: 'x' }),
      422,
      'payload-unmappable',
      /^data\.envelopeSummary: expected the envelope/,
    );
  });
});

// ---- Ironclad (RSA, thin events fetched from the loopback app) --------------------------------

describe('Ironclad', () => {
  const RECORD = exampleJson('amendment-02.json');
  const WORKFLOW = '611fbd699f4a33b41d9f8295';
  const hook = (e: { headers: Record<string, string>; body: Buffer }): WebhookRequest =>
    delivery('ironclad', e.headers, e.body);
  beforeAll(() => app.serveRecord(WORKFLOW, RECORD));

  it('verifies a genuine event, fetches its record over REST with the bearer token and maps it', async () => {
    const e = app.event({});
    const req = hook(e);
    const v = accepted(await source('ironclad').verify(req));
    expect(v).toEqual({ ok: true, eventId: e.eventId, sentAt: new Date('2025-06-03T10:00:00.000Z') });
    const before = app.requests.length;
    const amendments = await source('ironclad').amendments(req, v);
    expect(app.requests.slice(before)).toEqual([
      { path: `/public/api/v1/records/${WORKFLOW}`, authorization: `Bearer ${IRONCLAD_TOKEN}` },
    ]);
    expect(amendments).toEqual([
      {
        amendmentId: 'acme-msa-002',
        contractId: 'acme-msa',
        sequence: 2,
        submittedBy: 'ironclad',
        changes: [
          { op: 'set', path: 'modules', value: ['analytics', 'billing'] },
          {
            op: 'set',
            path: 'namedUsers',
            value: [
              { email: 'alice@acme.com', name: 'Alice Adams', role: 'admin' },
              { email: 'bob@acme.com', name: 'Bob Brown', role: 'member' },
              { email: 'carol@acme.com', name: 'Carol Clark', role: 'viewer' },
              { email: 'dave@acme.com', name: 'Dave Davis', role: 'member' },
            ],
          },
        ],
      },
    ]);
  });

  it('accepts the body as Ironclad signs it (JSON.stringify of the body) when it arrives pretty-printed', async () => {
    const e = app.event({});
    const pretty = Buffer.from(JSON.stringify(JSON.parse(e.body.toString()), null, 2));
    accepted(await source('ironclad').verify(delivery('ironclad', e.headers, pretty)));
  });

  it('refuses a signature by another key, a tampered body, event id or nonce (401)', async () => {
    refused(
      await source('ironclad').verify(hook(app.event({}, 'evt-1', stranger.privateKey))),
      401,
      'signature-invalid',
      /does not verify over event id, body and nonce with any configured public key/,
    );
    const e = app.event({}, 'evt-2');
    refused(
      await source('ironclad').verify(
        delivery('ironclad', e.headers, Buffer.from(e.body.toString().replace(WORKFLOW, 'ffffffffffffffffffffffff'))),
      ),
      401,
      'signature-invalid',
      /does not verify/,
    );
    refused(
      await source('ironclad').verify(
        delivery('ironclad', { ...e.headers, 'x-ironclad-webhook-event-id': 'evt-3' }, e.body),
      ),
      401,
      'signature-invalid',
      /does not verify/,
    );
    const v = JSON.parse(e.headers['x-ironclad-webhook-verification']!) as Record<string, string>;
    refused(
      await source('ironclad').verify(
        delivery(
          'ironclad',
          { ...e.headers, 'x-ironclad-webhook-verification': JSON.stringify({ ...v, nonce: `${v['nonce']}0` }) },
          e.body,
        ),
      ),
      401,
      'signature-invalid',
      /does not verify/,
    );
  });

  it('refuses malformed deliveries: missing headers, a verification header that is not JSON, bad base64, another algorithm', async () => {
    const e = app.event({}, 'evt-4');
    const v = JSON.parse(e.headers['x-ironclad-webhook-verification']!) as Record<string, string>;
    const withV = (x: unknown): WebhookRequest =>
      delivery(
        'ironclad',
        { ...e.headers, 'x-ironclad-webhook-verification': typeof x === 'string' ? x : JSON.stringify(x) },
        e.body,
      );
    refused(
      await source('ironclad').verify(delivery('ironclad', { 'x-ironclad-webhook-event-id': 'evt-4' }, e.body)),
      401,
      'signature-missing',
      /X-Ironclad-Webhook-Verification header is missing/,
    );
    refused(
      await source('ironclad').verify(
        delivery(
          'ironclad',
          { 'x-ironclad-webhook-verification': e.headers['x-ironclad-webhook-verification']! },
          e.body,
        ),
      ),
      400,
      'header-missing',
      /X-Ironclad-Webhook-Event-Id header is missing/,
    );
    refused(
      await source('ironclad').verify(withV('nonce=1;signature=2')),
      400,
      'signature-malformed',
      /must be a JSON object .*: not JSON/,
    );
    refused(await source('ironclad').verify(withV({ ...v, nonce: undefined })), 400, 'signature-malformed', /nonce/);
    refused(
      await source('ironclad').verify(withV({ ...v, signature: 'not base64!' })),
      400,
      'signature-malformed',
      /not valid base64/,
    );
    refused(
      await source('ironclad').verify(withV({ ...v, signAlgorithm: 'HMAC-SHA1' })),
      400,
      'signature-malformed',
      /signAlgorithm "HMAC-SHA1" is not RSA-SHA256/,
    );
    refused(
      await source('ironclad').verify(withV({ ...v, encoding: 'base32' })),
      400,
      'signature-malformed',
      /encoding "base32" is neither base64 nor hex/,
    );
  });

  it('rotation: with two configured public keys an event signed by either verifies', async () => {
    const two = parseWebhookSources(
      'sources:\n  ironclad:\n    scheme: ironclad\n    publicKeys: [{ env: OLD }, { env: NEW }]\n    fetch: { baseUrl: "http://127.0.0.1:9", path: "/r/{payload.workflowID}" }\n    mapping: mapping.yaml\n',
      INLINE_FILE,
      { OLD: pem(ironcladKeys.publicKey), NEW: pem(ironcladNext.publicKey) },
    ).get('ironclad')!;
    accepted(await two.verify(hook(app.event({}, 'evt-5', ironcladKeys.privateKey))));
    accepted(await two.verify(hook(app.event({}, 'evt-6', ironcladNext.privateKey))));
    refused(
      await two.verify(hook(app.event({}, 'evt-7', stranger.privateKey))),
      401,
      'signature-invalid',
      /any configured public key/,
    );
  });

  it('an event of a type not listed carries no amendment and fetches nothing', async () => {
    const e = app.event({ payload: { event: 'workflow_updated', workflowID: WORKFLOW } });
    const before = app.requests.length;
    expect(await source('ironclad').amendments(hook(e), accepted(await source('ironclad').verify(hook(e))))).toEqual(
      [],
    );
    expect(app.requests.length).toBe(before);
  });

  it('a record the API does not have is 422, an answer that is not JSON or a refused token is 502, each saying so', async () => {
    const thin = (workflowID: string): WebhookRequest =>
      hook(app.event({ payload: { event: 'workflow_completed', workflowID } }));
    const ok: Verified = { ok: true, eventId: 'e' };
    refused(
      await source('ironclad').amendments(thin('0000000000000000deadbeef'), ok),
      422,
      'record-not-found',
      /GET http:\/\/127\.0\.0\.1:\d+\/public\/api\/v1\/records\/0000000000000000deadbeef answered 404/,
    );
    app.records.set('html-page', { status: 200, type: 'text/html', body: '<html>login</html>' });
    refused(
      await source('ironclad').amendments(thin('html-page'), ok),
      502,
      'record-unreadable',
      /answered 200 with "text\/html", not JSON/,
    );
    app.records.set('broken-json', { status: 200, type: 'application/json', body: '{"id": ' });
    refused(
      await source('ironclad').amendments(thin('broken-json'), ok),
      502,
      'record-unreadable',
      /that does not parse, not JSON/,
    );
    const wrongToken = loadWebhookSources(SOURCES_FILE, { ...env, AMENDCTL_IRONCLAD_API_TOKEN: 'stale-token' }).get(
      'ironclad',
    )!;
    const r = refused(
      await wrongToken.amendments(thin(WORKFLOW), ok),
      502,
      'source-refused',
      /answered 401: the API refuses our token \(AMENDCTL_IRONCLAD_API_TOKEN\)/,
    );
    expect(r.detail).not.toContain('stale-token');
    refused(
      await source('ironclad').amendments(hook(app.event({ payload: { event: 'workflow_completed' } })), ok),
      422,
      'payload-unmappable',
      /^payload\.workflowID: expected the id of the record to fetch$/,
    );
  });

  it('a record that does not map is refused (422) naming the field', async () => {
    app.serveRecord('bad-record', {
      ...RECORD,
      properties: { ...(RECORD['properties'] as object), amendmentNumber: { type: 'number', value: 'two' } },
    });
    refused(
      await source('ironclad').amendments(
        hook(app.event({ payload: { event: 'workflow_completed', workflowID: 'bad-record' } })),
        { ok: true, eventId: 'e' },
      ),
      422,
      'payload-unmappable',
      /^sequence: /,
    );
  });

  it('an API that is busy, slow or unreachable throws SourceUnavailableError (the server answers 503, the sender retries)', async () => {
    app.records.set('busy', { status: 503, type: 'application/json', body: '{}', headers: { 'retry-after': '7' } });
    const busy = source('ironclad').amendments(
      hook(app.event({ payload: { event: 'workflow_completed', workflowID: 'busy' } })),
      { ok: true, eventId: 'e' },
    );
    await expect(busy).rejects.toThrow(SourceUnavailableError);
    await expect(busy).rejects.toMatchObject({
      retryAfterSeconds: 7,
      message: expect.stringMatching(/records\/busy answered 503/) as unknown,
    });

    app.records.set('slow', { status: 200, type: 'application/json', body: JSON.stringify(RECORD), delayMs: 1500 });
    const slow = httpFetcher({ source: 'ironclad', baseUrl: app.url, token: IRONCLAD_TOKEN, timeoutMs: 200 });
    await expect(slow.get('/public/api/v1/records/slow')).rejects.toThrow(/no answer within 200 ms/);

    const closed = createServer();
    await new Promise<void>((ok) => closed.listen(0, '127.0.0.1', ok));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((ok) => closed.close(() => ok()));
    const gone = httpFetcher({ source: 'ironclad', baseUrl: `http://127.0.0.1:${port}`, timeoutMs: 2000 });
    const err = await gone.get('/public/api/v1/records/x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SourceUnavailableError);
    expect((err as Error).message).toMatch(/ECONNREFUSED/);
  });

  it('the fetcher is pluggable: a source can be served by another client', async () => {
    const asked: string[] = [];
    const plugged = loadWebhookSources(SOURCES_FILE, env, {
      fetcher: (name) => ({
        get: (path) => {
          asked.push(`${name} ${path}`);
          return Promise.resolve({ ok: true, record: RECORD });
        },
      }),
    }).get('ironclad')!;
    const e = app.event({});
    const before = app.requests.length;
    expect((await plugged.amendments(hook(e), { ok: true, eventId: e.eventId })) as unknown[]).toHaveLength(1);
    expect(asked).toEqual([`ironclad /public/api/v1/records/${WORKFLOW}`]);
    expect(app.requests.length).toBe(before);
  });
});

// ---- generic HMAC -----------------------------------------------------------------------------

describe('generic HMAC', () => {
  const body = example('baseline.json');
  const hook = (headers: Record<string, string>, b = body): WebhookRequest => delivery('internal', headers, b);

  it('accepts a genuine delivery (sha256=<hex> of the body); the event id is the configured header', async () => {
    expect(
      accepted(
        await source('internal').verify(
          hook({ 'x-hub-signature-256': githubSig(INTERNAL_SECRET, body), 'x-delivery-id': 'd-77' }),
        ),
      ),
    ).toEqual({ ok: true, eventId: 'd-77' });
  });

  it('refuses a wrong secret or a tampered body (401), a missing or malformed header (401/400)', async () => {
    noSecrets(
      refused(
        await source('internal').verify(
          hook({ 'x-hub-signature-256': githubSig('guess', body), 'x-delivery-id': 'd' }),
        ),
        401,
        'signature-invalid',
        /x-hub-signature-256 does not match the body under any configured secret/,
      ),
    );
    refused(
      await source('internal').verify(
        hook(
          { 'x-hub-signature-256': githubSig(INTERNAL_SECRET, body), 'x-delivery-id': 'd' },
          Buffer.from(body.toString().replace('"value": 5', '"value": 50')),
        ),
      ),
      401,
      'signature-invalid',
      /does not match/,
    );
    refused(
      await source('internal').verify(hook({ 'x-delivery-id': 'd' })),
      401,
      'signature-missing',
      /x-hub-signature-256 header is missing/,
    );
    refused(
      await source('internal').verify(
        hook({ 'x-hub-signature-256': githubSig(INTERNAL_SECRET, body).slice(7), 'x-delivery-id': 'd' }),
      ),
      400,
      'signature-malformed',
      /must start with "sha256="/,
    );
    refused(
      await source('internal').verify(hook({ 'x-hub-signature-256': 'sha256=xyz', 'x-delivery-id': 'd' })),
      400,
      'signature-malformed',
      /not valid hex/,
    );
    refused(
      await source('internal').verify(hook({ 'x-hub-signature-256': githubSig(INTERNAL_SECRET, body) })),
      400,
      'header-missing',
      /x-delivery-id header \(the event's id\) is missing/,
    );
  });

  const timed = (secrets: string): WebhookSource =>
    parseWebhookSources(
      `sources:\n  signed:\n    scheme: hmac\n    header: X-Signature\n    algorithm: sha512\n    encoding: base64\n    signed: timestamp.body\n    timestamp: { header: X-Timestamp, toleranceSeconds: 120 }\n    secrets: ${secrets}\n    mapping: mapping.yaml\n`,
      INLINE_FILE,
      { A: INTERNAL_SECRET, B: INTERNAL_SECRET_NEXT },
    ).get('signed')!;
  const timedHeaders = (secret: string, ts: number, b = body): Record<string, string> => ({
    'x-signature': createHmac('sha512', secret).update(`${ts}.`).update(b).digest('base64'),
    'x-timestamp': String(ts),
  });

  it('with a timestamp: signs "timestamp.body", refuses a stale or tampered timestamp; the event id is the body digest', async () => {
    const s = timed('[{ env: A }]');
    const v = accepted(await s.verify(hook(timedHeaders(INTERNAL_SECRET, NOW_S - 60))));
    expect(v).toEqual({
      ok: true,
      eventId: `sha256:${createHash('sha256').update(body).digest('hex')}`,
      sentAt: new Date((NOW_S - 60) * 1000),
    });
    refused(
      await s.verify(hook(timedHeaders(INTERNAL_SECRET, NOW_S - 121))),
      409,
      'timestamp-stale',
      /X-Timestamp is 121 s old; at most 120 s/,
    );
    refused(
      await s.verify(hook({ ...timedHeaders(INTERNAL_SECRET, NOW_S - 60), 'x-timestamp': String(NOW_S - 59) })),
      401,
      'signature-invalid',
      /timestamp and body/,
    );
    refused(
      await s.verify(hook({ 'x-signature': timedHeaders(INTERNAL_SECRET, NOW_S)['x-signature']! })),
      400,
      'header-missing',
      /X-Timestamp header is missing/,
    );
    refused(
      await s.verify(hook({ ...timedHeaders(INTERNAL_SECRET, NOW_S), 'x-timestamp': '10:00' })),
      400,
      'timestamp-malformed',
      /unix seconds, got "10:00"/,
    );
  });

  it('rotation: with two configured secrets either one signs', async () => {
    const s = timed('[{ env: A }, { env: B }]');
    accepted(await s.verify(hook(timedHeaders(INTERNAL_SECRET, NOW_S))));
    accepted(await s.verify(hook(timedHeaders(INTERNAL_SECRET_NEXT, NOW_S))));
    refused(await s.verify(hook(timedHeaders('neither', NOW_S))), 401, 'signature-invalid', /any configured secret/);
  });

  it('maps a baseline record (sequence 1) to the whole contract; one that does not map is refused naming the field', async () => {
    const [a] = (await source('internal').amendments(hook({}), { ok: true, eventId: 'd' })) as Array<
      Record<string, unknown>
    >;
    expect(a).toMatchObject({
      amendmentId: 'acme-msa',
      contractId: 'acme-msa',
      sequence: 1,
      contract: { seats: 5, tier: 'professional', status: 'active', region: 'eu' },
    });
    const bad = Buffer.from(body.toString().replace('"value": "Active"', '"value": "Paused"'));
    refused(
      await source('internal').amendments(hook({}, bad), { ok: true, eventId: 'd' }),
      422,
      'payload-unmappable',
      /^properties\.contractStatus\.value: expected one of Active, Suspended, Terminated for status, got "Paused"$/,
    );
  });
});

// ---- the sources file -------------------------------------------------------------------------

describe('the sources file', () => {
  const issues = (text: string, e: NodeJS.ProcessEnv = {}): string[] => {
    try {
      parseWebhookSources(text, INLINE_FILE, e);
    } catch (err) {
      if (err instanceof InputError)
        return err.issues.map((i) => `${i.file === INLINE_FILE ? 'F' : i.file}: ${i.path}: ${i.message}`);
      throw err;
    }
    return [];
  };

  it('takes secrets by reference only: a secret written in the file is refused, naming file and path', () => {
    expect(
      issues(
        'sources:\n  hubspot:\n    scheme: hubspot-v3\n    secrets: ["hs-secret-in-the-file"]\n    mapping: hubspot.mapping.yaml\n',
      ),
    ).toEqual([expect.stringMatching(/^F: sources\.hubspot\.secrets\[0\]: /)]);
  });

  it('names an unset variable, a secret that is not whsec_ base64, a key that is not PEM, without their values', () => {
    const got = issues(
      'sources:\n  a:\n    scheme: hubspot-v3\n    secrets: [{ env: UNSET_SECRET }]\n    mapping: hubspot.mapping.yaml\n  b:\n    scheme: standard-webhooks\n    secrets: [{ env: NOT_WHSEC }]\n    mapping: mapping.yaml\n  c:\n    scheme: ironclad\n    publicKeys: [{ env: NOT_PEM }]\n    fetch: { baseUrl: "https://x.test", path: "/r/{payload.workflowID}", token: { file: missing-token.txt } }\n    mapping: mapping.yaml\n',
      { NOT_WHSEC: 'whsec_***not-base64***', NOT_PEM: 'ssh-rsa AAAA' },
    );
    expect(got).toEqual([
      'F: sources.a.secrets[0]: environment variable UNSET_SECRET is not set',
      'F: sources.b.secrets[0]: not a Standard Webhooks secret (whsec_ followed by base64)',
      'F: sources.c.publicKeys[0]: not an RSA public key in PEM',
      expect.stringMatching(/^F: sources\.c\.fetch\.token: cannot read .*examples\/webhook\/missing-token\.txt: /),
    ]);
    expect(got.join('\n')).not.toMatch(/not-base64|AAAA/);
  });

  it('names an unknown scheme, an Ironclad source without a fetch, events with no event type, a missing mapping', () => {
    expect(issues('sources:\n  x:\n    scheme: stripe\n    secrets: [{ env: A }]\n    mapping: m.yaml\n')).toEqual([
      expect.stringMatching(/^F: sources\.x\.scheme: /),
    ]);
    expect(
      issues('sources:\n  x:\n    scheme: ironclad\n    publicKeys: [{ env: A }]\n    mapping: mapping.yaml\n'),
    ).toEqual([expect.stringMatching(/^F: sources\.x\.fetch: /)]);
    expect(
      issues(
        'sources:\n  x:\n    scheme: hmac\n    header: x-sig\n    secrets: [{ env: A }]\n    events: [created]\n    mapping: nowhere.yaml\n',
        { A: 'a' },
      ),
    ).toEqual([
      'F: sources.x.mapping: cannot read nowhere.yaml: ENOENT',
      'F: sources.x.eventType: the hmac scheme has no event type field: name where the body says which event it is',
    ]);
    expect(
      issues(
        'sources:\n  x:\n    scheme: hmac\n    header: x-sig\n    signed: timestamp.body\n    secrets: [{ env: A }]\n    mapping: mapping.yaml\n',
        { A: 'a' },
      ),
    ).toEqual(['F: sources.x.timestamp: signed: timestamp.body needs a timestamp header']);
  });

  it('names a mapping that is not valid by its own file and path', () => {
    expect(
      issues(
        'sources:\n  x:\n    scheme: docusign\n    secrets: [{ env: A }]\n    mapping: docusign-envelope-completed.json\n',
        { A: 'a' },
      ),
    ).toEqual(expect.arrayContaining([expect.stringMatching(/^docusign-envelope-completed\.json: amendmentId: /)]));
  });

  it('a sources file that cannot be read is an InputError naming it', () => {
    expect(() => loadWebhookSources(join(EXAMPLES, 'no-such-sources.yaml'), {})).toThrow(
      /no-such-sources\.yaml: \(root\): ENOENT/,
    );
  });
});
