/**
 * The SCIM connector against the real scim2-server (PyPI): the conformance suite twice
 * (the harness's server, which announces PATCH, ETags and filtering; and a second
 * scim2-server of our own whose /ServiceProviderConfig announces no PATCH and no
 * filtering, so the PUT + If-Match and list-and-page branches run), then SCIM specifics.
 *
 * Where scim2-server cannot show a behaviour (it never answers 429 or 503), an HTTP proxy
 * in front of the real server answers those requests itself; everything else reaches it.
 */
import { describeConformance, plannedOperation, startTcpProxy, type ConformanceSubject } from './conformance';
import { need } from '../harness/env';
import { until } from '../harness/until';
import {
  RawScim,
  startHttpProxy,
  startScimServer,
  type HttpProxy,
  type RunningScim,
  type Seen,
} from '../harness/servers/scim';
import { createScimConnector, scimConfigSchema, scimFilterValue, type ScimConfig } from '../../src/connectors/scim';
import { parseRetryAfter } from '../../src/connectors/http-util';
import {
  PermanentTargetError,
  TransientTargetError,
  type CompensationSpec,
  type Connector,
  type OperationJournal,
} from '../../src/connectors/types';
import type { Action } from '../../src/domain/plan';
import type { JsonValue } from '../../src/domain/json';

const TOKEN_ENV = 'AMENDCTL_SCIM_TEST_TOKEN';

function mainServer(): { url: string; token: string; origin: string } {
  const url = need('AMENDCTL_TEST_SCIM_URL');
  const token = need('AMENDCTL_TEST_SCIM_TOKEN');
  process.env[TOKEN_ENV] = token;
  return { url, token, origin: new URL(url).origin };
}

function config(baseUrl: string, extra: Partial<ScimConfig> = {}): ScimConfig {
  return scimConfigSchema.parse({
    type: 'scim',
    baseUrl,
    auth: { bearerTokenEnv: TOKEN_ENV },
    timeoutMs: 5000,
    ...extra,
  });
}

const attributesFor = (subject: string, v: 1 | 2) =>
  v === 1
    ? { externalId: `conf:${subject}`, displayName: 'Conformance One', email: subject }
    : { externalId: `conf:${subject}`, displayName: 'Conformance Two', email: `alt.${subject}` };

async function subjectOver(
  url: string,
  token: string,
  target: string,
  extra: Partial<ScimConfig> = {},
  stop?: () => Promise<void>,
): Promise<ConformanceSubject> {
  process.env[TOKEN_ENV] = token;
  const u = new URL(url);
  const proxy = await startTcpProxy({ host: u.hostname, port: Number(u.port) });
  const raw = new RawScim(url, token);
  const connector = createScimConnector(target, config(`http://127.0.0.1:${proxy.port}${u.pathname}`, extra));
  return {
    connector,
    readBack: (s) => raw.readBack(s),
    outage: proxy.outage,
    attributesFor,
    roleAttribute: 'roles',
    groupExists: (g) => raw.groupExists(g),
    accountCount: async (s) => (await raw.users(s)).length,
    cleanup: async () => {
      await proxy.close();
      await stop?.();
    },
  };
}

describeConformance('scim', async () => {
  const m = mainServer();
  return subjectOver(m.url, m.token, 'idp-conformance');
});

/** A scim2-server that announces no PATCH and no filtering (but ETags): PUT with If-Match, lists paged through. */
const NO_PATCH_SPC = {
  schemas: ['urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig'],
  patch: { supported: false },
  bulk: { supported: false, maxOperations: 0, maxPayloadSize: 0 },
  filter: { supported: false, maxResults: 1000 },
  changePassword: { supported: false },
  sort: { supported: false },
  etag: { supported: true },
  authenticationSchemes: [],
};

describeConformance('scim without PATCH or filtering', async () => {
  const s = await startScimServer('scim-nopatch', NO_PATCH_SPC);
  return subjectOver(s.url, s.token, 'idp-nopatch', { pageSize: 7 }, s.stop);
});

let seq = 0;
const uniq = (tag: string) => `s${Date.now().toString(36)}${(++seq).toString(36)}-${tag}`;
const op = (c: Connector, action: Action, subject: string, params: Record<string, JsonValue> = {}): CompensationSpec =>
  plannedOperation(c.target, action, subject, params);

