/**
 * The second example policy (examples/directory) end to end through the real workflow on
 * the Temporal dev server, with a worker whose targets file is examples/directory/targets.yaml:
 * `directory` on the harness's OpenLDAP slapd, `billing-app` on the internal app started here
 * (a real Node HTTP server that verifies every signature), `aws` on the harness's moto. After
 * each amendment of the story every target is read back with a client of this test's own
 * (ldapts, the app's state, the AWS SDK) and compared with what the policy says. Then a
 * permanent failure in the directory rolls the billing app and IAM back exactly.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CreatePolicyCommand,
  GetGroupCommand,
  GetUserCommand,
  IAMClient,
  ListAttachedUserPoliciesCommand,
  ListGroupsForUserCommand,
  ListUserPoliciesCommand,
} from '@aws-sdk/client-iam';
import { AndFilter, Client as LdapClient, EqualityFilter, OrFilter, SubstringFilter, type Entry } from 'ldapts';
import type { AmendmentView } from '../../src/client';
import { need } from '../harness/env';
import { InternalApp } from '../harness/internal-app';
import { ROOT } from '../harness/proc';
import { startStack, type Stack } from '../workflows/stack';

const EXAMPLE = join(ROOT, 'examples', 'directory');
const AWS_POLICIES = ['amendctl-customer-admin', 'amendctl-customer-write'];

// Distinctive per run: moto accepts any key, the app verifies signatures with its own secret.
const BILLING_SECRET = randomBytes(24).toString('base64url');
const AWS_KEY_ID = `AKIA${randomBytes(8).toString('hex').toUpperCase()}`;
const AWS_SECRET = randomBytes(20).toString('base64url');

const app = new InternalApp(BILLING_SECRET);
let stack: Stack;
let ldap: LdapClient;
let iam: IAMClient;
let base: string;

beforeAll(async () => {
  await app.start();
  base = need('AMENDCTL_TEST_LDAP_BASE_DN');
  ldap = new LdapClient({ url: need('AMENDCTL_TEST_LDAP_URL'), timeout: 5000 });
  await ldap.bind(need('AMENDCTL_TEST_LDAP_BIND_DN'), need('AMENDCTL_TEST_LDAP_PASSWORD'));
  // The directory's role container (the harness seeds people, groups and policies only).
  await ldap.add(`ou=roles,${base}`, { objectClass: ['organizationalUnit'], ou: ['roles'] }).catch((err: Error) => {
    if (!/already ?exists/i.test(`${err.name} ${err.message}`)) throw err; // AlreadyExistsError (0x44): another test file made it
  });
  iam = new IAMClient({
    region: 'us-east-1',
    endpoint: need('AMENDCTL_TEST_MOTO_URL'),
    credentials: { accessKeyId: AWS_KEY_ID, secretAccessKey: AWS_SECRET },
  });
  // The managed policies targets.yaml maps roles to by name, as an AWS account would have them.
  for (const name of AWS_POLICIES) {
    const doc = JSON.stringify({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: 'iam:GetUser', Resource: '*' }],
    });
    await iam.send(new CreatePolicyCommand({ PolicyName: name, PolicyDocument: doc })).catch((err: Error) => {
      if (err.name !== 'EntityAlreadyExistsException' && err.name !== 'EntityAlreadyExists') throw err;
    });
  }
  stack = await startStack('directory', {
    targetsFile: join(EXAMPLE, 'targets.yaml'),
    rulesFile: join(EXAMPLE, 'rules.yaml'),
    env: {
      AMENDCTL_DIRECTORY_URL: need('AMENDCTL_TEST_LDAP_URL'),
      AMENDCTL_DIRECTORY_BIND_DN: need('AMENDCTL_TEST_LDAP_BIND_DN'),
      AMENDCTL_DIRECTORY_BIND_PASSWORD: need('AMENDCTL_TEST_LDAP_PASSWORD'),
      AMENDCTL_DIRECTORY_BASE_DN: base,
      AMENDCTL_BILLING_URL: app.baseUrl,
      AMENDCTL_BILLING_HMAC_SECRET: BILLING_SECRET,
      AMENDCTL_AWS_REGION: 'us-east-1',
      AMENDCTL_AWS_ACCESS_KEY_ID: AWS_KEY_ID,
      AMENDCTL_AWS_SECRET_ACCESS_KEY: AWS_SECRET,
      AMENDCTL_AWS_RATE: '50',
      // The SDK's own variable: targets.yaml names no endpoint, so this one is moto.
      AWS_ENDPOINT_URL_IAM: need('AMENDCTL_TEST_MOTO_URL'),
    },
  });
});

afterAll(async () => {
  await stack?.stop();
  await ldap?.unbind();
  iam?.destroy();
  await app.stop();
  delete process.env.AWS_ENDPOINT_URL_IAM;
});

// ---- reading the three targets back, with no connector code ----------------------------------

function vals(e: Entry, name: string): string[] {
  const k = Object.keys(e).find((x) => x.toLowerCase() === name.toLowerCase());
  if (!k) return [];
  const v = e[k]!;
  return (Array.isArray(v) ? v : [v]).map((x) => (Buffer.isBuffer(x) ? x.toString('utf8') : x));
}

interface DirectoryAccount {
  active: boolean;
  groups: string[];
  displayName?: string;
  email?: string;
  externalId?: string;
}

async function directoryAccount(email: string): Promise<DirectoryAccount | null> {
  const res = await ldap.search(`ou=people,${base}`, {
    scope: 'one',
    filter: new AndFilter({
      filters: [
        new EqualityFilter({ attribute: 'objectClass', value: 'inetOrgPerson' }),
        new EqualityFilter({ attribute: 'uid', value: email }),
      ],
    }),
    attributes: ['uid', 'displayName', 'mail', 'employeeNumber', 'pwdAccountLockedTime'],
  });
  const mine = res.searchEntries.filter((e) => vals(e, 'uid').includes(email));
  if (mine.length === 0) return null;
  expect(mine).toHaveLength(1);
  const e = mine[0]!;
  const groups: string[] = [];
  for (const ou of ['groups', 'roles']) {
    const g = await ldap.search(`ou=${ou},${base}`, {
      scope: 'one',
      filter: new EqualityFilter({ attribute: 'member', value: e.dn }),
      attributes: ['cn'],
    });
    groups.push(...g.searchEntries.map((x) => vals(x, 'cn')[0]!));
  }
  const lock = vals(e, 'pwdAccountLockedTime');
  if (lock.length > 0) expect(lock).toEqual(['000001010000Z']); // the ppolicy administrative lock
  return {
    active: lock.length === 0,
    groups: groups.sort(),
    displayName: vals(e, 'displayName')[0],
    email: vals(e, 'mail')[0],
    externalId: vals(e, 'employeeNumber')[0],
  };
}

/** Every groupOfNames of the customer (cn starting `{customer}-`) with its raw member values. */
async function directoryGroups(customer: string): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const ou of ['groups', 'roles']) {
    const res = await ldap.search(`ou=${ou},${base}`, {
      scope: 'one',
      filter: new AndFilter({
        filters: [
          new EqualityFilter({ attribute: 'objectClass', value: 'groupOfNames' }),
          new SubstringFilter({ attribute: 'cn', initial: `${customer}-` }),
        ],
      }),
      attributes: ['cn', 'member'],
    });
    for (const g of res.searchEntries) out[`${ou}/${vals(g, 'cn')[0]}`] = vals(g, 'member').sort();
  }
  return out;
}

