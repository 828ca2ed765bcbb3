/**
 * The IAM connector against moto in server mode (started by the harness): the shared
 * conformance suite through a TCP proxy, read back with a separate IAMClient talking to
 * moto directly, and the IAM-specific behaviour: reversible deactivation (access keys,
 * deny policy, tag), role -> managed policy mapping, name rules, error classification.
 */
import { randomBytes } from 'node:crypto';
import {
  CreateAccessKeyCommand,
  CreatePolicyCommand,
  CreateUserCommand,
  GetGroupCommand,
  GetUserCommand,
  IAMClient,
  ListAccessKeysCommand,
  ListAttachedUserPoliciesCommand,
  ListGroupsForUserCommand,
  ListUserPoliciesCommand,
  ListUsersCommand,
  UpdateAccessKeyCommand,
} from '@aws-sdk/client-iam';
import { classifyIamError, createIamConnector, type IamConfig } from '../../src/connectors/iam';
import {
  PermanentTargetError,
  TransientTargetError,
  type AccountState,
  type CompensationSpec,
} from '../../src/connectors/types';
import type { Action } from '../../src/domain/plan';
import type { JsonValue } from '../../src/domain/json';
import { freePort } from '../harness/proc';
import { need } from '../harness/env';
import { describeConformance, plannedOperation, startTcpProxy } from './conformance';

// moto accepts any credentials; distinctive ones per run let the tests look for leaks.
const KEY_ID = `AKIA${randomBytes(8).toString('hex').toUpperCase()}`;
const SECRET = randomBytes(20).toString('base64url');
process.env.AMENDCTL_TEST_IAM_KEY_ID = KEY_ID;
process.env.AMENDCTL_TEST_IAM_SECRET = SECRET;

const run = randomBytes(3).toString('hex');
const PATH = `/amendctl-${run}/`;

function admin(): IAMClient {
  return new IAMClient({
    region: 'us-east-1',
    endpoint: need('AMENDCTL_TEST_MOTO_URL'),
    credentials: { accessKeyId: KEY_ID, secretAccessKey: SECRET },
  });
}

function config(over: Partial<IamConfig> = {}): IamConfig {
  return {
    type: 'iam',
    region: 'us-east-1',
    endpoint: need('AMENDCTL_TEST_MOTO_URL'),
    accessKeyId: { env: 'AMENDCTL_TEST_IAM_KEY_ID' },
    secretAccessKey: { env: 'AMENDCTL_TEST_IAM_SECRET' },
    path: PATH,
    roles: {},
    attributeTags: { displayName: 'amendctl:displayName', email: 'amendctl:email', externalId: 'amendctl:externalId' },
    timeoutMs: 3000,
    maxAttempts: 1,
    ...over,
  };
}

async function makePolicy(iam: IAMClient, name: string): Promise<string> {
  const doc = JSON.stringify({
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: '*' }],
  });
  const r = await iam.send(new CreatePolicyCommand({ PolicyName: name, PolicyDocument: doc }));
  return r.Policy!.Arn!;
}

/** The user as moto holds it, read with the SDK directly (not through the connector). */
async function readBack(
  iam: IAMClient,
  subject: string,
  roleArns: Record<string, string>,
): Promise<AccountState | null> {
  let user;
  try {
    user = (await iam.send(new GetUserCommand({ UserName: subject }))).User!;
  } catch (err) {
    if ((err as Error).name === 'NoSuchEntityException') return null;
    throw err;
  }
  const tags = Object.fromEntries((user.Tags ?? []).map((t) => [t.Key!, t.Value!]));
  const groups = (await iam.send(new ListGroupsForUserCommand({ UserName: subject }))).Groups!.map((g) => g.GroupName!);
  const attached = (await iam.send(new ListAttachedUserPoliciesCommand({ UserName: subject }))).AttachedPolicies!.map(
    (p) => p.PolicyArn!,
  );
  const roles = Object.entries(roleArns)
    .filter(([, arn]) => attached.includes(arn))
    .map(([r]) => r);
  const attributes: Record<string, string> = {};
  for (const [a, k] of [
    ['displayName', 'amendctl:displayName'],
    ['email', 'amendctl:email'],
    ['externalId', 'amendctl:externalId'],
  ] as const)
    if (tags[k] !== undefined) attributes[a] = tags[k];
  return {
    subject,
    id: user.UserName!,
    active: tags['amendctl:active'] !== 'false',
    groups: [...groups, ...roles].sort(),
    attributes,
  };
}

