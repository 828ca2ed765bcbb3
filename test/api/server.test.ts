/**
 * `amendctl serve`, API v1 (issue 11, point 1 and the webhook route): over real HTTP (the
 * server on 127.0.0.1:0, requests with fetch) against the real dev server, PostgreSQL and
 * scim2-server, with an in-process worker. Submissions in JSON and YAML complete; a resubmit
 * starts nothing; errors are problems naming the field; API keys and JWTs (a real JWKS on
 * loopback) authenticate with scopes; a signed webhook starts one workflow however often it is
 * delivered; a Temporal outage is a 503 with Retry-After. Every response is recorded and, at the
 * end, checked against /openapi.json (itself validated by a maintained OpenAPI validator).
 */
import { execFile } from 'node:child_process';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import Ajv2020 from 'ajv/dist/2020';
import type { FastifyInstance } from 'fastify';
import { type CryptoKey, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { stringify as toYaml } from 'yaml';
import { type ApiKey, loadApiKeys, newApiKey } from '../../src/api/auth';
import type { LogEntry } from '../../src/api/log';
import { ApprovalDesk } from '../../src/api/approvals';
import { buildApiServer } from '../../src/api/server';
import { loadSigningKey } from '../../src/approvals/token';
import { need } from '../harness/env';
import type { WebhookSource } from '../../src/api/webhooks/types';
import { keysFileLine } from '../../src/cli/commands/serve';
import { AmendctlClient, type AmendmentView } from '../../src/client';
import { parseAmendmentText } from '../../src/domain/document';
import { ROOT } from '../harness/proc';
import { until } from '../harness/until';
import { baseline, changes, customer } from '../workflows/fixtures';
import { startStack, type Stack } from '../workflows/stack';

const run = promisify(execFile);
const BODY_LIMIT = 64 * 1024;
const ISSUER = 'https://issuer.test';
const AUDIENCE = 'amendctl-api';
const WEBHOOK_SECRET = randomBytes(32);

let stack: Stack;
let app: FastifyInstance;
let base = '';
let jwks: Server;
let signingKey: CryptoKey;
const logs: LogEntry[] = [];
const recorded: Array<{ method: string; path: string; status: number; type: string; body: unknown }> = [];
/** Every secret a request carried: none may appear in a log line. */
const secrets: string[] = [];

const keys = {
  clm: newApiKey({ id: 'svc-clm', name: 'contract system', scopes: ['submit', 'read', 'cancel'] }),
  reader: newApiKey({ id: 'svc-reader', scopes: ['read'] }),
  /** People's keys (issue 12): under the default policy anyone but the submitter (sam) may approve; a service's key decides for no one. */
  dana: newApiKey({ id: 'key-dana', scopes: ['read', 'approve'], person: 'dana' }),
  sam: newApiKey({ id: 'key-sam', scopes: ['read', 'approve'], person: 'sam' }),
  approverService: newApiKey({ id: 'svc-approver', scopes: ['read', 'approve'] }),
};
secrets.push(keys.clm.key, keys.reader.key, keys.dana.key, keys.sam.key, keys.approverService.key);

/** A generic HMAC source for these tests only (the real schemes live in src/api/webhooks). */
const testSource: WebhookSource = {
  name: 'test-hmac',
  scheme: 'hmac',
  async verify(req) {
    const sig = req.headers['x-signature'];
    if (typeof sig !== 'string')
      return {
        ok: false,
        status: 401,
        type: 'signature-missing',
        title: 'No signature',
        detail: 'the x-signature header is missing',
      };
    const want = createHmac('sha256', WEBHOOK_SECRET).update(req.body).digest();
    const got = Buffer.from(sig.replace(/^sha256=/, ''), 'hex');
    if (got.length !== want.length || !timingSafeEqual(got, want))
      return {
        ok: false,
        status: 401,
        type: 'signature-invalid',
        title: 'Bad signature',
        detail: 'the x-signature does not match the body',
      };
    const id = req.headers['x-event-id'];
    if (typeof id !== 'string')
      return {
        ok: false,
        status: 400,
        type: 'event-id-missing',
        title: 'No event id',
        detail: 'the x-event-id header is missing',
      };
    return { ok: true, eventId: id };
  },
  async amendments(req) {
    try {
      return [parseAmendmentText(req.body.toString('utf8'), 'webhook')];
    } catch (err) {
      return {
        ok: false,
        status: 422,
        type: 'payload-unmappable',
        title: 'Not an amendment',
        detail: (err as Error).message.split('\n').slice(0, 2).join(' '),
      };
    }
  },
};

const sign = (body: string): string => `sha256=${createHmac('sha256', WEBHOOK_SECRET).update(body).digest('hex')}`;

beforeAll(async () => {
  stack = await startStack('api');
  // The keys file as an operator writes it: the lines `amendctl serve key new` prints.
  const dir = mkdtempSync(join(tmpdir(), 'amendctl-api-'));
  const keysFile = join(dir, 'keys.yaml');
  writeFileSync(
    keysFile,
    `keys:\n${[keys.clm.entry, keys.reader.entry, keys.dana.entry, keys.sam.entry, keys.approverService.entry].map((k: ApiKey) => keysFileLine(k)).join('\n')}\n`,
  );
  // A real JWKS on loopback, from a key pair made here.
  const pair = await generateKeyPair('ES256');
  signingKey = pair.privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  jwks = createServer((req, res) => {
    res
      .writeHead(req.url === '/jwks.json' ? 200 : 404, { 'content-type': 'application/json' })
      .end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
  const jwksUrl = `http://127.0.0.1:${(jwks.address() as { port: number }).port}/jwks.json`;
  app = buildApiServer({
    client: stack.client,
    sources: new Map([[testSource.name, testSource]]),
    auth: { keys: loadApiKeys(keysFile), jwt: { jwksUrl, issuer: ISSUER, audience: AUDIENCE } },
    // The server signs with the key the run's workers trust (test/harness/approval-keys.ts), as a real API's would be.
    desk: new ApprovalDesk({ client: stack.client, signer: loadSigningKey(need('AMENDCTL_APPROVER_KEY')) }),
    limits: { bodyBytes: BODY_LIMIT, temporalMs: 10_000 },
    logger: (e) => logs.push(e),
  });
  base = await app.listen({ port: 0, host: '127.0.0.1' });
}, 90_000);

afterAll(async () => {
  await app?.close();
  await new Promise((r) => (jwks ? jwks.close(r) : r(undefined)));
  await stack?.stop();
});

interface Call {
  method?: 'GET' | 'POST';
  key?: string;
  token?: string;
  body?: string | Buffer;
  type?: string;
  headers?: Record<string, string>;
}

/** One request; its answer is recorded for the check against the OpenAPI document. */
async function call(
  path: string,
  c: Call = {},
): Promise<{
  status: number;
  headers: Headers;
  body: Record<string, unknown> & { errors?: Array<{ path: string; message: string }> };
}> {
  const credential = c.key ?? c.token;
  const res = await fetch(`${base}${path}`, {
    method: c.method ?? (c.body !== undefined ? 'POST' : 'GET'),
    headers: {
      ...(credential ? { authorization: `Bearer ${credential}` } : {}),
      ...(c.type ? { 'content-type': c.type } : {}),
      ...c.headers,
    },
    ...(c.body !== undefined ? { body: c.body } : {}),
  });
  const text = await res.text();
  const body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  recorded.push({
    method: c.method ?? (c.body !== undefined ? 'POST' : 'GET'),
    path: path.split('?')[0]!,
    status: res.status,
    type: res.headers.get('content-type') ?? '',
    body,
  });
  return { status: res.status, headers: res.headers, body };
}

const asJson = (doc: object): Pick<Call, 'body' | 'type'> => ({ body: JSON.stringify(doc), type: 'application/json' });
const submit = (doc: object, key = keys.clm.key) => call('/v1/amendments', { key, ...asJson(doc) });
/** A fixture without its submittedBy: the server sets it from the credential. */
const unsigned = <T extends { submittedBy?: string }>(doc: T): Omit<T, 'submittedBy'> => {
  const { submittedBy: _omit, ...rest } = doc;
  return rest;
};

async function viewUntil(id: string, status: AmendmentView['status'], key = keys.clm.key): Promise<AmendmentView> {
  return until(
    `${id} ${status}`,
    async () => {
      const r = await call(`/v1/amendments/${id}`, { key });
      return r.status === 200 && r.body.status === status ? (r.body as unknown as AmendmentView) : undefined;
    },
    60_000,
    300,
  );
}

const runIdOf = async (amendmentId: string) => (await stack.client.handle(amendmentId).describe()).runId;

async function token(
  claims: Record<string, unknown>,
  opts: { exp?: number | string; aud?: string; key?: CryptoKey } = {},
): Promise<string> {
  const t = await new SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
    .setIssuer(ISSUER)
    .setAudience(opts.aud ?? AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(opts.exp ?? '5m')
    .sign(opts.key ?? signingKey);
  secrets.push(t);
  return t;
}

describe('amendments', () => {
  test('submit JSON: 202 with the status URL; GET follows it to completed; the caller is the submitter; the contract shows it', async () => {
    const c = customer('api-json');
    const doc = unsigned(
      baseline(c, [
        ['bob', 'member'],
        ['carol', 'viewer'],
      ]),
    );
    const r = await submit(doc);
    expect(r.status).toBe(202);
    expect(r.headers.get('location')).toBe(`/v1/amendments/${doc.amendmentId}`);
    expect(r.body).toEqual({
      amendmentId: doc.amendmentId,
      contractId: c.contractId,
      workflowId: `amendment-${doc.amendmentId}`,
      statusUrl: `/v1/amendments/${doc.amendmentId}`,
      duplicate: false,
    });
    const v = await viewUntil(doc.amendmentId, 'completed');
    expect(v.submittedBy).toBe('svc-clm');
    expect(v.operations.length).toBeGreaterThan(0);

    // Idempotent: the same document again starts nothing and points to the same status URL.
    const runId = await runIdOf(doc.amendmentId);
    const again = await submit(doc);
    expect(again.status).toBe(200);
    expect(again.headers.get('location')).toBe(r.headers.get('location'));
    expect(again.body).toMatchObject({ statusUrl: r.body.statusUrl, duplicate: true });
    expect(await runIdOf(doc.amendmentId)).toBe(runId);
    // Other content under the same id: the first stands.
    const other = await submit({ ...doc, contract: { ...doc.contract!, seats: 99 } });
    expect(other.status).toBe(409);
    expect(other.body.type).toBe('urn:amendctl:problem:amendment-conflict');

    const contract = await call(`/v1/contracts/${c.contractId}`, { key: keys.reader.key });
    expect(contract.status).toBe(200);
    expect(contract.body).toMatchObject({
      contractId: c.contractId,
      appliedSequence: 1,
      applied: { amendmentId: doc.amendmentId, sequence: 1 },
    });
  });

  test('submit YAML: the same validation and the same path to completed', async () => {
    const c = customer('api-yaml');
    const first = unsigned(baseline(c, [['dan', 'member']]));
    expect(
      (await call('/v1/amendments', { key: keys.clm.key, body: toYaml(first), type: 'application/yaml' })).status,
    ).toBe(202);
    await viewUntil(first.amendmentId, 'completed');
    const second = unsigned(
      changes(c, 2, [{ op: 'add', path: 'namedUsers', value: { email: c.email('eve'), name: 'Eve', role: 'viewer' } }]),
    );
    const r = await call('/v1/amendments', {
      key: keys.clm.key,
      body: toYaml({ ...second, submittedBy: 'svc-clm' }),
      type: 'text/yaml; charset=utf-8',
    });
    expect(r.status).toBe(202);
    const v = await viewUntil(second.amendmentId, 'completed');
    expect(v.changes.map((x) => x.path)).toContain(`namedUsers[${c.email('eve')}]`);
  });

  test('invalid documents: 422 problems naming the field; 400 for what is not JSON or YAML', async () => {
    const c = customer('api-invalid');
    const { sequence: _s, ...noSequence } = unsigned(baseline(c, [['fay', 'member']]));
    const r = await submit(noSequence);
    expect(r.status).toBe(422);
    expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(r.body).toMatchObject({
      type: 'urn:amendctl:problem:validation-failed',
      status: 422,
      title: expect.any(String),
    });
    expect(r.body.errors).toEqual([expect.objectContaining({ path: 'sequence' })]);

    const bad = unsigned(baseline(c, [['fay', 'member']]));
    bad.contract!.namedUsers![0]!.email = 'not-an-email';
    const e = await submit(bad);
    expect(e.status).toBe(422);
    expect(e.body.errors?.map((x) => x.path)).toEqual(['contract.namedUsers[0].email']);

    const yamlBroken = await call('/v1/amendments', { key: keys.clm.key, body: 'a: [1, 2', type: 'application/yaml' });
    expect(yamlBroken.status).toBe(400);
    expect(yamlBroken.body.type).toBe('urn:amendctl:problem:malformed-body');
    const jsonBroken = await call('/v1/amendments', {
      key: keys.clm.key,
      body: '{"amendmentId": ',
      type: 'application/json',
    });
    expect(jsonBroken.status).toBe(400);
  });

  test('the submitter is the caller: a document naming another is recorded as the caller, the claim kept in the memo only', async () => {
    const doc = { ...baseline(customer('api-claim'), [['fay', 'member']]), submittedBy: 'dana' };
    expect((await submit(doc)).status).toBe(202);
    const v = await viewUntil(doc.amendmentId, 'completed');
    expect(v.submittedBy).toBe('svc-clm');
    expect((await stack.client.handle(doc.amendmentId).describe()).memo).toMatchObject({ claimedBy: 'dana' });
  });

  test('413 beyond the body limit, 415 for other media types, 404 problems for unknown routes and ids', async () => {
    const big = JSON.stringify({
      ...unsigned(baseline(customer('api-big'), [['gus', 'member']])),
      padding: 'x'.repeat(BODY_LIMIT),
    });
    const tooLarge = await call('/v1/amendments', { key: keys.clm.key, body: big, type: 'application/json' });
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.body).toMatchObject({
      type: 'urn:amendctl:problem:body-too-large',
      status: 413,
      detail: `at most ${BODY_LIMIT} bytes`,
    });
    const hookTooLarge = await call(`/v1/webhooks/${testSource.name}`, {
      body: big,
      type: 'application/json',
      headers: { 'x-signature': sign(big), 'x-event-id': 'big' },
    });
    expect(hookTooLarge.status).toBe(413);

    const plain = await call('/v1/amendments', { key: keys.clm.key, body: 'amendmentId: x', type: 'text/plain' });
    expect(plain.status).toBe(415);
    expect(plain.body.type).toBe('urn:amendctl:problem:unsupported-media-type');

    const nowhere = await call('/v1/nowhere?token=secret');
    expect(nowhere.status).toBe(404);
    expect(nowhere.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(nowhere.body).toMatchObject({
      type: 'urn:amendctl:problem:not-found',
      status: 404,
      detail: 'no route GET /v1/nowhere',
    });
    const unknown = await call('/v1/amendments/no-such-amendment', { key: keys.reader.key });
    expect(unknown.status).toBe(404);
    expect(unknown.body.type).toBe('urn:amendctl:problem:amendment-not-found');
    expect((await call('/v1/contracts/no-such-contract', { key: keys.reader.key })).status).toBe(404);
    const badId = await call('/v1/amendments/bad%20id', { key: keys.reader.key });
    expect(badId.status).toBe(422);
    expect(badId.body.errors).toEqual([expect.objectContaining({ path: 'id' })]);
  });

  test('cancel: a scheduled amendment ends rejected, cancelled by the caller; then 409; another canceller 403; unknown 404', async () => {
    const c = customer('api-cancel');
    const doc = {
      ...unsigned(baseline(c, [['hal', 'member']])),
      effectiveAt: new Date(Date.now() + 24 * 3600_000).toISOString(),
    };
    expect((await submit(doc)).status).toBe(202);
    await viewUntil(doc.amendmentId, 'scheduled');
    const other = await call(`/v1/amendments/${doc.amendmentId}/cancel`, {
      key: keys.clm.key,
      ...asJson({ by: 'olga', reason: 'renegotiated' }),
    });
    expect(other.status).toBe(403);
    const noReason = await call(`/v1/amendments/${doc.amendmentId}/cancel`, { key: keys.clm.key, ...asJson({}) });
    expect(noReason.status).toBe(422);
    expect(noReason.body.errors).toEqual([expect.objectContaining({ path: 'reason' })]);
    const r = await call(`/v1/amendments/${doc.amendmentId}/cancel`, {
      key: keys.clm.key,
      ...asJson({ reason: 'renegotiated' }),
    });
    expect(r.status).toBe(202);
    expect(r.headers.get('location')).toBe(`/v1/amendments/${doc.amendmentId}`);
    const v = await viewUntil(doc.amendmentId, 'rejected');
    expect(v.cancellation).toMatchObject({ by: 'svc-clm', reason: 'renegotiated', kind: 'cancelled' });
    expect(
      (await call(`/v1/amendments/${doc.amendmentId}/cancel`, { key: keys.clm.key, ...asJson({ reason: 'again' }) }))
        .status,
    ).toBe(409);
    expect(
      (await call('/v1/amendments/no-such-amendment/cancel', { key: keys.clm.key, ...asJson({ reason: 'x' }) })).status,
    ).toBe(404);
    // The reader may read it, not cancel it.
    expect(
      (await call(`/v1/amendments/${doc.amendmentId}/cancel`, { key: keys.reader.key, ...asJson({ reason: 'x' }) }))
        .status,
    ).toBe(403);
  });
});

describe('authentication', () => {
  test('API keys: none or an unknown one 401 with a Bearer challenge, a missing scope 403, the right scope passes', async () => {
    const none = await call('/v1/amendments/x-1');
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="amendctl"');
    expect(none.body.type).toBe('urn:amendctl:problem:credential-missing');
    const unknown = await call('/v1/amendments/x-1', { key: 'amk_not-a-key' });
    expect(unknown.status).toBe(401);
    expect(unknown.headers.get('www-authenticate')).toContain('error="invalid_token"');
    const basic = await call('/v1/amendments/x-1', { headers: { authorization: 'Basic dXNlcjpwYXNz' } });
    expect(basic.status).toBe(401);
    const reader = await submit(unsigned(baseline(customer('api-scope'), [['ian', 'member']])), keys.reader.key);
    expect(reader.status).toBe(403);
    expect(reader.headers.get('www-authenticate')).toContain('error="insufficient_scope", scope="submit"');
    expect(reader.body.type).toBe('urn:amendctl:problem:scope-missing');
    expect((await call('/v1/amendments/x-1', { key: keys.reader.key })).status).toBe(404); // authenticated, then not found
  });

  test('JWT access tokens: valid (the subject is the submitter), expired, wrong audience, foreign key, missing scope', async () => {
    const c = customer('api-jwt');
    const ok = await token({ sub: 'svc-billing', scope: 'read submit' });
    const doc = unsigned(baseline(c, [['jo', 'member']]));
    const r = await call('/v1/amendments', { token: ok, ...asJson(doc) });
    expect(r.status).toBe(202);
    const v = await viewUntil(doc.amendmentId, 'completed', ok);
    expect(v.submittedBy).toBe('svc-billing');

    const expired = await call(`/v1/amendments/${doc.amendmentId}`, {
      token: await token({ sub: 'svc-billing', scope: 'read' }, { exp: Math.floor(Date.now() / 1000) - 600 }),
    });
    expect(expired.status).toBe(401);
    expect(expired.body.detail).toBe('the access token has expired');
    const audience = await call(`/v1/amendments/${doc.amendmentId}`, {
      token: await token({ sub: 'svc-billing', scope: 'read' }, { aud: 'someone-else' }),
    });
    expect(audience.status).toBe(401);
    expect(audience.body.detail).toContain('"aud"');
    const foreign = await call(`/v1/amendments/${doc.amendmentId}`, {
      token: await token({ sub: 'svc-billing', scope: 'read' }, { key: (await generateKeyPair('ES256')).privateKey }),
    });
    expect(foreign.status).toBe(401);
    const readOnly = await call('/v1/amendments', {
      token: await token({ sub: 'svc-billing', scope: 'read' }),
      ...asJson(doc),
    });
    expect(readOnly.status).toBe(403);
    expect(readOnly.headers.get('www-authenticate')).toContain('scope="submit"');
  });
});

describe('approvals', () => {
  const pending = async (tag: string) => {
    const doc = baseline(customer(tag), [['ada', 'admin']], { submittedBy: 'sam' });
    await stack.client.submitAmendment(doc);
    await viewUntil(doc.amendmentId, 'pending_approval');
    return doc.amendmentId;
  };

  test('a person approves with their own key: signed by the server, verified by the worker, recorded with the proof; refused for a service, the submitter, twice', async () => {
    const id = await pending('api-approve');
    const service = await call(`/v1/amendments/${id}/approve`, { key: keys.approverService.key, ...asJson({}) });
    expect(service.status).toBe(403);
    expect(service.body).toMatchObject({
      type: expect.stringContaining('not-a-person'),
      detail: expect.stringContaining('belongs to a service, not a person'),
    });
    const own = await call(`/v1/amendments/${id}/approve`, { key: keys.sam.key, ...asJson({}) });
    expect(own.status).toBe(403);
    expect(own.body.detail).toBe('sam submitted this amendment and may not approve it (separation of duties)');
    const noScope = await call(`/v1/amendments/${id}/approve`, { key: keys.clm.key, ...asJson({}) });
    expect(noScope.status).toBe(403);
    const bad = await call(`/v1/amendments/${id}/approve`, {
      key: keys.dana.key,
      ...asJson({ comment: 'ok', by: 'erin' }),
    });
    expect(bad.status).toBe(422);

    const ok = await call(`/v1/amendments/${id}/approve`, {
      key: keys.dana.key,
      ...asJson({ comment: 'checked the order form' }),
    });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ amendmentId: id, counted: true, statusUrl: `/v1/amendments/${id}` });
    const v = await viewUntil(id, 'completed');
    expect(v.approval!.approvals).toEqual([
      expect.objectContaining({
        by: 'dana',
        comment: 'checked the order form',
        proof: expect.objectContaining({ via: 'api-key', keyId: 'test-harness' }),
      }),
    ]);
    const again = await call(`/v1/amendments/${id}/approve`, { key: keys.dana.key, ...asJson({}) });
    expect(again.status).toBe(409);
    expect((await call('/v1/amendments/no-such-amendment/approve', { key: keys.dana.key, ...asJson({}) })).status).toBe(
      404,
    );
  });

  test("a person's bearer token rejects with a reason; a reason is required", async () => {
    const id = await pending('api-reject');
    const erin = await token({ sub: 'erin', scope: 'read approve' });
    const noReason = await call(`/v1/amendments/${id}/reject`, { token: erin, ...asJson({}) });
    expect(noReason.status).toBe(422);
    const r = await call(`/v1/amendments/${id}/reject`, {
      token: erin,
      ...asJson({ reason: 'not in the signed contract' }),
    });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ counted: true, status: 'rejected' });
    const v = await viewUntil(id, 'rejected');
    expect(v.approval!.rejection).toMatchObject({
      by: 'erin',
      reason: 'not in the signed contract',
      proof: expect.objectContaining({ via: 'jwt' }),
    });
  });
});