interface BillingAccount {
  active: boolean;
  roles: string[];
  groups: string[];
  name?: string;
  email?: string;
  externalId?: string;
}

function billingAccount(email: string): BillingAccount | null {
  const u = app.users.get(email);
  if (!u) return null;
  return {
    active: u.active,
    roles: [...u.roles].sort(),
    groups: [...u.groups].sort(),
    name: u.name,
    email: u.email,
    externalId: u.externalId,
  };
}

interface AwsAccount {
  /** The tag amendctl:active is not "false". */
  active: boolean;
  /** The inline deny-all policy of a deactivated user is there. */
  denied: boolean;
  groups: string[];
  policies: string[];
  displayName?: string;
  email?: string;
  externalId?: string;
}

function notFound(err: unknown): boolean {
  const n = (err as Error).name;
  return n === 'NoSuchEntityException' || n === 'NoSuchEntity';
}

async function awsAccount(email: string): Promise<AwsAccount | null> {
  let user;
  try {
    user = (await iam.send(new GetUserCommand({ UserName: email }))).User!;
  } catch (err) {
    if (notFound(err)) return null;
    throw err;
  }
  const tags = Object.fromEntries((user.Tags ?? []).map((t) => [t.Key!, t.Value!]));
  expect(tags['amendctl:subject']).toBe(email);
  const groups = (await iam.send(new ListGroupsForUserCommand({ UserName: email }))).Groups!.map((g) => g.GroupName!);
  const policies = (await iam.send(new ListAttachedUserPoliciesCommand({ UserName: email }))).AttachedPolicies!.map(
    (p) => p.PolicyName!,
  );
  const inline = (await iam.send(new ListUserPoliciesCommand({ UserName: email }))).PolicyNames ?? [];
  return {
    active: tags['amendctl:active'] !== 'false',
    denied: inline.includes('amendctl-deactivated'),
    groups: groups.sort(),
    policies: policies.sort(),
    displayName: tags['amendctl:displayName'],
    email: tags['amendctl:email'],
    externalId: tags['amendctl:externalId'],
  };
}