describe('scim connector specifics', () => {
  let m: { url: string; token: string; origin: string };
  let raw: RawScim;
  let proxy: HttpProxy;
  let c: Connector;
  const path = () => new URL(m.url).pathname;
  const ensure = (s: string, displayName = 'Specific') =>
    op(c, 'ensureAccount', s, { attributes: { externalId: `spec:${s}`, displayName, email: s } });

  beforeAll(async () => {
    m = mainServer();
    raw = new RawScim(m.url, m.token);
    proxy = await startHttpProxy(m.origin);
    c = createScimConnector('idp-specifics', config(`${proxy.url}${path()}`));
  });
  afterEach(() => {
    proxy.hooks.length = 0;
  });
  afterAll(async () => {
    await c.close();
    await proxy.close();
  });

  const since = (n: number) => proxy.log.slice(n);

  test('filter values are JSON-escaped: a filter-injection userName finds nobody and is stored literally', async () => {
    const bystander = `${uniq('by')}@example.test`;
    await c.apply(ensure(bystander));
    for (const evil of [`x" or userName pr or userName eq "y`, `a\\" or id pr or "\\`, `back\\slash"quote`, `*`]) {
      const subject = `${uniq('f')}${evil}@example.test`;
      const n = proxy.log.length;
      expect(await c.readAccount(subject)).toBeNull();
      const filters = since(n)
        .filter((r) => r.path.endsWith('/Users') && r.method === 'GET')
        .map((r) => r.query.get('filter'));
      expect(filters).toEqual([`userName eq ${JSON.stringify(subject)}`]);
      const r = await c.apply(ensure(subject));
      expect(r.outcome).toBe('applied');
      const stored = await raw.users(subject);
      expect(stored.map((u) => u.userName)).toEqual([subject]);
      expect((await c.readAccount(subject))!.id).toBe(stored[0]!.id);
    }
    expect(scimFilterValue('a"b\\c')).toBe('"a\\"b\\\\c"');
    expect((await raw.readBack(bystander))!.attributes.displayName).toBe('Specific');
  });

  test('a prefetch looks up a batch of accounts in one filtered search; each ensureAccount then only writes, with the same results', async () => {
    const subjects = [1, 2, 3, 4, 5].map((i) => `${uniq(`pre${i}`)}@example.test`);
    await c.apply(ensure(subjects[0]!, 'There Before')); // one exists: it is found, not created again
    const ops = subjects.map((x) => ensure(x));
    const n = proxy.log.length;
    await c.prefetchAccounts!(ops);
    const searches = since(n).filter((r) => r.method === 'GET' && r.path.endsWith('/Users'));
    expect(searches).toHaveLength(1);
    expect(searches[0]!.query.get('filter')).toBe(
      subjects
        .flatMap((x) => [`userName eq "${x}"`])
        .concat(subjects.map((x) => `externalId eq "spec:${x}"`))
        .join(' or '),
    );
    const m2 = proxy.log.length;
    const results = [];
    for (const o of ops) results.push(await c.apply(o));
    expect(since(m2).filter((r) => r.method === 'GET' && r.path.endsWith('/Users'))).toHaveLength(0);
    expect(results.map((r) => r.outcome)).toEqual(['applied', 'applied', 'applied', 'applied', 'applied']);
    expect(results[0]!.prior).toMatchObject({ kind: 'account', existed: true });
    for (const r of results.slice(1)) expect(r.prior).toMatchObject({ kind: 'account', existed: false });
    for (const x of subjects) expect(await raw.users(x)).toHaveLength(1);
    // Used once: the same operation again looks up for itself, and finds it so.
    const m3 = proxy.log.length;
    expect((await c.apply(ops[1]!)).outcome).toBe('unchanged');
    expect(since(m3).filter((r) => r.method === 'GET' && r.path.endsWith('/Users')).length).toBeGreaterThan(0);
  });

  test('a prefetch gone stale (the user made meanwhile elsewhere) ends in a 409 and a link, never a second user', async () => {
    const subject = `${uniq('stale')}@example.test`;
    const o = ensure(subject, 'Ours');
    await c.prefetchAccounts!([o]); // finds nobody
    const made = await raw.call('POST', '/Users', {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
      userName: subject,
      displayName: 'Made Elsewhere',
      active: true,
    });
    expect(made.status).toBe(201);
    const res = await c.apply(o);
    expect(res.detail).toMatch(/linked to existing user .* after 409 uniqueness/);
    expect(await raw.users(subject)).toHaveLength(1);
  });

  test('a 409 uniqueness on create links to the account made meanwhile, never a second one; compensation keeps it', async () => {
    const subject = `${uniq('race')}@example.test`;
    // Hold our create until another writer has made the same user on the real server.
    proxy.hooks.push(async (r: Seen) => {
      if (r.method === 'POST' && r.path.endsWith('/Users') && (r.body as { userName?: string }).userName === subject) {
        const made = await raw.call('POST', '/Users', {
          schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
          userName: subject,
          displayName: 'Made Elsewhere',
          active: true,
        });
        expect(made.status).toBe(201);
      }
      return undefined;
    });
    const o = ensure(subject, 'Ours');
    const res = await c.apply(o);
    expect(proxy.log.some((r) => r.method === 'POST' && r.status === 409)).toBe(true);
    expect(res.outcome).toBe('applied');
    expect(res.detail).toMatch(/linked to existing user .* after 409 uniqueness/);
    expect(await raw.users(subject)).toHaveLength(1);
    expect((await raw.readBack(subject))!.attributes).toMatchObject({
      displayName: 'Ours',
      externalId: `spec:${subject}`,
      email: subject,
    });
    // The account existed before our operation: compensation restores it, it does not delete it.
    expect((await c.compensate(o, JSON.parse(JSON.stringify(res)) as typeof res)).outcome).toBe('compensated');
    const after = await raw.readBack(subject);
    expect(after!.attributes).toEqual({ userName: subject, displayName: 'Made Elsewhere' });
  });

  test('a create whose answer was lost: the retry knows from the journal that the user is its own, and compensation removes it', async () => {
    const subject = `${uniq('lost')}@example.test`;
    let lost = 0;
    proxy.hooks.push(async (r: Seen) => {
      if (
        r.method === 'POST' &&
        r.path.endsWith('/Users') &&
        (r.body as { userName?: string }).userName === subject &&
        lost++ === 0
      )
        return { lose: true };
      return undefined;
    });
    const noted: JsonValue[] = [];
    const journal: OperationJournal = {
      get noted() {
        return noted.at(-1);
      },
      note: async (v) => void noted.push(v),
    };
    const o = ensure(subject, 'Lost Answer');
    await expect(c.apply(o, journal)).rejects.toBeInstanceOf(TransientTargetError);
    expect(await raw.users(subject)).toHaveLength(1); // the server did create it
    expect(noted).toEqual([{ creating: subject, at: expect.any(String) }]);
    const res = await c.apply(o, journal);
    expect(res).toMatchObject({
      outcome: 'applied',
      prior: { kind: 'account', existed: false },
      detail: expect.stringMatching(/the answer to the create was lost/),
    });
    expect(await raw.users(subject)).toHaveLength(1);
    expect((await c.compensate(o, JSON.parse(JSON.stringify(res)) as typeof res)).outcome).toBe('compensated');
    expect(await raw.users(subject)).toEqual([]);

    // Without the journal (a connector that cannot know), the same retry sees a user that existed, and compensation keeps it.
    const other = `${uniq('lost')}@example.test`;
    let once = 0;
    proxy.hooks.push(async (r: Seen) =>
      (r.body as { userName?: string } | undefined)?.userName === other && r.method === 'POST' && once++ === 0
        ? { lose: true }
        : undefined,
    );
    await expect(c.apply(ensure(other))).rejects.toBeInstanceOf(TransientTargetError);
    expect((await c.apply(ensure(other))).prior).toMatchObject({ existed: true });
  });

  test('found by externalId under another userName, the user is linked and follows the subject', async () => {
    const subject = `${uniq('ext')}@example.test`;
    const made = await raw.call('POST', '/Users', {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
      userName: `old.${subject}`,
      externalId: `spec:${subject}`,
      active: true,
    });
    expect(made.status).toBe(201);
    const r = await c.apply(ensure(subject));
    expect(r.outcome).toBe('applied');
    expect((await c.readAccount(subject))!.id).toBe((made.body as { id: string }).id);
    expect(await raw.users(`old.${subject}`)).toHaveLength(0);
    await c.compensate(ensure(subject), r);
    expect((await raw.users(`old.${subject}`))[0]!.id).toBe((made.body as { id: string }).id);
  });

  test('concurrent joins of a new group create it once (scim2-server does not keep displayNames unique)', async () => {
    const g = uniq('cg');
    const users = [1, 2, 3, 4].map((i) => `${uniq(`cj${i}`)}@example.test`);
    for (const u of users) await c.apply(ensure(u));
    const results = await Promise.all(users.map((u) => c.apply(op(c, 'joinGroup', u, { group: g }))));
    expect(results.map((r) => r.outcome)).toEqual(['applied', 'applied', 'applied', 'applied']);
    const groups = (await raw.groups()).filter((x) => x.displayName === g);
    expect(groups).toHaveLength(1);
    expect(groups[0]!.members).toHaveLength(4);
  });

  test('a join right after the ensure looks up neither the user again nor, uncontended, a new group twice', async () => {
    const subject = `${uniq('lean')}@example.test`;
    const g = uniq('lg');
    await c.apply(ensure(subject));
    const n = proxy.log.length;
    expect((await c.apply(op(c, 'joinGroup', subject, { group: g }))).outcome).toBe('applied');
    const requests = since(n).map((r) => `${r.method} ${r.path.replace(/^.*\/v2/, '')}`);
    // The group's lookup (none), then its create with the member; the user's id is the one the ensure just saw.
    expect(requests).toEqual(['GET /Groups', 'POST /Groups']);
    expect((await raw.readBack(subject))!.groups).toEqual([g]);
  });

  test('lists are paged with startIndex and count', async () => {
    const paged = createScimConnector('idp-paged', config(`${proxy.url}${path()}`, { pageSize: 2 }));
    const subject = `${uniq('pages')}@example.test`;
    await paged.apply(ensure(subject));
    const groups = [1, 2, 3, 4, 5].map((i) => `${uniq('pg')}-${i}`);
    for (const g of groups) await paged.apply(op(paged, 'joinGroup', subject, { group: g }));
    const n = proxy.log.length;
    const st = await paged.readAccount(subject);
    expect(st!.groups).toEqual([...groups].sort());
    const pages = since(n)
      .filter((r) => r.method === 'GET' && r.path.endsWith('/Groups'))
      .map((r) => [r.query.get('startIndex'), r.query.get('count')]);
    expect(pages).toEqual([
      ['1', '2'],
      ['3', '2'],
      ['5', '2'],
    ]);
  });

  test('membership changes are PATCH deltas of one member, and active is a path-less replace', async () => {
    const subject = `${uniq('delta')}@example.test`;
    const other = `${uniq('delta-o')}@example.test`;
    const g = uniq('dg');
    await c.apply(ensure(subject));
    await c.apply(ensure(other));
    await c.apply(op(c, 'joinGroup', other, { group: g }));
    const n = proxy.log.length;
    await c.apply(op(c, 'joinGroup', subject, { group: g }));
    await c.apply(op(c, 'leaveGroup', subject, { group: g }));
    await c.apply(op(c, 'deactivateAccount', subject));
    const writes = since(n).filter((r) => r.method !== 'GET');
    expect(writes.map((r) => r.method)).toEqual(['PATCH', 'PATCH', 'PATCH']);
    const id = (await raw.users(subject))[0]!.id;
    expect((writes[0]!.body as { Operations: unknown }).Operations).toEqual([
      { op: 'add', path: 'members', value: [{ value: id }] },
    ]);
    expect((writes[1]!.body as { Operations: unknown }).Operations).toEqual([
      { op: 'remove', path: `members[value eq ${JSON.stringify(id)}]` },
    ]);
    expect((writes[2]!.body as { Operations: unknown }).Operations).toEqual([
      { op: 'replace', value: { active: false } },
    ]);
    expect(writes[2]!.headers['if-match']).toMatch(/^W\/"/);
    expect((await raw.readBack(other))!.groups).toEqual([g]);
  });

  test('a concurrent change (412 on If-Match) is re-read and retried', async () => {
    const subject = `${uniq('etag')}@example.test`;
    await c.apply(ensure(subject));
    const id = (await raw.users(subject))[0]!.id;
    let done = false;
    proxy.hooks.push(async (r: Seen) => {
      if (!done && r.method === 'PATCH' && r.path.endsWith(`/Users/${id}`)) {
        done = true;
        const w = await raw.call('PATCH', `/Users/${id}`, {
          schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
          Operations: [{ op: 'replace', value: { title: 'Changed meanwhile' } }],
        });
        expect(w.status).toBeLessThan(300);
      }
      return undefined;
    });
    const n = proxy.log.length;
    expect(
      (await c.apply(op(c, 'updateAttributes', subject, { attributes: { displayName: 'After 412' } }))).outcome,
    ).toBe('applied');
    expect(
      since(n)
        .filter((r) => r.method === 'PATCH')
        .map((r) => r.status),
    ).toEqual([412, 204]);
    expect((await raw.readBack(subject))!.attributes).toMatchObject({
      displayName: 'After 412',
      title: 'Changed meanwhile',
    });
  });

  test('429 and 503 are transient with Retry-After (seconds or HTTP-date); the target limiter waits', async () => {
    const subject = `${uniq('429')}@example.test`;
    let answer: { status: number; headers?: Record<string, string> } | undefined = {
      status: 429,
      headers: { 'retry-after': '1' },
    };
    proxy.hooks.push(async (r) =>
      r.path.endsWith('/Users') && r.method === 'GET' && answer
        ? { ...answer, body: { status: String(answer.status), detail: 'slow down' } }
        : undefined,
    );
    const e1 = await c.readAccount(subject).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(TransientTargetError);
    expect((e1 as TransientTargetError).retryAfterMs).toBe(1000);
    expect((e1 as Error).message).toMatch(/429.*slow down/);
    // The limiter is shared by the target: another connector of the same target waits too.
    answer = undefined;
    const sibling = createScimConnector('idp-specifics', config(`${proxy.url}${path()}`));
    const t0 = Date.now();
    expect(await sibling.readAccount(subject)).toBeNull();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(800);

    answer = { status: 503, headers: { 'retry-after': new Date(Date.now() + 3000).toUTCString() } };
    const e2 = await c.readAccount(subject).catch((e: unknown) => e);
    expect(e2).toBeInstanceOf(TransientTargetError);
    expect((e2 as TransientTargetError).retryAfterMs).toBeGreaterThan(1000);
    expect((e2 as TransientTargetError).retryAfterMs).toBeLessThanOrEqual(3000);
    answer = { status: 502 };
    const e3 = await c.readAccount(subject).catch((e: unknown) => e);
    expect(e3).toBeInstanceOf(TransientTargetError);
    expect((e3 as TransientTargetError).retryAfterMs).toBeUndefined();
    // The next test starts with the target as it was: answered, and not held back by its limiter.
    answer = undefined;
    await until(
      'the target answers without being held back',
      async () => {
        const t0 = Date.now();
        await c.readAccount(subject);
        return Date.now() - t0 < 250 ? true : undefined;
      },
      10_000,
      100,
    );
  });

  test('parseRetryAfter reads seconds and HTTP-dates, and ignores junk', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Wed, 31 Dec 2025 23:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('-5', now)).toBeUndefined();
    expect(parseRetryAfter('1.5', now)).toBeUndefined();
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
    expect(parseRetryAfter('999999999', now)).toBe(15 * 60_000);
  });

  test('4xx are permanent with a type; a wrong token is TargetAuthentication, a missing one TargetMisconfigured, neither shown', async () => {
    process.env.AMENDCTL_SCIM_WRONG_TOKEN = 'not-the-token-Zq9';
    const wrong = createScimConnector(
      'idp-wrong',
      scimConfigSchema.parse({ type: 'scim', baseUrl: m.url, auth: { bearerTokenEnv: 'AMENDCTL_SCIM_WRONG_TOKEN' } }),
    );
    const e = await wrong.readAccount('x@example.test').catch((err: unknown) => err);
    expect(e).toBeInstanceOf(PermanentTargetError);
    expect((e as PermanentTargetError).type).toBe('TargetAuthentication');
    expect((e as Error).message).toMatch(/401/);
    expect((e as Error).message).not.toContain('not-the-token-Zq9');

    const unset = createScimConnector(
      'idp-unset',
      scimConfigSchema.parse({ type: 'scim', baseUrl: m.url, auth: { bearerTokenEnv: 'AMENDCTL_SCIM_NO_SUCH_VAR' } }),
    );
    await expect(unset.readAccount('x@example.test')).rejects.toMatchObject({ type: 'TargetMisconfigured' });

    const subject = `${uniq('perm')}@example.test`;
    await expect(c.apply(op(c, 'joinGroup', subject, { group: 'g' }))).rejects.toMatchObject({
      type: 'AccountMissing',
    });
    await expect(c.apply(op(c, 'ensureAccount', subject, { attributes: { password: 'x' } }))).rejects.toMatchObject({
      type: 'InvalidAttribute',
    });
    // A value the server refuses (400) is permanent, with the server's explanation.
    await c.apply(ensure(subject));
    const bad = await c
      .apply(op(c, 'updateAttributes', subject, { attributes: { profileUrl: 'not a url' } }))
      .catch((err: unknown) => err);
    if (bad instanceof PermanentTargetError) expect(bad.message).toMatch(/answered 4\d\d/);
    else expect((await raw.readBack(subject))!.attributes.profileUrl).toBe('not a url');

    // No token in anything a connector returns.
    const r = await c.apply(op(c, 'joinGroup', subject, { group: uniq('tok') }));
    expect(JSON.stringify(r)).not.toContain(m.token);
    expect(JSON.stringify(await c.readAccount(subject))).not.toContain(m.token);
  });

  test('config: credentials only by env name or file, never both', () => {
    expect(() =>
      scimConfigSchema.parse({
        type: 'scim',
        baseUrl: 'http://x',
        auth: { bearerTokenEnv: 'A', bearerTokenFile: '/f' },
      }),
    ).toThrow();
    expect(() =>
      scimConfigSchema.parse({ type: 'scim', baseUrl: 'http://x', auth: { bearerToken: 'secret' } }),
    ).toThrow();
    expect(() => scimConfigSchema.parse({ type: 'scim', baseUrl: 'ftp://x', auth: {} })).toThrow();
    expect(
      scimConfigSchema.parse({
        type: 'scim',
        baseUrl: 'https://idp.example.com/scim/v2',
        auth: { bearerTokenFile: '/run/secrets/scim' },
        rateLimit: { perSecond: 5 },
      }).rateLimit,
    ).toEqual({ perSecond: 5 });
  });
});