describe('webhooks', () => {
  test('a signed delivery: 202 once its workflow started; the same delivery again 200 with no second workflow; forged, unsigned and unmappable ones refused', async () => {
    const c = customer('api-hook');
    const doc = baseline(c, [['kim', 'member']], { submittedBy: testSource.name });
    expect(
      (
        await call(`/v1/webhooks/${testSource.name}`, {
          body: 'x',
          type: 'text/plain',
          headers: { 'x-signature': sign('x') },
        })
      ).status,
    ).toBe(400); // the scheme's own refusal
    const body = JSON.stringify(doc);
    const headers = { 'x-signature': sign(body), 'x-event-id': `evt-${c.id}` };
    const r = await call(`/v1/webhooks/${testSource.name}`, { body, type: 'application/json', headers });
    expect(r.status).toBe(202);
    expect(r.body).toEqual({
      source: 'test-hmac',
      eventId: `evt-${c.id}`,
      amendments: [
        expect.objectContaining({
          amendmentId: doc.amendmentId,
          statusUrl: `/v1/amendments/${doc.amendmentId}`,
          duplicate: false,
        }),
      ],
    });
    const runId = await runIdOf(doc.amendmentId); // started before the answer: durable
    const replay = await call(`/v1/webhooks/${testSource.name}`, { body, type: 'application/json', headers });
    expect(replay.status).toBe(200);
    expect(replay.body.amendments).toEqual([
      expect.objectContaining({ amendmentId: doc.amendmentId, duplicate: true }),
    ]);
    expect(await runIdOf(doc.amendmentId)).toBe(runId);
    const runs = await until('visible in the list', async () => {
      const ids: string[] = [];
      for await (const w of stack.client.client.workflow.list({ query: `WorkflowId = "amendment-${doc.amendmentId}"` }))
        ids.push(w.runId);
      return ids.length > 0 ? ids : undefined;
    });
    expect(runs).toEqual([runId]);
    const v = await viewUntil(doc.amendmentId, 'completed');
    expect(v.submittedBy).toBe('test-hmac');

    // The signature covers the bytes: the same JSON re-serialised does not verify.
    const forged = await call(`/v1/webhooks/${testSource.name}`, {
      body: JSON.stringify(doc, null, 2),
      type: 'application/json',
      headers,
    });
    expect(forged.status).toBe(401);
    expect(forged.body).toMatchObject({
      type: 'urn:amendctl:problem:signature-invalid',
      status: 401,
      title: 'Bad signature',
      detail: 'the x-signature does not match the body',
    });
    const unsignedHook = await call(`/v1/webhooks/${testSource.name}`, {
      body,
      type: 'application/json',
      headers: { 'x-event-id': 'e' },
    });
    expect(unsignedHook.status).toBe(401);
    expect(unsignedHook.body.type).toBe('urn:amendctl:problem:signature-missing');
    const junk = 'not an amendment';
    const unmappable = await call(`/v1/webhooks/${testSource.name}`, {
      body: junk,
      type: 'text/plain',
      headers: { 'x-signature': sign(junk), 'x-event-id': 'e2' },
    });
    expect(unmappable.status).toBe(422);
    expect(unmappable.body.type).toBe('urn:amendctl:problem:payload-unmappable');
    // The source is who sent it: a payload naming another submitter is recorded as the source, the claim kept in the memo.
    const other = baseline(customer('api-hook2'), [['lou', 'member']], { submittedBy: 'dana' });
    const claim = JSON.stringify(other);
    expect(
      (
        await call(`/v1/webhooks/${testSource.name}`, {
          body: claim,
          type: 'application/json',
          headers: { 'x-signature': sign(claim), 'x-event-id': 'e3' },
        })
      ).status,
    ).toBe(202);
    expect((await viewUntil(other.amendmentId, 'completed')).submittedBy).toBe('test-hmac');
    expect((await stack.client.handle(other.amendmentId).describe()).memo).toMatchObject({ claimedBy: 'dana' });
    expect((await call('/v1/webhooks/no-such-source', { body, type: 'application/json', headers })).status).toBe(404);
  });
});