/** The customer's IAM groups the policy uses, with their members (null: no such group). */
async function awsGroups(customer: string): Promise<Record<string, string[] | null>> {
  const out: Record<string, string[] | null> = {};
  for (const g of [`amendctl-${customer}`, `${customer}-analytics`]) {
    try {
      out[g] = (await iam.send(new GetGroupCommand({ GroupName: g }))).Users!.map((u) => u.UserName!).sort();
    } catch (err) {
      if (!notFound(err)) throw err;
      out[g] = null;
    }
  }
  return out;
}

interface Seen {
  directory: DirectoryAccount | null;
  billing: BillingAccount | null;
  aws: AwsAccount | null;
}

async function seen(emails: string[]): Promise<Record<string, Seen>> {
  const out: Record<string, Seen> = {};
  for (const e of emails)
    out[e] = { directory: await directoryAccount(e), billing: billingAccount(e), aws: await awsAccount(e) };
  return out;
}

// ---- driving the workflow ----------------------------------------------------------------------

async function until(id: string, status: AmendmentView['status']): Promise<AmendmentView> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const v = await stack.client.getStatus(id);
    if (v.status === status) return v;
    if (['completed', 'rolled_back', 'failed', 'invalid', 'rejected'].includes(v.status) || Date.now() > deadline) {
      throw new Error(`${id}: ${v.status} (${v.reason ?? ''}), expected ${status}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Submit; approve (as someone other than the submitter) when the plan needs it; wait for the end. */
async function run(doc: { amendmentId: string }, approval: boolean): Promise<AmendmentView> {
  await stack.client.submitAmendment(doc);
  if (approval) {
    const v = await until(doc.amendmentId, 'pending_approval');
    expect(v.operations.length).toBeGreaterThan(0);
    expect(v.operations.every((o) => o.outcome === 'pending')).toBe(true);
    await stack.client.approve(doc.amendmentId, { by: 'dana', comment: 'as signed' });
  }
  const v = await stack.client.waitForResult(doc.amendmentId);
  expect(v.approval?.required ?? false).toBe(approval);
  return v;
}

/** An example amendment of the story, for this run's own customer (the ids, the contract and every email). */
function story(file: string, customer: string): { amendmentId: string } {
  const text = readFileSync(join(EXAMPLE, 'amendments', file), 'utf8');
  return JSON.parse(text.replace(/\bglobex\b/g, customer)) as { amendmentId: string };
}

// ---- the story ---------------------------------------------------------------------------------

test('the directory story, amendment by amendment, leaves slapd, the billing app and IAM as the policy says', async () => {
  const c = `globex-${randomBytes(3).toString('hex')}`;
  const E = (local: string) => `${local}@${c}.example`;
  const people = ['alice', 'bob', 'carol', 'dave'].map(E);
  const mods = [`${c}-mod-analytics`, `${c}-mod-billing`];
  const attrs = (local: string, name: string) => ({
    displayName: name,
    email: E(local),
    externalId: `${c}:${E(local)}`,
  });
  const billingAttrs = (local: string, name: string) => ({ name, email: E(local), externalId: `${c}:${E(local)}` });
  const dir = (local: string, name: string, role: string, active = true): DirectoryAccount => ({
    active,
    groups: [`${c}-${role}s`, ...mods].sort(),
    ...attrs(local, name),
  });
  const bill = (local: string, name: string, role: string, active = true): BillingAccount => ({
    active,
    roles: [`billing-${role}`],
    groups: [],
    ...billingAttrs(local, name),
  });
  const aws = (local: string, name: string, active = true): AwsAccount => ({
    active,
    denied: !active,
    groups: [`${c}-analytics`, `amendctl-${c}`].sort(),
    policies: ['amendctl-customer-admin'],
    ...attrs(local, name),
  });

  // 1. Baseline: alice (admin), bob (member), carol (viewer); modules analytics and billing. Grants admin: approval.
  let v = await run(story('01-baseline.json', c), true);
  expect(v.status).toBe('completed');
  const want: Record<string, Seen> = {
    [E('alice')]: {
      directory: dir('alice', 'Alice Adams', 'admin'),
      billing: bill('alice', 'Alice Adams', 'admin'),
      aws: aws('alice', 'Alice Adams'),
    },
    [E('bob')]: {
      directory: dir('bob', 'Bob Brown', 'member'),
      billing: bill('bob', 'Bob Brown', 'member'),
      aws: null,
    },
    [E('carol')]: {
      directory: dir('carol', 'Carol Clark', 'viewer'),
      billing: bill('carol', 'Carol Clark', 'viewer'),
      aws: null,
    },
    [E('dave')]: { directory: null, billing: null, aws: null },
  };
  expect(await seen(people)).toEqual(want);

  // 2. A billing user: dave (member) gets the directory and the billing app, not AWS. No approval.
  v = await run(story('02-add-billing-user.json', c), false);
  expect(v.status).toBe('completed');
  want[E('dave')] = {
    directory: dir('dave', 'Dave Davis', 'member'),
    billing: bill('dave', 'Dave Davis', 'member'),
    aws: null,
  };
  expect(await seen(people)).toEqual(want);

  // 3. Bob becomes admin (approval): role group and billing role swapped, and an IAM user with the admin policy.
  v = await run(story('03-promote-bob.json', c), true);
  expect(v.status).toBe('completed');
  want[E('bob')] = {
    directory: dir('bob', 'Bob Brown', 'admin'),
    billing: bill('bob', 'Bob Brown', 'admin'),
    aws: aws('bob', 'Bob Brown'),
  };
  expect(await seen(people)).toEqual(want);
  expect(await awsGroups(c)).toEqual({
    [`amendctl-${c}`]: [E('alice'), E('bob')],
    [`${c}-analytics`]: [E('alice'), E('bob')],
  });

  // 4. Suspended: every account deactivated, every membership kept. No approval.
  v = await run(story('04-suspend.json', c), false);
  expect(v.status).toBe('completed');
  for (const p of people) {
    want[p]!.directory!.active = false;
    want[p]!.billing!.active = false;
  }
  want[E('alice')]!.aws = aws('alice', 'Alice Adams', false);
  want[E('bob')]!.aws = aws('bob', 'Bob Brown', false);
  expect(await seen(people)).toEqual(want);

  // 5. Terminated (approval): still deactivated, out of every group, role and policy; nothing deleted.
  v = await run(story('05-terminate.json', c), true);
  expect(v.status).toBe('completed');
  for (const p of people) {
    want[p]!.directory!.groups = [];
    want[p]!.billing!.roles = [];
  }
  for (const p of [E('alice'), E('bob')]) Object.assign(want[p]!.aws!, { groups: [], policies: [] });
  expect(await seen(people)).toEqual(want);
  expect(await awsGroups(c)).toEqual({ [`amendctl-${c}`]: [], [`${c}-analytics`]: [] });
  expect(app.rejected).toEqual([]); // every request the worker sent the app was signed right
}, 240_000);

// ---- a permanent failure -------------------------------------------------------------------------

test('a permanent failure in the directory rolls back the billing app and IAM exactly, and the directory itself', async () => {
  const c = `failco-${randomBytes(3).toString('hex')}`;
  const E = (local: string) => `${local}@${c}.example`;
  const people = ['alice', 'bob', 'carol'].map(E);
  const baseline = {
    amendmentId: `${c}-msa-001`,
    contractId: `${c}-msa`,
    sequence: 1,
    submittedBy: 'contracts-system',
    contract: {
      customer: { id: c, name: 'Failing Co' },
      status: 'active',
      tier: 'enterprise',
      seats: 5,
      modules: ['analytics', 'billing'],
      namedUsers: [
        { email: E('alice'), name: 'Alice', role: 'member' },
        { email: E('bob'), name: 'Bob', role: 'viewer' },
      ],
      term: { start: '2026-01-01' },
      region: 'eu',
    },
  };
  expect((await run(baseline, false)).status).toBe('completed');

  // What a directory administrator might have left behind: the admins' role entry exists,
  // but as an organizationalRole, not a groupOfNames. Granting it fails for good (TargetConflict).
  await ldap.add(`cn=${c}-admins,ou=roles,${base}`, { objectClass: ['organizationalRole'], cn: [`${c}-admins`] });

  const before = {
    users: await seen(people),
    directoryGroups: await directoryGroups(c),
    awsGroups: await awsGroups(c),
    appUsers: [...app.users.keys()].filter((k) => k.endsWith(`@${c}.example`)).sort(),
  };
  expect(before.users[E('alice')]!.aws).toBeNull();
  expect(before.awsGroups).toEqual({ [`amendctl-${c}`]: null, [`${c}-analytics`]: null });

  // Alice becomes admin, Bob is renamed, Carol joins: every target has work, the directory's grant fails.
  const amendment = {
    amendmentId: `${c}-msa-002`,
    contractId: `${c}-msa`,
    sequence: 2,
    submittedBy: 'contracts-system',
    changes: [
      { op: 'set', path: 'namedUsers.role', match: { email: E('alice') }, value: 'admin' },
      { op: 'set', path: 'namedUsers.name', match: { email: E('bob') }, value: 'Robert' },
      { op: 'add', path: 'namedUsers', value: { email: E('carol'), name: 'Carol', role: 'member' } },
    ],
  };
  const v = await run(amendment, true);
  expect(v.status).toBe('rolled_back');
  const failed = v.operations.filter((o) => o.outcome === 'failed');
  expect(failed.map((o) => [o.target, o.action, o.subject, o.error?.type])).toEqual([
    ['directory', 'grantRole', E('alice'), 'TargetConflict'],
  ]);
  expect(v.reason).toMatch(/groupOfNames/);
  // The other targets had done work, and it was undone.
  for (const target of ['billing-app', 'aws'])
    expect(v.operations.some((o) => o.target === target && o.outcome === 'compensated')).toBe(true);
  expect(v.operations.filter((o) => o.outcome === 'compensation_failed')).toEqual([]);

  const after = {
    users: await seen(people),
    directoryGroups: await directoryGroups(c),
    awsGroups: await awsGroups(c),
    appUsers: [...app.users.keys()].filter((k) => k.endsWith(`@${c}.example`)).sort(),
  };
  expect(after).toEqual(before);
  // The IAM user created for alice and the groups created for her are gone again.
  const filter = new OrFilter({ filters: people.map((p) => new EqualityFilter({ attribute: 'uid', value: p })) });
  expect(
    (await ldap.search(`ou=people,${base}`, { scope: 'one', filter, attributes: ['uid'] })).searchEntries
      .map((e) => vals(e, 'uid')[0])
      .sort(),
  ).toEqual([E('alice'), E('bob')]);
}, 180_000);