describe('scim without PATCH: PUT with If-Match', () => {
  let s: RunningScim;
  let proxy: HttpProxy;
  let c: Connector;
  let raw: RawScim;
  beforeAll(async () => {
    s = await startScimServer('scim-put', NO_PATCH_SPC);
    process.env[TOKEN_ENV] = s.token;
    raw = new RawScim(s.url, s.token);
    proxy = await startHttpProxy(new URL(s.url).origin);
    c = createScimConnector('idp-put', config(`${proxy.url}/v2`));
  });
  afterAll(async () => {
    await c.close();
    await proxy.close();
    await s.stop();
  });

  test('joins with a PUT of the group under If-Match, and a lost race is re-read', async () => {
    const a = `${uniq('pa')}@example.test`;
    const b = `${uniq('pb')}@example.test`;
    const g = uniq('pg');
    for (const x of [a, b]) await c.apply(op(c, 'ensureAccount', x, { attributes: { displayName: x } }));
    await c.apply(op(c, 'joinGroup', a, { group: g }));
    const gid = (await raw.groups()).find((x) => x.displayName === g)!.id;
    const bid = (await raw.users(b))[0]!.id;
    const aid = (await raw.users(a))[0]!.id;
    // Someone else renames a member list entry between our read and our PUT: our PUT must fail 412 and be redone.
    let raced = false;
    proxy.hooks.push(async (r) => {
      if (!raced && r.method === 'PUT' && r.path.endsWith(`/Groups/${gid}`)) {
        raced = true;
        const cur = await raw.call('GET', `/Groups/${gid}`);
        const body = cur.body as Record<string, unknown>;
        delete body.meta;
        const w = await raw.call(
          'PUT',
          `/Groups/${gid}`,
          { ...body, externalId: 'touched' },
          { 'if-match': cur.etag ?? '*' },
        );
        expect(w.status).toBe(200);
      }
      return undefined;
    });
    const n = proxy.log.length;
    expect((await c.apply(op(c, 'joinGroup', b, { group: g }))).outcome).toBe('applied');
    const puts = proxy.log.slice(n).filter((r) => r.method === 'PUT');
    expect(puts.map((r) => r.status)).toEqual([412, 200]);
    expect(puts.every((r) => typeof r.headers['if-match'] === 'string')).toBe(true);
    expect(proxy.log.slice(n).some((r) => r.method === 'PATCH' || r.query.has('filter'))).toBe(false);
    const members = ((await raw.call('GET', `/Groups/${gid}`)).body as { members: Array<{ value: string }> }).members
      .map((x) => x.value)
      .sort();
    expect(members).toEqual([aid, bid].sort());
  });
});