test('Temporal unreachable: 503 with Retry-After, for a submit and a webhook', async () => {
  const down = new AmendctlClient(
    new Client({ connection: Connection.lazy({ address: '127.0.0.1:9', connectTimeout: '1s' }), namespace: 'default' }),
  );
  const outage = buildApiServer({
    client: down,
    sources: new Map([[testSource.name, testSource]]),
    auth: { keys: [keys.clm.entry] },
    limits: { bodyBytes: BODY_LIMIT, temporalMs: 1500 },
    logger: () => undefined,
  });
  const url = await outage.listen({ port: 0, host: '127.0.0.1' });
  try {
    const doc = unsigned(baseline(customer('api-down'), [['max', 'member']]));
    const r = await fetch(`${url}/v1/amendments`, {
      method: 'POST',
      headers: { authorization: `Bearer ${keys.clm.key}`, 'content-type': 'application/json' },
      body: JSON.stringify(doc),
    });
    expect(r.status).toBe(503);
    expect(r.headers.get('retry-after')).toBe('5');
    const body = (await r.json()) as { type: string };
    expect(body.type).toBe('urn:amendctl:problem:temporal-unavailable');
    recorded.push({
      method: 'POST',
      path: '/v1/amendments',
      status: 503,
      type: r.headers.get('content-type') ?? '',
      body,
    });
    const hook = JSON.stringify({ ...doc, submittedBy: testSource.name });
    const w = await fetch(`${url}/v1/webhooks/${testSource.name}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-signature': sign(hook), 'x-event-id': 'down' },
      body: hook,
    });
    expect(w.status).toBe(503);
    expect(w.headers.get('retry-after')).toBe('5');
    const ready = await fetch(`${url}/readyz`);
    expect({
      status: ready.status,
      type: ready.headers.get('content-type')?.split(';')[0],
      body: await ready.json(),
    }).toMatchObject({
      status: 503,
      type: 'application/problem+json',
      body: { type: 'urn:amendctl:problem:not-ready', status: 503, detail: expect.stringMatching(/^temporal: /) },
    });
  } finally {
    await outage.close();
    await down.close().catch(() => undefined);
  }
});

test('access log: one JSON line per request with the route pattern, status, duration and caller; no secret, query or personal data', async () => {
  const access = logs.filter((e) => e.kind === 'access');
  expect(access.length).toBeGreaterThanOrEqual(recorded.length - 1);
  for (const e of access) {
    expect(Object.keys(e).sort()).toEqual(
      ['kind', 'method', 'ms', 'request', 'route', 'status', 'time', ...('caller' in e ? ['caller'] : [])].sort(),
    );
    expect(e).toMatchObject({
      time: expect.any(String),
      method: expect.any(String),
      status: expect.any(Number),
      ms: expect.any(Number),
    });
    expect(e.route === null || e.route.startsWith('/')).toBe(true);
  }
  expect(access).toContainEqual(
    expect.objectContaining({ method: 'GET', route: '/v1/amendments/:id', status: 200, caller: 'key:svc-clm' }),
  );
  expect(access).toContainEqual(
    expect.objectContaining({
      method: 'POST',
      route: '/v1/webhooks/:source',
      status: 202,
      caller: 'webhook:test-hmac',
    }),
  );
  expect(access).toContainEqual(expect.objectContaining({ route: null, status: 404 }));
  const text = logs.map((e) => JSON.stringify(e)).join('\n');
  for (const s of secrets) expect(text).not.toContain(s);
  expect(text).not.toMatch(/@|token=|svc-billing|Bearer/); // no email, query string, token subject or credential
  expect(logs.filter((e) => e.kind === 'error')).toEqual([]);
});

test('/readyz is ready while Temporal answers; /metrics counts the requests by route pattern and status', async () => {
  expect(await call('/readyz')).toMatchObject({
    status: 200,
    body: { ready: true, checks: [{ name: 'temporal', ok: true }] },
  });
  const res = await fetch(`${base}/metrics`);
  const text = await res.text();
  recorded.push({
    method: 'GET',
    path: '/metrics',
    status: res.status,
    type: res.headers.get('content-type') ?? '',
    body: text,
  });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
  const count = (route: string, status: number) =>
    Number(
      new RegExp(
        `^amendctl_api_requests_total\\{route="${route.replace(/[/{}]/g, (c) => `\\${c}`)}",status="${status}"\\} (\\d+)`,
        'm',
      ).exec(text)?.[1] ?? 0,
    );
  const seen = recorded.filter((r) => r.path === '/readyz' && r.status === 200).length;
  expect(count('/readyz', 200)).toBe(seen);
  expect(count('/v1/amendments', 202)).toBe(
    recorded.filter((r) => r.method === 'POST' && r.path === '/v1/amendments' && r.status === 202).length,
  );
  expect(count('/v1/amendments', 202)).toBeGreaterThan(0);
});

test('/openapi.json validates (a maintained OpenAPI 3.1 validator), and every route answered as it documents', async () => {
  const res = await fetch(`${base}/openapi.json`);
  expect(res.status).toBe(200);
  const doc = (await res.json()) as {
    openapi: string;
    paths: Record<
      string,
      Record<string, { responses: Record<string, { content?: Record<string, { schema: object }> }> }>
    >;
    components: object;
  };
  expect(doc.openapi).toBe('3.1.0');
  const file = join(mkdtempSync(join(tmpdir(), 'amendctl-openapi-')), 'openapi.json');
  writeFileSync(file, JSON.stringify(doc));
  const { stdout } = await run(process.execPath, [
    join(ROOT, 'node_modules', '@seriousme', 'openapi-schema-validator', 'bin', 'validate-api-cli.js'),
    file,
  ]);
  expect(JSON.parse(stdout)).toEqual({ valid: true });
  recorded.push({
    method: 'GET',
    path: '/openapi.json',
    status: 200,
    type: res.headers.get('content-type') ?? '',
    body: doc,
  });
  expect((await call('/healthz')).status).toBe(200);

  const ajv = new Ajv2020({ strict: false, validateFormats: false });
  ajv.addSchema(doc, 'openapi.json');
  const operations = Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, op]) => ({
      method: method.toUpperCase(),
      path,
      pattern: new RegExp(`^${path.replace(/\{\w+\}/g, '[^/]+')}$`),
      op,
      answered: new Set<string>(),
    })),
  );
  for (const r of recorded) {
    const o = operations.find((x) => x.method === r.method && x.pattern.test(r.path));
    if (!o) {
      expect({ ...r, body: undefined }).toMatchObject({ status: 404 }); // only an unknown route answers outside the document
      continue;
    }
    const answer = o.op.responses[String(r.status)];
    expect({ route: `${r.method} ${o.path}`, status: r.status, documented: answer !== undefined }).toEqual({
      route: `${r.method} ${o.path}`,
      status: r.status,
      documented: true,
    });
    o.answered.add(String(r.status));
    const [media, { schema } = { schema: undefined }] = Object.entries(answer!.content ?? {})[0] ?? [];
    if (!media || !schema) continue;
    expect(r.type.split(';')[0]).toBe(media);
    const pointer = (schema as { $ref?: string }).$ref;
    const validate = ajv.compile(pointer ? { $ref: `openapi.json${pointer}` } : schema);
    if (!validate(r.body)) throw new Error(`${r.method} ${r.path} ${r.status}: ${ajv.errorsText(validate.errors)}`);
  }
  // Every documented operation was called, and answered with a documented success.
  expect(operations.length).toBeGreaterThan(0);
  for (const o of operations)
    expect({ route: `${o.method} ${o.path}`, success: [...o.answered].some((s) => s.startsWith('2')) }).toEqual({
      route: `${o.method} ${o.path}`,
      success: true,
    });
});