describeConformance('iam', async () => {
  const iam = admin();
  const url = new URL(need('AMENDCTL_TEST_MOTO_URL'));
  const proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port) });
  const roles = {
    [`conf-a-${run}`]: await makePolicy(iam, `conf-a-${run}`),
    [`conf-b-${run}`]: await makePolicy(iam, `conf-b-${run}`),
  };
  const connector = createIamConnector(
    'aws',
    config({ endpoint: `http://127.0.0.1:${proxy.port}`, roles, timeoutMs: 2000 }),
  );
  return {
    connector,
    readBack: (s) => readBack(iam, s, roles),
    outage: proxy.outage,
    roles: Object.keys(roles) as [string, string],
    groupExists: async (g) =>
      iam.send(new GetGroupCommand({ GroupName: g })).then(
        () => true,
        (err: Error) => (err.name === 'NoSuchEntityException' ? false : Promise.reject(err)),
      ),
    accountCount: async (s) => {
      const users = (await iam.send(new ListUsersCommand({ MaxItems: 1000 }))).Users ?? [];
      return users.filter((u) => u.UserName!.toLowerCase() === s.toLowerCase()).length;
    },
    cleanup: async () => {
      iam.destroy();
      await proxy.close();
    },
  };
});

describe('iam connector, IAM behaviour', () => {
  const iam = admin();
  let roleArn: string;
  let c: ReturnType<typeof createIamConnector>;
  const op = (action: Action, subject: string, params: Record<string, JsonValue> = {}): CompensationSpec =>
    plannedOperation('aws', action, subject, params);

  beforeAll(async () => {
    roleArn = await makePolicy(iam, `reader-${run}`);
    // one role by ARN, one by policy name (looked up)
    c = createIamConnector('aws', config({ roles: { reader: roleArn, 'reader-by-name': `reader-${run}` } }));
  });
  afterAll(async () => {
    iam.destroy();
    await c.close();
  });

  async function keys(user: string): Promise<Record<string, string>> {
    const r = await iam.send(new ListAccessKeysCommand({ UserName: user }));
    return Object.fromEntries((r.AccessKeyMetadata ?? []).map((k) => [k.AccessKeyId!, k.Status!]));
  }
  async function inline(user: string): Promise<string[]> {
    return (await iam.send(new ListUserPoliciesCommand({ UserName: user }))).PolicyNames ?? [];
  }

  test('ensureAccount creates the user under the configured path, tagged with the subject', async () => {
    const subject = `path-${run}@example.test`;
    await c.apply(op('ensureAccount', subject, { attributes: { displayName: 'Path Test', email: subject } }));
    const u = (await iam.send(new GetUserCommand({ UserName: subject }))).User!;
    expect(u.Path).toBe(PATH);
    expect(u.Tags).toEqual(
      expect.arrayContaining([
        { Key: 'amendctl:subject', Value: subject },
        { Key: 'amendctl:displayName', Value: 'Path Test' },
      ]),
    );
  });

  test('deactivation: active keys Inactive, deny-all inline policy, tag; reactivation re-enables only those keys; compensation is exact', async () => {
    const subject = `keys-${run}@example.test`;
    await c.apply(op('ensureAccount', subject, { attributes: { displayName: 'Keys' } }));
    const k1 = (await iam.send(new CreateAccessKeyCommand({ UserName: subject }))).AccessKey!.AccessKeyId!;
    const k2 = (await iam.send(new CreateAccessKeyCommand({ UserName: subject }))).AccessKey!.AccessKeyId!;
    await iam.send(new UpdateAccessKeyCommand({ UserName: subject, AccessKeyId: k2, Status: 'Inactive' })); // rotated out before
    const before = await keys(subject);

    const off = await c.apply(op('deactivateAccount', subject));
    expect(off.outcome).toBe('applied');
    expect(await keys(subject)).toEqual({ [k1]: 'Inactive', [k2]: 'Inactive' });
    expect(await inline(subject)).toEqual(['amendctl-deactivated']);
    expect((await c.readAccount(subject))!.active).toBe(false);
    expect((await c.apply(op('deactivateAccount', subject))).outcome).toBe('unchanged');

    const on = await c.apply(op('reactivateAccount', subject));
    expect(on.outcome).toBe('applied');
    expect(await keys(subject)).toEqual(before); // k2 stays Inactive
    expect(await inline(subject)).toEqual([]);
    expect((await c.readAccount(subject))!.active).toBe(true);

    // Compensating the reactivation puts the deactivation back exactly.
    expect((await c.compensate(op('reactivateAccount', subject), JSON.parse(JSON.stringify(on)))).outcome).toBe(
      'compensated',
    );
    expect(await keys(subject)).toEqual({ [k1]: 'Inactive', [k2]: 'Inactive' });
    expect(await inline(subject)).toEqual(['amendctl-deactivated']);
    // ... and compensating the deactivation restores the starting point.
    await c.apply(op('reactivateAccount', subject));
    const off2 = await c.apply(op('deactivateAccount', subject));
    await c.compensate(op('deactivateAccount', subject), JSON.parse(JSON.stringify(off2)));
    expect(await keys(subject)).toEqual(before);
    expect(await inline(subject)).toEqual([]);
    const tags = (await iam.send(new GetUserCommand({ UserName: subject }))).User!.Tags!.map((t) => t.Key);
    expect(tags).not.toContain('amendctl:deactivatedKeys');
  });

  test('roles: a mapped policy by ARN or by name is attached and detached; an unmapped role is refused', async () => {
    const subject = `role-${run}@example.test`;
    await c.apply(op('ensureAccount', subject, { attributes: {} }));
    await c.apply(op('grantRole', subject, { role: 'reader-by-name' }));
    const attached = (await iam.send(new ListAttachedUserPoliciesCommand({ UserName: subject }))).AttachedPolicies!.map(
      (p) => p.PolicyArn,
    );
    expect(attached).toEqual([roleArn]);
    expect((await c.apply(op('grantRole', subject, { role: 'reader' }))).outcome).toBe('unchanged'); // same policy
    expect((await c.readAccount(subject))!.groups).toEqual(['reader', 'reader-by-name']);
    await c.apply(op('revokeRole', subject, { role: 'reader' }));
    expect((await iam.send(new ListAttachedUserPoliciesCommand({ UserName: subject }))).AttachedPolicies).toEqual([]);
    await expect(c.apply(op('grantRole', subject, { role: 'admin' }))).rejects.toMatchObject({
      type: 'TargetMisconfigured',
    });
  });

  test('names IAM cannot hold are refused before any request; tag values are refused, not altered', async () => {
    for (const bad of [`o'hara-${run}@example.test`, `x)(uid=*`, 'a'.repeat(65), `аnn-${run}@example.test`]) {
      await expect(c.apply(op('ensureAccount', bad, { attributes: {} }))).rejects.toMatchObject({
        name: 'PermanentTargetError',
        type: 'InvalidIdentifier',
      });
    }
    await expect(c.apply(op('joinGroup', `path-${run}@example.test`, { group: 'a group' }))).rejects.toMatchObject({
      type: 'InvalidIdentifier',
    });
    const subject = `tagval-${run}@example.test`;
    await expect(
      c.apply(op('ensureAccount', subject, { attributes: { displayName: "O'Hara" } })),
    ).rejects.toMatchObject({ type: 'InvalidAttribute' });
    expect(await readBack(iam, subject, {})).toBeNull();
  });

  test('a user tagged for another subject is a conflict, never taken', async () => {
    const name = `taken-${run}@example.test`;
    await iam.send(
      new CreateUserCommand({
        UserName: name,
        Tags: [{ Key: 'amendctl:subject', Value: 'someone-else@example.test' }],
      }),
    );
    expect(await c.readAccount(name)).toBeNull();
    await expect(c.apply(op('ensureAccount', name, { attributes: { displayName: 'Mallory' } }))).rejects.toMatchObject({
      type: 'TargetConflict',
    });
    await expect(c.apply(op('deactivateAccount', name))).rejects.toMatchObject({ type: 'TargetConflict' });
    const tags = (await iam.send(new GetUserCommand({ UserName: name }))).User!.Tags;
    expect(tags).toEqual([{ Key: 'amendctl:subject', Value: 'someone-else@example.test' }]);
  });

  test('results carry no credential', async () => {
    const subject = `secret-${run}@example.test`;
    const results = [
      await c.apply(op('ensureAccount', subject, { attributes: { displayName: 'S' } })),
      await c.apply(op('joinGroup', subject, { group: `s-${run}` })),
      await c.apply(op('deactivateAccount', subject)),
    ];
    const text = JSON.stringify([results, await c.readAccount(subject)]);
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain(KEY_ID);
  });

  describe('error classification', () => {
    test('nobody listening: transient', async () => {
      const bad = createIamConnector('aws', config({ endpoint: `http://127.0.0.1:${await freePort()}` }));
      await expect(bad.apply(op('ensureAccount', `x-${run}@example.test`, { attributes: {} }))).rejects.toBeInstanceOf(
        TransientTargetError,
      );
      await bad.close();
    });

    test('unset credential variable: TargetMisconfigured naming it', async () => {
      const bad = createIamConnector('aws', config({ accessKeyId: { env: 'AMENDCTL_TEST_IAM_UNSET' } }));
      await expect(bad.readAccount(`x-${run}@example.test`)).rejects.toMatchObject({
        type: 'TargetMisconfigured',
        message: expect.stringContaining('AMENDCTL_TEST_IAM_UNSET'),
      });
    });

    const aws = (name: string, status: number) =>
      Object.assign(new Error(`${name} happened`), {
        name,
        $fault: status >= 500 ? 'server' : 'client',
        $metadata: { httpStatusCode: status },
      });
    test.each([
      ['Throttling (400)', 'transient', () => aws('Throttling', 400)],
      ['ServiceUnavailable (503)', 'transient', () => aws('ServiceUnavailableException', 503)],
      ['ServiceFailure (500)', 'transient', () => aws('ServiceFailureException', 500)],
      ['ConcurrentModification', 'transient', () => aws('ConcurrentModificationException', 409)],
      ['an unknown 502', 'transient', () => aws('Whatever', 502)],
      ['ECONNRESET', 'transient', () => Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })],
      [
        'TimeoutError',
        'transient',
        () => Object.assign(new Error('Connection timed out after 3000 ms'), { name: 'TimeoutError' }),
      ],
      ['LimitExceeded', 'TargetRejected', () => aws('LimitExceededException', 409)],
      ['ValidationError', 'InvalidIdentifier', () => aws('ValidationError', 400)],
      ['AccessDenied', 'TargetForbidden', () => aws('AccessDenied', 403)],
      ['InvalidClientTokenId', 'TargetAuthentication', () => aws('InvalidClientTokenId', 403)],
      ['DeleteConflict', 'TargetConflict', () => aws('DeleteConflictException', 409)],
    ] as const)('%s -> %s', (_name, want, make) => {
      const got = classifyIamError(make(), 'x');
      if (want === 'transient') expect(got).toBeInstanceOf(TransientTargetError);
      else {
        expect(got).toBeInstanceOf(PermanentTargetError);
        expect((got as PermanentTargetError).type).toBe(want);
      }
    });
  });
});
