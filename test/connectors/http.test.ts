/**
 * The HTTP connector against a real Node `http` server started here: the "internal app"
 * of test/harness/internal-app.ts, with its own state, that verifies every request's HMAC
 * signature, timestamp and nonce (replay), decodes path segments one by one and parses
 * bodies as JSON. The shared conformance suite runs through a TCP proxy; the app's state
 * is read directly.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHttpConnector, expandBody, expandPath, type HttpConfig } from '../../src/connectors/http';
import { ConnectorRegistry, parseTargets } from '../../src/connectors/registry';
import { PermanentTargetError, TransientTargetError, type CompensationSpec } from '../../src/connectors/types';
import type { Action } from '../../src/domain/plan';
import type { JsonValue } from '../../src/domain/json';
import { InternalApp } from '../harness/internal-app';
import { describeConformance, plannedOperation, startTcpProxy } from './conformance';

const SECRET = randomBytes(24).toString('base64url');
process.env.AMENDCTL_TEST_HTTP_SECRET = SECRET;

function config(port: number, over: Partial<HttpConfig> = {}): HttpConfig {
  const attrs = {
    name: '{attributes.displayName}',
    email: '{attributes.email}',
    externalId: '{attributes.externalId}',
  };
  return {
    type: 'http',
    baseUrl: `http://127.0.0.1:${port}/api`,
    signing: {
      secret: { env: 'AMENDCTL_TEST_HTTP_SECRET' },
      header: 'X-Amendctl-Signature',
      timestampHeader: 'X-Amendctl-Timestamp',
      nonceHeader: 'X-Amendctl-Nonce',
    },
    headers: {},
    read: {
      method: 'GET',
      path: '/users/{subject}',
      notFoundStatuses: [404],
      fields: {
        id: 'id',
        active: { field: 'status', equals: 'active' },
        groups: ['groups', { field: 'roles', item: 'name' }],
        attributes: { displayName: 'profile.name', email: 'profile.email', externalId: 'profile.externalId' },
      },
    },
    actions: {
      ensureAccount: { method: 'PUT', path: '/users/{subject}', body: attrs, alreadyStatuses: [] },
      updateAttributes: { method: 'PATCH', path: '/users/{subject}', body: attrs, alreadyStatuses: [] },
      deactivateAccount: { method: 'POST', path: '/users/{subject}/disable', alreadyStatuses: [] },
      reactivateAccount: { method: 'POST', path: '/users/{subject}/enable', alreadyStatuses: [] },
      joinGroup: { method: 'PUT', path: '/groups/{params.group}/members/{subject}', alreadyStatuses: [] },
      leaveGroup: { method: 'DELETE', path: '/groups/{params.group}/members/{subject}', alreadyStatuses: [404] },
      grantRole: { method: 'PUT', path: '/users/{subject}/roles/{params.role}', alreadyStatuses: [] },
      revokeRole: { method: 'DELETE', path: '/users/{subject}/roles/{params.role}', alreadyStatuses: [404] },
      removeAccount: { method: 'DELETE', path: '/users/{subject}', alreadyStatuses: [404] },
    },
    timeoutMs: 2000,
    ...over,
  };
}

const conformanceApp = new InternalApp(SECRET);
describeConformance('http', async () => {
  await conformanceApp.start();
  const proxy = await startTcpProxy({ host: '127.0.0.1', port: conformanceApp.port });
  return {
    connector: createHttpConnector('billing-app', config(proxy.port)),
    readBack: async (s) => conformanceApp.state(s),
    outage: proxy.outage,
    accountCount: async (s) => (conformanceApp.users.has(s) ? 1 : 0),
    cleanup: async () => {
      await proxy.close();
      await conformanceApp.stop();
      expect(conformanceApp.rejected).toEqual([]); // every request the connector sent was signed right
    },
  };
});

test('examples/directory/targets.yaml: an LDAP directory, this internal app over HTTP and AWS IAM, credentials only named', async () => {
  const file = join(__dirname, '..', '..', 'examples', 'directory', 'targets.yaml');
  const text = readFileSync(file, 'utf8');
  const parsed = parseTargets(text, file, {});
  const registry = new ConnectorRegistry(parsed);
  expect(registry.names().map((n) => [n, registry.get(n)!.type])).toEqual([
    ['directory', 'ldap'],
    ['billing-app', 'http'],
    ['aws', 'iam'],
  ]);
  const t = parsed.targets as Record<string, { config: Record<string, unknown> }>;
  expect([
    t.directory!.config.bindPassword,
    (t['billing-app']!.config.signing as { secret: unknown }).secret,
    t.aws!.config.accessKeyId,
    t.aws!.config.secretAccessKey,
  ]).toEqual([
    { env: 'AMENDCTL_DIRECTORY_BIND_PASSWORD' },
    { env: 'AMENDCTL_BILLING_HMAC_SECRET' },
    { env: 'AMENDCTL_AWS_ACCESS_KEY_ID' },
    { env: 'AMENDCTL_AWS_SECRET_ACCESS_KEY' },
  ]);
  await registry.close();
});

describe('templates', () => {
  test('path values are encoded as one segment each; dot-segments and empty values are refused', () => {
    const ctx = { subject: 'a/../b?x=1#f', params: { group: 'g 1%' } };
    expect(expandPath('/groups/{params.group}/members/{subject}', ctx)).toBe(
      '/groups/g%201%25/members/a%2F..%2Fb%3Fx%3D1%23f',
    );
    expect(() => expandPath('/users/{subject}', { subject: '..' })).toThrow(PermanentTargetError);
    expect(() => expandPath('/users/{subject}', { subject: '.' })).toThrow(PermanentTargetError);
    expect(() => expandPath('/users/{subject}', { subject: '' })).toThrow(PermanentTargetError);
    expect(() => expandPath('/users/{params.group}', { subject: 'x', params: {} })).toThrow(/has no value/);
  });

  test('body templates are expanded into JSON values, never spliced into JSON text', () => {
    const evil = `", "admin": true, "x": "`;
    const body = expandBody(
      { name: '{attributes.displayName}', tags: ['{params.group}', 'fixed'], note: 'for {subject}', n: 3 },
      {
        subject: 'ann',
        params: { group: 'g' },
        attributes: { displayName: evil },
      },
    );
    expect(body).toEqual({ name: evil, tags: ['g', 'fixed'], note: 'for ann', n: 3 });
    expect(JSON.parse(JSON.stringify(body))).not.toHaveProperty('admin');
    // a whole placeholder keeps the value's JSON type; a missing one drops its key
    expect(
      expandBody(
        { all: '{params}', gone: '{attributes.email}', alsoGone: 'x {attributes.email}' },
        { params: { a: [1, null] }, attributes: {} },
      ),
    ).toEqual({ all: { a: [1, null] } });
  });
});

describe('http connector, internal app behaviour', () => {
  const app = new InternalApp(SECRET);
  const run = randomBytes(3).toString('hex');
  let c: ReturnType<typeof createHttpConnector>;
  const op = (action: Action, subject: string, params: Record<string, JsonValue> = {}): CompensationSpec =>
    plannedOperation('billing-app', action, subject, params);

  beforeAll(async () => {
    await app.start();
    c = createHttpConnector('billing-app', config(app.port));
  });
  afterAll(() => app.stop());
  beforeEach(() => {
    app.inject = [];
    app.rejected = [];
  });

  test('every request is signed: the app accepts the connector and refuses a tampered body, a replay, a stale timestamp and a wrong secret', async () => {
    const subject = `sig-${run}@example.test`;
    await c.apply(op('ensureAccount', subject, { attributes: { displayName: 'Sig' } }));
    expect(app.rejected).toEqual([]);
    const signed = app.lastSigned!;
    expect(signed.headers['x-amendctl-signature']).toMatch(/^sha256=[0-9a-f]{64}$/);
    const headers = {
      'content-type': 'application/json',
      'x-amendctl-timestamp': signed.headers['x-amendctl-timestamp']!,
      'x-amendctl-nonce': signed.headers['x-amendctl-nonce']!,
      'x-amendctl-signature': signed.headers['x-amendctl-signature']!,
    };
    const url = `http://127.0.0.1:${app.port}${signed.path}`;
    // replay, exactly as sent
    expect((await fetch(url, { method: signed.method, headers, body: signed.body || undefined })).status).toBe(401);
    // tampered body with a fresh nonce but the old signature
    expect(
      (
        await fetch(url, {
          method: signed.method,
          headers: { ...headers, 'x-amendctl-nonce': 'fresh' },
          body: '{"name":"Mallory"}',
        })
      ).status,
    ).toBe(401);
    // stale timestamp, correctly signed
    const ts = String(Math.floor(Date.now() / 1000) - 3600);
    const sig = `sha256=${createHmac('sha256', SECRET).update(`${ts}\nold\nGET\n/api/users/x\n`).digest('hex')}`;
    expect(
      (
        await fetch(`http://127.0.0.1:${app.port}/api/users/x`, {
          headers: { 'x-amendctl-timestamp': ts, 'x-amendctl-nonce': 'old', 'x-amendctl-signature': sig },
        })
      ).status,
    ).toBe(401);
    expect(app.rejected).toEqual(['replayed nonce', 'bad signature', 'stale timestamp']);
    expect(app.state(subject)!.attributes.displayName).toBe('Sig');

    process.env.AMENDCTL_TEST_HTTP_WRONG = 'not-the-secret';
    const wrong = createHttpConnector(
      'billing-app',
      config(app.port, {
        signing: {
          secret: { env: 'AMENDCTL_TEST_HTTP_WRONG' },
          header: 'X-Amendctl-Signature',
          timestampHeader: 'X-Amendctl-Timestamp',
          nonceHeader: 'X-Amendctl-Nonce',
        },
      }),
    );
    await expect(wrong.readAccount(subject)).rejects.toMatchObject({
      name: 'PermanentTargetError',
      type: 'TargetAuthentication',
    });
  });

  test('hostile values reach the app literally: path segments decoded to the exact subject, body strings as JSON strings', async () => {
    const subject = `o'hara/../x?y=1&z#${run}`;
    const evil = `", "admin": true, "x": "\\`;
    await c.apply(op('ensureAccount', subject, { attributes: { displayName: evil } }));
    expect(app.lastBody).toEqual({ name: evil });
    expect(app.state(subject)!.attributes.displayName).toBe(evil);
    expect([...app.users.keys()].filter((k) => k.startsWith("o'hara") || k.startsWith('x?'))).toEqual([subject]);
  });

  test('response mapping: nested fields, an "equals" active rule, groups merged with role objects', async () => {
    const subject = `map-${run}@example.test`;
    await c.apply(
      op('ensureAccount', subject, { attributes: { displayName: 'Map', email: subject, externalId: 'acme:9' } }),
    );
    await c.apply(op('joinGroup', subject, { group: 'b-group' }));
    await c.apply(op('grantRole', subject, { role: 'a-role' }));
    await c.apply(op('deactivateAccount', subject));
    const st = await c.readAccount(subject);
    expect(st).toEqual({
      subject,
      id: app.users.get(subject)!.id,
      active: false,
      groups: ['a-role', 'b-group'],
      attributes: { displayName: 'Map', email: subject, externalId: 'acme:9' },
    });
    expect(st).toEqual(app.state(subject));
  });

  describe('status classification', () => {
    const subject = `status-${run}@example.test`;
    beforeAll(async () => {
      await c.apply(op('ensureAccount', subject, { attributes: { displayName: 'Status' } }));
    });

    test.each([
      [429, { 'retry-after': '3' }, 3000],
      [503, { 'retry-after': 'DATE+10s' }, 'date'],
      [502, {}, undefined],
      [504, {}, undefined],
    ] as const)('%i is transient, honouring Retry-After', async (status, headers, retry) => {
      const h: Record<string, string> = { ...headers };
      if (h['retry-after'] === 'DATE+10s') h['retry-after'] = new Date(Date.now() + 10_000).toUTCString(); // an HTTP-date
      app.inject.push({ status, headers: h });
      const err = await c.apply(op('joinGroup', subject, { group: `t${status}` })).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TransientTargetError);
      const ms = (err as TransientTargetError).retryAfterMs;
      if (retry === 'date') expect(ms).toBeGreaterThan(5000);
      else expect(ms).toBe(retry);
      // nothing changed; the retry then succeeds exactly once
      expect(app.state(subject)!.groups).not.toContain(`t${status}`);
      expect((await c.apply(op('joinGroup', subject, { group: `t${status}` }))).outcome).toBe('applied');
    });

    test.each([
      [400, 'TargetRejected'],
      [403, 'TargetForbidden'],
      [409, 'TargetConflict'],
      [422, 'TargetRejected'],
    ] as const)('%i is permanent (%s)', async (status, type) => {
      app.inject.push({ status });
      await expect(c.readAccount(subject)).rejects.toMatchObject({ name: 'PermanentTargetError', type });
    });

    test('a 429 holds back the next request of the target for Retry-After (shared rate limit)', async () => {
      const limited = createHttpConnector('billing-app-limited', config(app.port, { rateLimit: { perSecond: 20 } }));
      app.inject.push({ status: 429, headers: { 'retry-after': '1' } });
      await expect(limited.readAccount(subject)).rejects.toBeInstanceOf(TransientTargetError);
      const t0 = Date.now();
      await limited.readAccount(subject);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    });
  });

  test('compensation of a creation needs a removeAccount endpoint, and says so', async () => {
    const noRemove = config(app.port);
    delete noRemove.actions.removeAccount;
    const c2 = createHttpConnector('billing-app', noRemove);
    const subject = `norm-${run}@example.test`;
    const r = await c2.apply(op('ensureAccount', subject, { attributes: {} }));
    await expect(c2.compensate(op('ensureAccount', subject, {}), r)).rejects.toMatchObject({
      type: 'TargetMisconfigured',
    });
    await expect(c2.apply(op('grantRole', subject, { role: 'x' }))).resolves.toMatchObject({ outcome: 'applied' });
    const noGrant = config(app.port);
    delete noGrant.actions.grantRole;
    await expect(
      createHttpConnector('billing-app', noGrant).apply(op('grantRole', subject, { role: 'y' })),
    ).rejects.toMatchObject({ type: 'TargetMisconfigured' });
  });

  test('results carry no credential', async () => {
    const subject = `secret-${run}@example.test`;
    const results = [
      await c.apply(op('ensureAccount', subject, { attributes: { displayName: 'S' } })),
      await c.apply(op('deactivateAccount', subject)),
    ];
    expect(JSON.stringify([results, await c.readAccount(subject)])).not.toContain(SECRET);
  });
});
